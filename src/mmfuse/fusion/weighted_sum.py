"""Weighted sum of projected embeddings, with learned (or fixed) modality weights."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.fusion._common import check_positive, present_embeddings, present_weights
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


@FUSIONS.register("weighted_sum")
class WeightedSumFusion(Fusion):
    """Sum of per-modality projections weighted by a softmax over the modalities present.

    ``z = sum_m w_m (W_m z_m + b_m)`` with ``w = softmax(a)`` renormalised over the modalities
    present in each sample (``w_m = exp(a_m) / sum_{k present} exp(a_k)``, 0 for absent ones); a
    sample with no modality gets ``z = 0``. ``a`` is learned (initialised to equal weights) unless
    ``learn_weights=False``.

    Reference: the weighted-sum / linear-weighted fusion rule of Atrey, Hossain, El Saddik &
    Kankanhalli, "Multimodal fusion for multimedia analysis: a survey", Multimedia Systems 2010
    (linear weighted fusion), here with learned weights on learned projections.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        weights: optional initial (or fixed) positive weights ``{m: w_m}``; they are normalised to
            sum to 1, i.e. ``a_m = log w_m``. Every modality must be given.
        learn_weights: learn ``a`` (True) or keep it fixed as a buffer (False).

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        weights: Mapping[str, float] | None = None,
        learn_weights: bool = True,
    ) -> None:
        super().__init__(dims, out_dim)
        check_positive("weighted_sum", out_dim=out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(d, self.out_dim) for m, d in self.dims.items()})
        if weights is None:
            init = torch.zeros(len(self.modalities))
        else:
            if set(weights) != set(self.modalities) or any(float(w) <= 0 for w in weights.values()):
                raise ConfigError(
                    f"Fusion 'weighted_sum' option weights={dict(weights)} must give a positive "
                    f"weight to each of {self.modalities}."
                )
            init = torch.tensor([math.log(float(weights[m])) for m in self.modalities])
        if learn_weights:
            self.logits = nn.Parameter(init)
        else:
            self.register_buffer("logits", init)

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """``w`` ``(B, M)``: softmax of the learned logits over the modalities present."""
        _, present = present_embeddings(self, embeddings, masks)
        return present_weights(self.logits, present)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        w = present_weights(self.logits, present)  # (B, M)
        projected = torch.stack([self.proj[m](z) for m, z in zip(self.modalities, zs)], dim=1)  # (B, M, out_dim)
        return (w[:, :, None] * projected).sum(dim=1)
