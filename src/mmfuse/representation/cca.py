"""Canonical correlation analysis: two-view CCA and multi-view generalised CCA (MAXVAR).

Closed-form, scikit-learn-style estimators (``get_params``/``set_params``, so ``sklearn.base.clone`` works) (constructor
stores parameters only; ``fit`` sets the
attributes ending in ``_``). The differentiable losses built on the same maths live in
:mod:`mmfuse.objectives.cca`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmfuse.errors import ConfigError
from mmfuse.representation._linalg import (
    EstimatorMixin,
    as_2d_float,
    check_paired,
    fix_signs,
    inv_sqrtm_psd,
    shrunk_range_basis,
)


class CCA(EstimatorMixin):
    """Regularised linear CCA (Hotelling, "Relations between two sets of variates", Biometrika 1936).

    Finds directions ``w_a``, ``w_b`` maximising ``corr(X_a w_a, X_b w_b)``. Closed form by whitening
    and SVD: with centred views and ridge-regularised covariances
    ``C_aa = X_a^T X_a / (N-1) + reg I``, ``C_bb`` likewise and ``C_ab = X_a^T X_b / (N-1)``,

        ``T = C_aa^{-1/2} C_ab C_bb^{-1/2} = U diag(rho) V^T``,
        ``W_a = C_aa^{-1/2} U[:, :k]``, ``W_b = C_bb^{-1/2} V[:, :k]``,

    and ``rho_1 >= ... >= rho_k`` are the canonical correlations. Canonical variates ``X_a W_a`` have
    unit variance (exactly so when ``reg = 0``) and are mutually uncorrelated within each view.

    Args:
        n_components: number of canonical pairs ``k`` (at most ``min(D_a, D_b)``).
        reg: ridge added to the diagonal of both covariance matrices (covariance units); needed when
            ``N <= D``, where unregularised CCA finds spurious correlations of 1.

    Attributes:
        canonical_correlations_: ``(k,)``, descending. weights_a_, weights_b_: ``(D_a, k)``, ``(D_b, k)``.
        mean_a_, mean_b_: column means removed before projecting.
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-6) -> None:
        self.n_components = n_components
        self.reg = reg

    def fit(self, Xa: Any, Xb: Any) -> CCA:
        """Fit on paired views ``Xa`` ``(N, D_a)`` and ``Xb`` ``(N, D_b)``."""
        Xa, Xb = as_2d_float(Xa, "Xa"), as_2d_float(Xb, "Xb")
        n = check_paired([Xa, Xb], ["Xa", "Xb"])
        k = int(self.n_components)
        if not 1 <= k <= min(Xa.shape[1], Xb.shape[1]):
            raise ConfigError(f"CCA n_components={k} must lie in [1, min(D_a, D_b)={min(Xa.shape[1], Xb.shape[1])}].")
        if self.reg < 0:
            raise ConfigError(f"CCA reg={self.reg} must be >= 0.")
        self.mean_a_, self.mean_b_ = Xa.mean(0), Xb.mean(0)
        Xa, Xb = Xa - self.mean_a_, Xb - self.mean_b_
        caa = Xa.T @ Xa / (n - 1) + self.reg * np.eye(Xa.shape[1])
        cbb = Xb.T @ Xb / (n - 1) + self.reg * np.eye(Xb.shape[1])
        ra, rb = inv_sqrtm_psd(caa), inv_sqrtm_psd(cbb)
        U, rho, Vt = np.linalg.svd(ra @ (Xa.T @ Xb / (n - 1)) @ rb)
        Wa, Wb = fix_signs(ra @ U[:, :k], rb @ Vt[:k].T)
        self.weights_a_, self.weights_b_ = Wa, Wb
        self.canonical_correlations_ = np.clip(rho[:k], 0.0, 1.0)
        return self

    def transform(self, Xa: Any, Xb: Any | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Canonical variates ``(Xa - mean_a) W_a`` ``(N, k)``, and those of ``Xb`` when given."""
        self._check_fitted("weights_a_", "fit(Xa, Xb)")
        za = (as_2d_float(Xa, "Xa") - self.mean_a_) @ self.weights_a_
        if Xb is None:
            return za
        return za, (as_2d_float(Xb, "Xb") - self.mean_b_) @ self.weights_b_

    def fit_transform(self, Xa: Any, Xb: Any) -> tuple[np.ndarray, np.ndarray]:
        """``fit(Xa, Xb)`` then ``transform(Xa, Xb)``."""
        return self.fit(Xa, Xb).transform(Xa, Xb)  # type: ignore[return-value]


class GCCA(EstimatorMixin):
    """Generalised CCA for ``M >= 2`` views, MAXVAR form (Horst 1961; Kettenring, "Canonical analysis
    of several sets of variables", Biometrika 1971).

    Finds a shared representation ``G`` ``(N, k)`` with ``G^T G = I`` and per-view maps ``W_m``
    minimising ``sum_m ||G - X_m W_m||_F^2``. For fixed ``G`` the optimum is the ridge regression
    ``W_m = (X_m^T X_m + reg I)^{-1} X_m^T G``, leaving ``G`` = top-``k`` eigenvectors of

        ``M = sum_m P_m``,  ``P_m = X_m (X_m^T X_m + reg I)^{-1} X_m^T``  (centred views).

    ``M`` is never formed: with ``X_m = U_m S_m V_m^T``, ``P_m = F_m F_m^T`` where
    ``F_m = U_m diag(s^2 / (s^2 + reg))^{1/2}``, so ``G`` is the top left singular vectors of
    ``[F_1, ..., F_M]`` (cost ``O(N (sum D_m)^2)``). For two views and ``reg = 0`` the eigenvalues are
    ``1 + rho_i`` with ``rho_i`` the canonical correlations and ``X_m W_m`` are the canonical variates.

    Args:
        n_components: ``k``.
        reg: ridge on ``X_m^T X_m`` (Gram units: ``reg = (N - 1) * c`` matches a covariance ridge ``c``).

    Attributes:
        eigenvalues_: ``(k,)`` top eigenvalues of ``M`` (each in ``[0, M]``). weights_: list of ``(D_m, k)``.
        means_: list of column means. shared_: ``G`` ``(N, k)`` of the training data.
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-6) -> None:
        self.n_components = n_components
        self.reg = reg

    def fit(self, views: Sequence[Any]) -> GCCA:
        """Fit on a list of paired views, each ``(N, D_m)``."""
        if len(views) < 2:
            raise ConfigError(f"GCCA needs at least 2 views; got {len(views)}.")
        Xs = [as_2d_float(X, f"views[{i}]") for i, X in enumerate(views)]
        n = check_paired(Xs, [f"views[{i}]" for i in range(len(Xs))])
        k = int(self.n_components)
        if not 1 <= k <= n:
            raise ConfigError(f"GCCA n_components={k} must lie in [1, N={n}].")
        if self.reg < 0:
            raise ConfigError(f"GCCA reg={self.reg} must be >= 0.")
        self.means_ = [X.mean(0) for X in Xs]
        Xs = [X - mu for X, mu in zip(Xs, self.means_)]
        factors = []
        for X in Xs:
            U, s, _ = np.linalg.svd(X, full_matrices=False)
            factors.append(shrunk_range_basis(s**2, U, self.reg)[0])
        G, sv, _ = np.linalg.svd(np.concatenate(factors, axis=1), full_matrices=False)
        if k > G.shape[1]:
            raise ConfigError(f"GCCA n_components={k} exceeds the joint rank {G.shape[1]} of the views; lower it.")
        G = G[:, :k]
        weights = [np.linalg.solve(X.T @ X + self.reg * np.eye(X.shape[1]), X.T @ G) for X in Xs]
        G, *weights = fix_signs(G, *weights)
        self.shared_, self.weights_, self.eigenvalues_ = G, list(weights), sv[:k] ** 2
        return self

    def transform(self, views: Sequence[Any]) -> list[np.ndarray]:
        """Per-view projections ``(X_m - mean_m) W_m``, each ``(N, k)``; pass ``None`` to skip a view."""
        self._check_fitted("weights_", "fit(views)")
        if len(views) != len(self.weights_):
            raise ConfigError(f"GCCA was fitted on {len(self.weights_)} views; transform got {len(views)}.")
        return [
            None if X is None else (as_2d_float(X, f"views[{i}]") - mu) @ W  # type: ignore[misc]
            for i, (X, mu, W) in enumerate(zip(views, self.means_, self.weights_))
        ]

    def fit_transform(self, views: Sequence[Any]) -> list[np.ndarray]:
        """``fit(views)`` then ``transform(views)``."""
        return self.fit(views).transform(views)
