"""Tensor Fusion Network (outer product) and its low-rank factorisation (LMF)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.fusion._common import check_positive, present_embeddings
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


def _with_one(z: Tensor) -> Tensor:
    """``[z; 1]`` ``(B, d + 1)``."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)


def tensor_fusion(zs: Sequence[Tensor]) -> Tensor:
    """``vec(z~_1 ⊗ z~_2 ⊗ ... ⊗ z~_M)`` with ``z~_m = [z_m; 1]`` (Zadeh et al. 2017, generalised to M modalities).

    Flattened row-major with the first modality's index varying slowest: entry
    ``(i_1, ..., i_M)`` sits at ``sum_m i_m prod_{k>m} (d_k + 1)``. Because of the appended 1 the
    vector holds the constant 1 (last entry), every unimodal ``z_m`` and every cross-modal product.
    Example: ``z_1 = [2], z_2 = [3]`` gives ``[2*3, 2*1, 1*3, 1*1] = [6, 2, 3, 1]``.

    Inputs:
        zs: ``[(B, d_m)]``.

    Returns:
        ``(B, prod_m (d_m + 1))``.
    """
    out = _with_one(zs[0])
    for z in zs[1:]:
        out = (out[:, :, None] * _with_one(z)[:, None, :]).flatten(1)  # (B, P) x (B, d + 1) -> (B, P (d + 1))
    return out


def low_rank_tensor_fusion(zs: Sequence[Tensor], factors: Sequence[Tensor], bias: Tensor) -> Tensor:
    """``h = sum_{i=1}^r prod_m ([z_m; 1] W_m^(i)) + b`` (Liu et al. 2018; elementwise product over modalities).

    Equals the linear map ``W vec(z~_1 ⊗ ... ⊗ z~_M) + b`` of :func:`tensor_fusion` with the weight
    tensor ``W[o, i_1, ..., i_M] = sum_i prod_m W_m^(i)[i_m, o]`` (a rank-r CP decomposition), without
    ever forming the outer product.

    Inputs:
        zs: ``[(B, d_m)]``; factors: ``[(r, d_m + 1, out)]``; bias: ``(out,)``.

    Returns:
        ``(B, out)`` (pre-activation).
    """
    prod = None
    for z, w in zip(zs, factors):
        fz = torch.einsum("bd,rdo->bro", _with_one(z), w)  # (B, r, out)
        prod = fz if prod is None else prod * fz
    assert prod is not None, "low_rank_tensor_fusion needs at least one modality"
    return prod.sum(dim=1) + bias


@FUSIONS.register("tensor")
class TensorFusion(Fusion):
    """Tensor Fusion Network: a linear map of the outer product of the ``[z_m; 1]``.

    ``z'_m = P_m z_m + c_m`` projected to ``d = rank_dim`` (set to 0 where ``m`` is absent, keeping the
    appended 1), ``Z = vec([z'_1; 1] ⊗ ... ⊗ [z'_M; 1])`` of size ``(d + 1)^M`` (see
    :func:`tensor_fusion`), and ``z = ReLU(W Z + b)``. An absent modality thus removes exactly its
    own unimodal and cross terms and keeps those of the others.

    Reference: Zadeh, Chen, Poria, Cambria & Morency, "Tensor Fusion Network for Multimodal
    Sentiment Analysis", EMNLP 2017.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        rank_dim: width ``d`` of each projected embedding (the tensor has ``(d + 1)^M`` entries).
        max_params: refuse (one sentence, pointing at ``low_rank_tensor``) when the output layer's
            ``(d + 1)^M * out_dim`` weights would exceed this; the product grows exponentially with ``M``.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, rank_dim: int = 8, max_params: int = 5_000_000) -> None:
        super().__init__(dims, out_dim)
        check_positive("tensor", out_dim=out_dim, rank_dim=rank_dim, max_params=max_params)
        width = (rank_dim + 1) ** len(self.modalities)
        if width * self.out_dim > max_params:
            fits = max(1, int((max_params / self.out_dim) ** (1 / len(self.modalities))) - 1)
            raise ConfigError(
                f"Fusion 'tensor' over {len(self.modalities)} modalities with rank_dim={rank_dim} "
                f"forms a {width:,}-wide "
                f"outer product ({width * self.out_dim / 1e6:.1f} M weights), over max_params={max_params:,}; "
                f"use fusion "
                f"'low_rank_tensor' (the same model in rank-r form), or fusion_params rank_dim={fits} "
                f"or a larger max_params."
            )
        self.proj = nn.ModuleDict({m: nn.Linear(d, rank_dim) for m, d in self.dims.items()})
        self.linear = nn.Linear((rank_dim + 1) ** len(self.modalities), self.out_dim)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        projected = [
            self.proj[m](z) * present[:, i, None].to(z.dtype) for i, (m, z) in enumerate(zip(self.modalities, zs))
        ]
        return torch.relu(self.linear(tensor_fusion(projected)))


@FUSIONS.register("low_rank_tensor")
class LowRankTensorFusion(Fusion):
    """Low-rank Multimodal Fusion (LMF): TFN with its weight tensor in rank-``r`` CP form.

    ``z = ReLU(sum_{i=1}^r prod_m ([z_m; 1] W_m^(i)) + b)`` with modality-specific factors
    ``W_m^(i)`` of shape ``(D_m + 1, out_dim)`` (stored as ``factors[m]``: ``(r, D_m + 1, out_dim)``)
    applied to the embeddings directly (see :func:`low_rank_tensor_fusion`). An absent ``z_m`` is 0,
    so its factor contributes only the row that multiplies the appended 1. Cost is linear in the
    number of modalities instead of exponential.

    Reference: Liu, Shen, Lakshminarasimhan, Liang, Zadeh & Morency, "Efficient Low-rank
    Multimodal Fusion with Modality-Specific Factors", ACL 2018.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        rank: CP rank ``r``.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, rank: int = 4) -> None:
        super().__init__(dims, out_dim)
        check_positive("low_rank_tensor", out_dim=out_dim, rank=rank)
        self.rank = int(rank)
        self.factors = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(self.rank, d + 1, self.out_dim)) for m, d in self.dims.items()}
        )
        for w in self.factors.values():
            nn.init.xavier_normal_(w)
        self.bias = nn.Parameter(torch.zeros(self.out_dim))

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, _ = present_embeddings(self, embeddings, masks)
        return torch.relu(low_rank_tensor_fusion(zs, [self.factors[m] for m in self.modalities], self.bias))
