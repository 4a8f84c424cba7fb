"""Shared-subspace learning with a scatter-matrix alignment regulariser.

Each modality ``m`` has a projection ``P_m (D_m x k)`` into a common ``k``-dimensional subspace,
``Z_m = X_m P_m``. On the paired rows (every modality present, ``n`` of them) the objective is

``L = w_s R + w_a A + w_o O`` with

* ``R = sum_m ||S_m - S_bar||_F^2``, ``S_m = Z_m^T Z_m / n`` (the modality's scatter matrix in the
  subspace), ``S_bar = 1/M sum_m S_m``: the modalities' second-order statistics agree (the
  second-order alignment of CORAL, Sun, Feng & Saenko, AAAI 2016 / Deep CORAL, ECCV-W 2016,
  generalised from two domains to M modalities around their mean);
* ``A = sum_{m<m'} ||Z_m - Z_m'||_F^2 / n``: the pairing term that makes the subspace *shared*
  sample-by-sample. ``R`` alone only matches distributions (any rotation of one modality's codes
  leaves ``R`` unchanged), so it cannot align a sample's codes across modalities; the coupling of
  paired views through per-view projections follows Generalized Multiview Analysis (Sharma, Kumar,
  Daume & Jacobs, CVPR 2012);
* ``O = sum_m ||P_m^T P_m - I_k||_F^2`` (``||P_m P_m^T - I_{D_m}||_F^2`` when ``D_m < k``): keeps each
  ``P_m`` (semi-)orthonormal, which rules out the trivial minimiser ``P_m = 0`` of ``R + A``.

The whole combination is mmfuse's; the encoders can still shrink their embeddings to lower ``A``,
which the task term counteracts. Under data parallelism the paired codes of every process are gathered
(:func:`~mmfuse.objectives._distributed.gather_rows`), so ``S_m`` and ``n`` are those of the global batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.contract import tensor_sum
from mmfuse.objectives._distributed import gather_rows, world
from mmfuse.objectives.autoencoder import zero_like_graph
from mmfuse.objectives.base import Objective, paired_modalities
from mmfuse.registry import OBJECTIVES


def scatter_alignment(zs: list[Tensor]) -> Tensor:
    """``R = sum_m ||S_m - S_bar||_F^2`` with ``S_m = Z_m^T Z_m / n`` and ``S_bar = 1/M sum_m S_m``.

    Second-order (uncentred scatter) alignment of the modalities' codes, CORAL-style (Sun & Saenko,
    "Deep CORAL", ECCV Workshops 2016) over M views.

    Inputs: ``zs``: list of ``M`` paired code matrices ``(n, k)``. Returns: scalar (0 when ``n = 0``).
    """
    n = zs[0].shape[0]
    if n == 0:
        return zero_like_graph(*zs)
    scatters = torch.stack([z.T @ z / n for z in zs])  # (M, k, k)
    return ((scatters - scatters.mean(0, keepdim=True)) ** 2).sum()


def pairwise_alignment(zs: list[Tensor]) -> Tensor:
    """``A = sum_{m<m'} ||Z_m - Z_m'||_F^2 / n`` over paired rows (0 when ``n = 0``).

    Inputs: ``zs``: list of ``(n, k)``. Returns: scalar.
    """
    n = zs[0].shape[0]
    total = zero_like_graph(*zs)
    if n == 0:
        return total
    for a, b in combinations(range(len(zs)), 2):
        total = total + ((zs[a] - zs[b]) ** 2).sum() / n
    return total


def orthonormality_penalty(p: Tensor) -> Tensor:
    """``||P^T P - I_k||_F^2`` for ``P (D, k)`` with ``D >= k``, else ``||P P^T - I_D||_F^2`` (orthonormal rows).

    Zero exactly when ``P`` is semi-orthogonal; keeps a learned projection from collapsing to 0.
    """
    g = p.T @ p if p.shape[0] >= p.shape[1] else p @ p.T
    return ((g - torch.eye(g.shape[0], dtype=p.dtype, device=p.device)) ** 2).sum()


@OBJECTIVES.register("subspace")
class SharedSubspace(Objective):
    """Shared subspace with scatter alignment: ``L = w_s R + w_a A + w_o O`` (see the module docstring).

    Args:
        dims: encoder output sizes ``{m: D_m}`` (passed by the task builder).
        k: subspace dimension.
        scatter_weight: ``w_s``. align_weight: ``w_a`` (0 gives scatter alignment only).
        ortho_weight: ``w_o`` (0 disables the orthonormality penalty).

    Inputs: ``output["embeddings"] {m: (B, D_m)}``, ``output["masks"] {m: (B,)}``. Returns: scalar.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        k: int = 16,
        scatter_weight: float = 1.0,
        align_weight: float = 1.0,
        ortho_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.modalities = paired_modalities(dims, "Objective 'subspace'")
        self.k = int(k)
        self.scatter_weight, self.align_weight, self.ortho_weight = scatter_weight, align_weight, ortho_weight
        self.projections = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(int(dims[m]), self.k)) for m in self.modalities}
        )
        for p in self.projections.values():
            nn.init.orthogonal_(p)

    def project(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Subspace codes ``{m: Z_m = X_m P_m}`` ``(B, k)`` (for retrieval); rows absent in ``masks`` are zero."""
        out = {}
        for m in self.modalities:
            if m in embeddings:
                z = embeddings[m] @ self.projections[m]
                out[m] = z if masks is None else z * masks[m].to(z.dtype)[:, None]
        return out

    def terms(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted terms ``{"scatter": R, "alignment": A, "orthonormality": O}``."""
        paired = torch.stack([masks[m] for m in self.modalities]).all(0)  # (B,)
        zs = [embeddings[m][paired] @ self.projections[m] for m in self.modalities]  # each (n, k)
        if world()[1] > 1:  # S_m is a statistic of the batch: under DDP, of the global one, not of a shard
            zs = [gather_rows(z) for z in zs]
        ortho = tensor_sum(orthonormality_penalty(self.projections[m]) for m in self.modalities)
        return {"scatter": scatter_alignment(zs), "alignment": pairwise_alignment(zs), "orthonormality": ortho}

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """``w_s R + w_a A + w_o O`` on the paired rows of ``output["embeddings"]``."""
        t = self.terms(output["embeddings"], output["masks"])
        return (
            self.scatter_weight * t["scatter"]
            + self.align_weight * t["alignment"]
            + self.ortho_weight * t["orthonormality"]
        )
