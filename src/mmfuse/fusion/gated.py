"""Gated Multimodal Unit, generalised from two to M modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.contract import masked_softmax
from mmfuse.fusion._common import check_positive, present_embeddings
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


@FUSIONS.register("gated")
class GatedFusion(Fusion):
    """Gated Multimodal Unit (GMU) for M modalities.

    ``h_m = tanh(W_m z_m + b_m)``, gate logits ``s = W_g [z_1; ...; z_M] + b_g`` (absent ``z_m`` are 0),
    gates ``g = softmax_m(s)`` over the modalities present, and ``h = sum_m g_m * h_m``.

    With ``per_unit=True`` (the paper's GMU) ``s`` has one logit per modality *and* hidden unit,
    ``(B, M, out_dim)``, and the gating is elementwise; for two modalities this is exactly
    ``h = g * h_1 + (1 - g) * h_2`` with ``g = sigmoid((W_g1 - W_g2) [z_1; z_2] + b_g1 - b_g2)``, the GMU
    of the paper. With ``per_unit=False`` there is one scalar gate per modality, ``(B, M)``. A sample
    with no modality gets ``h = 0``.

    Reference: Arevalo, Solorio, Montes-y-Gomez & Gonzalez, "Gated Multimodal Units for Information
    Fusion", ICLR Workshop 2017.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        per_unit: elementwise gates (True, as in the paper) or one gate per modality (False).

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, per_unit: bool = True) -> None:
        super().__init__(dims, out_dim)
        check_positive("gated", out_dim=out_dim)
        self.per_unit = bool(per_unit)
        self.hidden = nn.ModuleDict({m: nn.Linear(d, self.out_dim) for m, d in self.dims.items()})
        width = self.out_dim if self.per_unit else 1
        self.gate = nn.Linear(sum(self.dims.values()), len(self.modalities) * width)

    def gates(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """Gates ``g`` ``(B, M, out_dim)`` (or ``(B, M, 1)``), summing to 1 over the modalities present."""
        zs, present = present_embeddings(self, embeddings, masks)
        return self._gates(zs, present)

    def _gates(self, zs: list[Tensor], present: Tensor) -> Tensor:
        logits = self.gate(torch.cat(zs, dim=1)).view(present.shape[0], len(self.modalities), -1)  # (B, M, width)
        return masked_softmax(logits, present.to(logits.dtype)[:, :, None], dim=1)

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """Gate of each modality averaged over hidden units, ``(B, M)``."""
        return self.gates(embeddings, masks).mean(dim=2)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        g = self._gates(zs, present)  # (B, M, width)
        h = torch.stack([torch.tanh(self.hidden[m](z)) for m, z in zip(self.modalities, zs)], dim=1)  # (B, M, out_dim)
        return (g * h).sum(dim=1)
