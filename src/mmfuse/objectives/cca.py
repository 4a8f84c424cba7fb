"""CCA-family objectives: deep CCA between two modalities and deep generalised CCA over several.

The closed-form estimators with the same maths are :class:`mmfuse.representation.CCA` and
:class:`mmfuse.representation.GCCA`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmfuse.errors import ConfigError
from mmfuse.objectives.contrastive import CrossModalObjective
from mmfuse.registry import OBJECTIVES
from mmfuse.representation._linalg import whitened_cross_covariance


def _centered(z: Tensor) -> Tensor:
    """Column-centred ``z``, in at least float32 (Cholesky and SVD have no half-precision kernels)."""
    z = z.to(torch.promote_types(z.dtype, torch.float32))
    return z - z.mean(0, keepdim=True)


def cca_loss(za: Tensor, zb: Tensor, k: int | None = None, eps: float = 1e-3) -> Tensor:
    """Deep CCA loss (Andrew, Arora, Bilmes & Livescu, "Deep Canonical Correlation Analysis", ICML 2013):
    minus the sum of the top-``k`` canonical correlations of two batches of embeddings.

    With centred ``za``, ``zb`` over ``n`` rows, ``S_aa = za^T za / (n-1) + eps I``, ``S_bb`` likewise and
    ``S_ab = za^T zb / (n-1)``, the correlations are the singular values of
    ``T = S_aa^{-1/2} S_ab S_bb^{-1/2}``, and ``L = -sum_{i<=k} sigma_i(T)`` (``k = None``: all of them, the
    trace norm ``||T||_*`` of the paper). ``T`` is formed with Cholesky factors instead of ``eigh``
    inverse square roots: same singular values, but a backward pass that stays finite when ``n < D``
    (see :func:`mmfuse.representation._linalg.whitened_cross_covariance`).

    Inputs:
        za: ``(n, D_a)``; zb: ``(n, D_b)``; k: number of correlations summed; eps: ridge ``r_1 = r_2``.

    Returns:
        scalar in ``[-min(D_a, D_b), 0]``.
    """
    n = za.shape[0]
    za, zb = _centered(za), _centered(zb)
    saa = za.T @ za / (n - 1) + eps * torch.eye(za.shape[1], dtype=za.dtype, device=za.device)
    sbb = zb.T @ zb / (n - 1) + eps * torch.eye(zb.shape[1], dtype=zb.dtype, device=zb.device)
    sigma = torch.linalg.svdvals(whitened_cross_covariance(saa, sbb, za.T @ zb / (n - 1)))  # descending
    return -sigma[: sigma.shape[0] if k is None else k].sum()


def gcca_loss(zs: Sequence[Tensor], k: int | None = None, eps: float = 1e-3) -> Tensor:
    """Deep generalised CCA loss, MAXVAR form (Benton, Khayrallah, Gujral, Reisinger, Zhang & Arora,
    "Deep Generalized Canonical Correlation Analysis", RepL4NLP 2019; Horst 1961; Kettenring 1971).

    GCCA finds ``G`` ``(n, k)``, ``G^T G = I``, and maps ``W_j`` minimising ``sum_j ||G - Z_j W_j||_F^2``;
    eliminating ``W_j`` leaves ``max_G tr(G^T M G)`` with ``M = sum_j P_j``,
    ``P_j = Z_j (Z_j^T Z_j + eps' I)^{-1} Z_j^T`` (centred ``Z_j``). The loss is

        ``L = -sum_{i<=k} lambda_i(M)``  (equal to ``sum_j ||G - Z_j W_j||^2 - k J`` when ``eps = 0``),

    each ``lambda_i`` in ``[0, J]`` for ``J`` views; for two views ``lambda_i = 1 + rho_i`` (canonical
    correlations), so it matches :func:`cca_loss` up to the constant ``-k``. ``eps`` is a covariance
    ridge (``eps' = (n - 1) eps``); ``P_j`` uses a Cholesky solve and ``eigvalsh`` (whose backward needs
    no eigenvalue gaps).

    Inputs:
        zs: list of ``J >= 2`` tensors ``(n, D_j)`` on the same rows; k: default ``min_j D_j``.

    Returns:
        scalar in ``[-k J, 0]``.
    """
    n = zs[0].shape[0]
    zs = [_centered(z) for z in zs]
    M = zs[0].new_zeros(n, n)
    for z in zs:
        gram = z.T @ z + (n - 1) * eps * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
        L = torch.linalg.cholesky(gram)
        half = torch.linalg.solve_triangular(L, z.T, upper=False)  # L^{-1} Z^T, (D_j, n)
        M = M + half.T @ half  # Z (Z^T Z + eps' I)^{-1} Z^T, (n, n)
    lam = torch.linalg.eigvalsh(M).flip(0)  # descending
    k = min(z.shape[1] for z in zs) if k is None else k
    return -lam[: min(k, n)].sum()


class _Correlation(CrossModalObjective):
    """Shared options of the correlation objectives: ``k`` (eigenvalues / correlations summed, ``None``: all) and
    ``eps`` (the covariance ridge), checked once here."""

    def __init__(
        self,
        k: int | None = None,
        eps: float = 1e-3,
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__(modalities, dims, proj_dim)
        if eps <= 0 or (k is not None and k < 1):
            name = getattr(type(self), "registry_name", type(self).__name__)
            raise ConfigError(f"Options of {name} need eps > 0 and k >= 1 (or None); got eps={eps}, k={k}.")
        self.k, self.eps = k, float(eps)


@OBJECTIVES.register("cca")
class DeepCCA(_Correlation):
    """:func:`cca_loss` between two modalities' embeddings (averaged over all pairs when ``modalities``
    is not given: the SUMCOR generalisation of CCA to several views, up to the 1/pairs factor).

    Args:
        k: number of correlations summed (default: all).
        eps: ridge on the batch covariances.
        modalities, dims, proj_dim: see :class:`~mmfuse.objectives.contrastive.CrossModalObjective`
            (CCA needs no common size; ``proj_dim`` adds linear heads).
    """

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        return cca_loss(zs[0], zs[1], self.k, self.eps)


@OBJECTIVES.register("gcca")
class DeepGCCA(_Correlation):
    """:func:`gcca_loss` over all (or the given) modalities, on rows where all of them are present.

    Args:
        k: number of eigenvalues summed (default ``min_j D_j``).
        eps: covariance ridge.
        modalities: two or more modality names (default: all of the model's).
        dims, proj_dim: see :class:`~mmfuse.objectives.contrastive.CrossModalObjective`.
    """

    group_size = None

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        return gcca_loss(zs, self.k, self.eps)
