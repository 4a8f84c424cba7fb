"""Hybrid fusion: a feature-level branch and a decision-level branch combined into one representation."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.fusion._common import check_positive, present_embeddings, present_weights
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


@FUSIONS.register("hybrid")
class HybridFusion(Fusion):
    """Hybrid (feature-level + decision-level) fusion, returned as a feature-level representation.

    * feature-level branch: ``f = ReLU(W_f [z_1; ...; z_M] + b_f)`` (absent ``z_m`` are 0), as ``concat``;
    * decision-level branch: per-modality predictors ``d_m = tanh(U_m z_m + c_m)`` (``decision_dim``
      scores each), combined by learned weights over the modalities present,
      ``d = sum_m w_m d_m`` with ``w = softmax(a)`` renormalised over them (``d = 0`` if none);
    * output: ``z = ReLU(W_c [f; d] + b_c)``, ``(B, out_dim)``, which a head turns into predictions
      (so ``decision_level`` is False).

    Reference: Atrey, Hossain, El Saddik & Kankanhalli, "Multimodal fusion for multimedia analysis:
    a survey", Multimedia Systems 2010 (hybrid fusion: combining feature-level and decision-level fusion).

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation (and of the feature branch).
        decision_dim: number of scores of each per-modality predictor (default ``out_dim``).

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, decision_dim: int | None = None) -> None:
        super().__init__(dims, out_dim)
        decision_dim = self.out_dim if decision_dim is None else int(decision_dim)
        check_positive("hybrid", out_dim=out_dim, decision_dim=decision_dim)
        self.feature = nn.Sequential(nn.Linear(sum(self.dims.values()), self.out_dim), nn.ReLU())
        self.decision = nn.ModuleDict({m: nn.Linear(d, decision_dim) for m, d in self.dims.items()})
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.combine = nn.Sequential(nn.Linear(self.out_dim + decision_dim, self.out_dim), nn.ReLU())

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """Weights ``w`` ``(B, M)`` of the decision-level branch."""
        _, present = present_embeddings(self, embeddings, masks)
        return present_weights(self.logits, present)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        f = self.feature(torch.cat(zs, dim=1))  # (B, out_dim)
        scores = torch.stack([torch.tanh(self.decision[m](z)) for m, z in zip(self.modalities, zs)], dim=1)  # (B, M, k)
        d = (present_weights(self.logits, present)[:, :, None] * scores).sum(dim=1)  # (B, k)
        return self.combine(torch.cat([f, d], dim=1))
