"""Kernels, kernel dependence measures (HSIC, CKA, alignment) and kernel CCA.

Kernel functions and measures are differentiable torch functions that also accept numpy arrays
(converted with ``torch.as_tensor``); they return tensors. :class:`KernelCCA` is a numpy estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmfuse.errors import ConfigError, DataError
from mmfuse.representation._linalg import EstimatorMixin, as_2d_float, check_paired, fix_signs, shrunk_range_basis


def _tensor(X: Any) -> Tensor:
    t = torch.as_tensor(X)
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def linear_kernel(X: Any, Y: Any | None = None) -> Tensor:
    """``k(x, y) = <x, y>``. Inputs ``X`` ``(N, D)``, ``Y`` ``(M, D)`` (default ``X``); returns ``(N, M)``."""
    X = _tensor(X)
    return X @ (X if Y is None else _tensor(Y)).T


def polynomial_kernel(
    X: Any, Y: Any | None = None, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> Tensor:
    """``k(x, y) = (gamma <x, y> + coef0)^degree``; ``gamma`` defaults to ``1 / D`` (scikit-learn's convention).

    Inputs ``X`` ``(N, D)``, ``Y`` ``(M, D)``; returns ``(N, M)``.
    """
    X = _tensor(X)
    gamma = 1.0 / X.shape[1] if gamma is None else gamma
    return (gamma * linear_kernel(X, Y) + coef0) ** degree


def squared_distances(X: Any, Y: Any | None = None) -> Tensor:
    """``||x_i - y_j||^2`` ``(N, M)``, clamped at 0 (no square root, so gradients stay finite at 0)."""
    X = _tensor(X)
    Y = X if Y is None else _tensor(Y)
    d2 = (X * X).sum(1)[:, None] + (Y * Y).sum(1)[None, :] - 2 * X @ Y.T
    return d2.clamp_min(0.0)


def median_heuristic(X: Any, Y: Any | None = None) -> float:
    """Median pairwise distance ``median_{i<j} ||x_i - x_j||`` (all ``x_i, y_j`` pairs when ``Y`` is given),
    the usual Gaussian bandwidth (Gretton et al., "Measuring statistical dependence with Hilbert-Schmidt
    norms", ALT 2005); 1.0 when all points coincide. Treated as a constant (no gradient)."""
    with torch.no_grad():
        d2 = squared_distances(X, Y)
        if Y is None:
            i, j = torch.triu_indices(d2.shape[0], d2.shape[1], offset=1)
            d2 = d2[i, j]
        med = float(d2.flatten().median().sqrt()) if d2.numel() else 0.0
    return med if med > 0 else 1.0


def gaussian_kernel(X: Any, Y: Any | None = None, sigma: float | None = None) -> Tensor:
    """``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))``; ``sigma=None`` uses :func:`median_heuristic`.

    Inputs ``X`` ``(N, D)``, ``Y`` ``(M, D)``; returns ``(N, M)``.
    """
    sigma = median_heuristic(X, Y) if sigma is None else sigma
    return torch.exp(-squared_distances(X, Y) / (2.0 * sigma**2))


KERNELS: dict[str, Callable[..., Tensor]] = {
    "linear": linear_kernel,
    "polynomial": polynomial_kernel,
    "gaussian": gaussian_kernel,
}


def get_kernel(kernel: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The kernel function named ``kernel`` (or ``kernel`` itself when it is callable)."""
    if callable(kernel):
        return kernel
    if kernel not in KERNELS:
        raise ConfigError(f"Unknown kernel {kernel!r}; choose one of {', '.join(sorted(KERNELS))} or pass a callable.")
    return KERNELS[kernel]


def center_kernel(K: Any) -> Tensor:
    """``H K H`` with ``H = I - 11^T / n``: the kernel of the feature-space-centred data. ``(n, n)`` -> ``(n, n)``."""
    K = _tensor(K)
    K = K - K.mean(0, keepdim=True)
    return K - K.mean(1, keepdim=True)


def hsic(K: Any, L: Any) -> Tensor:
    """Biased empirical HSIC ``tr(K H L H) / (n - 1)^2`` (Gretton et al., ALT 2005) of two ``(n, n)`` kernels.

    Computed as ``<HKH, HLH>_F / (n-1)^2`` (``H`` is idempotent). Returns a scalar.
    """
    K, L = _tensor(K), _tensor(L)
    n = K.shape[0]
    return (center_kernel(K) * center_kernel(L)).sum() / (n - 1) ** 2


def cka(K: Any, L: Any, eps: float = 1e-12) -> Tensor:
    """Centred kernel alignment ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (Kornblith et al.,
    "Similarity of Neural Network Representations Revisited", ICML 2019). Scalar in ``[0, 1]``.

    With linear kernels it is invariant to orthogonal transforms and isotropic scaling of either input.
    """
    K, L = center_kernel(K), center_kernel(L)
    return (K * L).sum() / ((K * K).sum() * (L * L).sum()).clamp_min(eps**2).sqrt()


def kernel_alignment(K: Any, L: Any, centered: bool = False, eps: float = 1e-12) -> Tensor:
    """Kernel alignment ``<K, L>_F / (||K||_F ||L||_F)`` (Cristianini et al., "On kernel-target
    alignment", NIPS 2002); ``centered=True`` aligns ``HKH`` and ``HLH`` instead (Cortes, Mohri &
    Rostamizadeh, "Algorithms for learning kernels based on centered alignment", JMLR 2012), which
    equals :func:`cka`. Scalar."""
    K, L = _tensor(K), _tensor(L)
    if centered:
        K, L = center_kernel(K), center_kernel(L)
    return (K * L).sum() / (K.norm() * L.norm()).clamp_min(eps)


def modality_relatedness(Za: Any, Zb: Any, kernel: str = "linear", **kernel_params: Any) -> float:
    """How related two modalities' paired embeddings are: ``CKA(k(Z_a), k(Z_b))`` in ``[0, 1]``.

    Inputs ``Za`` ``(N, D_a)``, ``Zb`` ``(N, D_b)`` (rows are the same samples). Returns a float.
    """
    Za, Zb = as_2d_float(Za, "Za"), as_2d_float(Zb, "Zb")
    check_paired([Za, Zb], ["Za", "Zb"])
    k = get_kernel(kernel)
    return float(cka(k(Za, **kernel_params), k(Zb, **kernel_params)))


class KernelCCA(EstimatorMixin):
    """Regularised kernel CCA (Bach & Jordan, "Kernel independent component analysis", JMLR 2002;
    Hardoon, Szedmak & Shawe-Taylor, "Canonical correlation analysis: an overview with application to
    learning methods", Neural Computation 2004).

    With centred Gram matrices ``K_a``, ``K_b`` and dual directions ``alpha``, ``beta`` it maximises
    Hardoon et al.'s regularised correlation

        ``rho = alpha^T K_a K_b beta / sqrt((alpha^T (K_a^2 + reg K_a) alpha) (beta^T (K_b^2 + reg K_b) beta))``.

    With ``K = U diag(lam) U^T`` and ``F = U diag(lam / (lam + reg))^{1/2}`` the ``rho`` are the singular
    values of ``F_a^T F_b``. For a linear kernel ``alpha^T (K^2 + reg K) alpha = w^T (X^T X + reg I) w``
    with ``w = X^T alpha``, so this is exactly linear CCA with covariance ridge ``reg / (N - 1)``.
    Without regularisation kernel CCA is degenerate (all correlations 1 for a full-rank kernel).

    Args:
        n_components: number of canonical pairs ``k``.
        kernel: "linear", "polynomial", "gaussian" or a callable ``k(X, Y) -> (N, M)``, used for both views.
        reg: ``reg`` above (Gram units; Gaussian-kernel eigenvalues grow with ``N``, so scale it with ``N``).
        kernel_params: keyword arguments of the kernel; a Gaussian ``sigma`` left out is set per view by
            the median heuristic on the training data and kept for ``transform``.

    Attributes:
        canonical_correlations_: ``(k,)``. dual_coef_a_, dual_coef_b_: ``(N, k)``.
        kernel_params_a_, kernel_params_b_: the kernel parameters used per view.
    """

    def __init__(
        self,
        n_components: int = 2,
        kernel: str | Callable[..., Tensor] = "gaussian",
        reg: float = 0.1,
        kernel_params: dict | None = None,
    ) -> None:
        self.n_components = n_components
        self.kernel = kernel
        self.reg = reg
        self.kernel_params = kernel_params

    def _params(self, X: np.ndarray) -> dict:
        params = dict(self.kernel_params or {})
        if self.kernel == "gaussian" and params.get("sigma") is None:
            params["sigma"] = median_heuristic(X)
        return params

    def _gram(self, X: np.ndarray, Y: np.ndarray, params: dict) -> np.ndarray:
        return get_kernel(self.kernel)(torch.as_tensor(X), torch.as_tensor(Y), **params).detach().cpu().double().numpy()

    def fit(self, Xa: Any, Xb: Any) -> KernelCCA:
        """Fit on paired views ``Xa`` ``(N, D_a)`` and ``Xb`` ``(N, D_b)``."""
        Xa, Xb = as_2d_float(Xa, "Xa"), as_2d_float(Xb, "Xb")
        n = check_paired([Xa, Xb], ["Xa", "Xb"])
        if self.reg <= 0:
            raise ConfigError(f"KernelCCA reg={self.reg} must be > 0; unregularised kernel CCA is degenerate.")
        k = int(self.n_components)
        self.X_fit_a_, self.X_fit_b_ = Xa, Xb
        self.kernel_params_a_, self.kernel_params_b_ = self._params(Xa), self._params(Xb)
        coefs, bases = [], []
        self.gram_means_ = []
        for X, params in ((Xa, self.kernel_params_a_), (Xb, self.kernel_params_b_)):
            K = self._gram(X, X, params)
            self.gram_means_.append((K.mean(0), K.mean()))
            lam, U = np.linalg.eigh(center_kernel(torch.as_tensor(K)).numpy())
            F, lam, U = shrunk_range_basis(lam, U, self.reg)
            bases.append(F)
            coefs.append((U, np.sqrt(lam**2 + self.reg * lam)))
        if not 1 <= k <= min(bases[0].shape[1], bases[1].shape[1]):
            raise ConfigError(
                f"KernelCCA n_components={k} must lie in [1, {min(bases[0].shape[1], bases[1].shape[1])}] "
                f"(the kernels' ranks)."
            )
        P, rho, Qt = np.linalg.svd(bases[0].T @ bases[1])
        # alpha = U diag(lam^2 + reg lam)^{-1/2} p, scaled so that training variates have ~unit variance
        (Ua, da), (Ub, db) = coefs
        alpha = Ua @ (P[:, :k] / da[:, None]) * np.sqrt(n - 1)
        beta = Ub @ (Qt[:k].T / db[:, None]) * np.sqrt(n - 1)
        self.dual_coef_a_, self.dual_coef_b_ = fix_signs(alpha, beta)
        self.canonical_correlations_ = np.clip(rho[:k], 0.0, 1.0)
        return self

    def _center_test(self, Kt: np.ndarray, view: int) -> np.ndarray:
        col_mean, total = self.gram_means_[view]
        return Kt - Kt.mean(1, keepdims=True) - col_mean[None, :] + total

    def transform(self, Xa: Any, Xb: Any | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Canonical variates ``K_c(X, X_fit) alpha`` ``(N', k)`` (kernel centred with the training statistics)."""
        self._check_fitted("dual_coef_a_", "fit(Xa, Xb)")
        Xa = as_2d_float(Xa, "Xa")
        if Xa.shape[1] != self.X_fit_a_.shape[1]:
            raise DataError(f"Xa has {Xa.shape[1]} features; KernelCCA was fitted with {self.X_fit_a_.shape[1]}.")
        za = self._center_test(self._gram(Xa, self.X_fit_a_, self.kernel_params_a_), 0) @ self.dual_coef_a_
        if Xb is None:
            return za
        Xb = as_2d_float(Xb, "Xb")
        if Xb.shape[1] != self.X_fit_b_.shape[1]:
            raise DataError(f"Xb has {Xb.shape[1]} features; KernelCCA was fitted with {self.X_fit_b_.shape[1]}.")
        return za, self._center_test(self._gram(Xb, self.X_fit_b_, self.kernel_params_b_), 1) @ self.dual_coef_b_

    def fit_transform(self, Xa: Any, Xb: Any) -> tuple[np.ndarray, np.ndarray]:
        """``fit(Xa, Xb)`` then ``transform(Xa, Xb)``."""
        return self.fit(Xa, Xb).transform(Xa, Xb)  # type: ignore[return-value]
