"""Attention over modalities (additive attention on one vector per modality)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.contract import masked_softmax
from mmfuse.fusion._common import check_positive, present_embeddings
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


@FUSIONS.register("modality_attention")
class ModalityAttentionFusion(Fusion):
    """Attention-based multimodal fusion: a per-sample softmax over modalities of additive scores.

    ``z'_m = P_m z_m + c_m`` (projection to a common width ``d``), score
    ``s_m = v^T tanh(W z'_m + b)`` (one ``W, b, v`` shared by all modalities), attention
    ``a = softmax_m(s)`` renormalised over the modalities present, and the output is an MLP of the
    attention-weighted **sum**: ``z = ReLU(U sum_m a_m z'_m + u)``. A sample with no modality
    gets ``a = 0`` and ``z = ReLU(u)``.

    References: Bahdanau, Cho & Bengio, "Neural machine translation by jointly learning to align and
    translate", ICLR 2015 (additive attention); Hori et al., "Attention-based multimodal fusion for
    video description", ICCV 2017 (attention weights over modalities).

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        hidden: common width ``d`` of the projected embeddings (default ``out_dim``).
        attention_dim: width of the scoring layer ``W``.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(
        self, dims: Mapping[str, int], out_dim: int, hidden: int | None = None, attention_dim: int = 32
    ) -> None:
        super().__init__(dims, out_dim)
        hidden = self.out_dim if hidden is None else int(hidden)
        check_positive("modality_attention", out_dim=out_dim, hidden=hidden, attention_dim=attention_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in self.dims.items()})
        self.score = nn.Sequential(nn.Linear(hidden, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1, bias=False))
        self.out = nn.Sequential(nn.Linear(hidden, self.out_dim), nn.ReLU())

    def _attend(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        zs, present = present_embeddings(self, embeddings, masks)
        projected = torch.stack([self.proj[m](z) for m, z in zip(self.modalities, zs)], dim=1)  # (B, M, d)
        scores = self.score(projected).squeeze(-1)  # (B, M)
        return masked_softmax(scores, present.to(scores.dtype)), projected

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """Attention ``a`` ``(B, M)`` over the modalities present."""
        return self._attend(embeddings, masks)[0]

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        a, projected = self._attend(embeddings, masks)
        return self.out((a[:, :, None] * projected).sum(dim=1))  # (B, d) -> (B, out_dim)
