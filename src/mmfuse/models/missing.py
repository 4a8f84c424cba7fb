"""Missing-modality handling shared by every fusion method.

* :class:`ModalityDropout` - during training, each present modality of each sample is dropped with
  probability ``p_m`` (its mask set to False), never dropping the last present one. This is the
  modality dropout of Neverova et al., "ModDrop: adaptive multi-modal gesture recognition",
  TPAMI 2016.
* :class:`MissingTokens` - an absent modality's embedding is replaced by a learned vector
  ``t_m`` instead of zeros (learned missing-modality tokens, as in e.g. Ma et al., "Are Multimodal
  Transformers Robust to Missing Modality?", CVPR 2022).

Decision-level fusions additionally renormalise their weights over the modalities present.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class ModalityDropout(nn.Module):
    """Randomly mark modalities absent during training.

    Args:
        rates: one probability for all modalities, or ``{modality: p}``.
        modalities: the model's modalities (sorted).
    """

    def __init__(self, rates: float | Mapping[str, float], modalities: list[str]) -> None:
        super().__init__()
        if isinstance(rates, (int, float)):
            rates = {m: float(rates) for m in modalities}
        self.rates = {m: float(rates.get(m, 0.0)) for m in modalities}
        for m, p in self.rates.items():
            if not 0.0 <= p < 1.0:
                raise ValueError(f"modality_dropout for {m!r} must be in [0, 1); got {p}.")

    def forward(self, masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if not self.training or not any(self.rates.values()):
            return dict(masks)
        order = sorted(masks)
        present = torch.stack([masks[m] for m in order], 1)  # (B, M)
        p = torch.tensor([self.rates.get(m, 0.0) for m in order], device=present.device)
        drop = torch.rand(present.shape, device=present.device) < p
        kept = present & ~drop
        # never drop every modality of a sample: restore one present modality at random
        lost_all = kept.sum(1) == 0
        if lost_all.any():
            noise = torch.rand(present.shape, device=present.device).masked_fill(~present, -1.0)
            pick = noise.argmax(1)
            restore = torch.zeros_like(kept).scatter_(1, pick[:, None], True) & present
            kept = torch.where(lost_all[:, None], restore, kept)
        return {m: kept[:, i] for i, m in enumerate(order)}


class MissingTokens(nn.Module):
    """Learned per-modality embeddings used where a modality is absent: ``z_m <- mask * z_m + (1 - mask) * t_m``."""

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__()
        self.tokens = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in sorted(dims.items())})
        for p in self.tokens.values():
            nn.init.normal_(p, std=0.02)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for m, z in embeddings.items():
            keep = masks[m].to(z.dtype)[:, None]
            out[m] = keep * z + (1 - keep) * self.tokens[m].to(z.dtype)
        return out
