"""Private linear-algebra helpers shared by the CCA-family estimators and losses.

Numpy helpers serve the (non-differentiable) estimators; the torch helper serves the losses and is
written so that its backward pass stays finite on rank-deficient batches.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmfuse.errors import ConfigError, DataError


class EstimatorMixin:
    """scikit-learn's estimator protocol without importing scikit-learn (it costs ~1.5 s at import).

    Constructor arguments are stored unchanged under their own names; ``get_params`` /
    ``set_params`` make the estimators work with ``sklearn.base.clone`` and grid search.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> EstimatorMixin:
        """Set constructor arguments; unknown names raise."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {name!r}; valid parameters: {valid}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self, attr: str, how: str) -> None:
        if not hasattr(self, attr):
            raise ConfigError(f"This {type(self).__name__} is not fitted yet; call {how} first.")


def as_2d_float(X: Any, name: str) -> np.ndarray:
    """``X`` as a finite float64 ``(N, D)`` array; a 1-D array becomes one column."""
    if isinstance(X, Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name} has shape {arr.shape}; give a 2-D array of shape (samples, features).")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} holds NaN or infinite values; drop or impute those rows first.")
    return arr


def check_paired(views: list[np.ndarray], names: list[str], min_rows: int = 2) -> int:
    """Common row count of ``views``; raises if they differ or are too short."""
    rows = {n: v.shape[0] for n, v in zip(names, views)}
    if len(set(rows.values())) != 1:
        raise DataError(f"Views have different numbers of rows {rows}; give one row per sample in every view.")
    n = next(iter(rows.values()))
    if n < min_rows:
        raise DataError(f"Views have {n} row(s); at least {min_rows} paired samples are needed.")
    return n


def inv_sqrtm_psd(S: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """``S^{-1/2} = V diag(max(lambda, floor)^{-1/2}) V^T`` of a symmetric PSD matrix via ``eigh``."""
    lam, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.maximum(lam, floor) ** -0.5) @ V.T


def shrunk_range_basis(
    lam: np.ndarray, U: np.ndarray, reg: float, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factor ``F`` with ``F F^T = K (K + reg I)^{-1}`` for ``K = U diag(lam) U^T`` (PSD).

    Eigenvalues below ``tol * max(lam)`` are dropped (they contribute nothing). With ``K = X X^T``
    this is the ridge hat matrix ``X (X^T X + reg I)^{-1} X^T`` (``lam`` = squared singular values).

    Returns:
        ``F`` ``(N, r)``, the kept eigenvalues ``(r,)`` and eigenvectors ``(N, r)``, largest first.
    """
    order = np.argsort(lam)[::-1]
    lam, U = lam[order], U[:, order]
    keep = lam > tol * max(float(lam[0]), np.finfo(float).tiny)
    lam, U = lam[keep], U[:, keep]
    return U * np.sqrt(lam / (lam + reg)), lam, U


def fix_signs(W: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flip columns so that each column of ``W`` has its largest-magnitude entry positive.

    The same flips are applied to ``others`` (paired directions), making results deterministic.
    """
    idx = np.argmax(np.abs(W), axis=0)
    s = np.sign(W[idx, np.arange(W.shape[1])])
    s[s == 0] = 1.0
    return (W * s,) + tuple(o * s for o in others)


def whitened_cross_covariance(saa: Tensor, sbb: Tensor, sab: Tensor) -> Tensor:
    """``La^{-1} Sab Lb^{-T}`` with ``Saa = La La^T``, ``Sbb = Lb Lb^T`` (Cholesky).

    It has the same singular values as ``T = Saa^{-1/2} Sab Sbb^{-1/2}`` (``La^{-1} Saa^{1/2}`` is
    orthogonal), but its backward pass needs no eigenvalue gaps: the ``eigh`` route divides by
    ``lambda_i - lambda_j``, which is zero whenever the batch is smaller than the embedding size
    (the ridge then makes many eigenvalues equal).
    """
    La = torch.linalg.cholesky(saa)
    Lb = torch.linalg.cholesky(sbb)
    left = torch.linalg.solve_triangular(La, sab, upper=False)  # La^{-1} Sab, (Da, Db)
    return torch.linalg.solve_triangular(Lb, left.T, upper=False).T  # (Da, Db)
