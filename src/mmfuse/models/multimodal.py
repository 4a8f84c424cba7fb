"""The multimodal model: per-modality encoders -> fusion -> head.

It only composes modules that were built elsewhere (see :mod:`mmfuse.models.builder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.contract import modality_order, validate_batch
from mmfuse.fusion.base import Fusion
from mmfuse.fusion.evidential import produces_evidence
from mmfuse.models.missing import MissingTokens, ModalityDropout


class MultimodalModel(nn.Module):
    """Encoders, a fusion module and a head.

    Args:
        encoders: ``{modality: encoder}``, each with ``out_dim``.
        fusion: a :class:`~mmfuse.fusion.base.Fusion` built for the encoders' dims.
        head: maps the fused ``(B, fusion.out_dim)`` to predictions; ``None`` for decision-level fusions.
        unimodal_heads: optional ``{modality: head}`` giving per-modality predictions.
        missing_tokens: optional learned tokens for absent modalities (else absent rows are zero).
        modality_dropout: optional training-time modality dropout.

    Inputs:
        inputs: ``{m: Tensor (B, ...)}``; masks: ``{m: BoolTensor (B,)}`` (default: all present).

    Returns:
        dict with ``prediction`` ``(B, num_outputs)``, ``fused`` ``(B, D)``, ``embeddings``
        ``{m: (B, D_m)}``, ``masks`` (after modality dropout), with unimodal heads ``unimodal``, and with an
        evidential fusion ``evidence`` (:class:`~mmfuse.fusion.evidential.Evidence`: the Dirichlets).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: Fusion,
        head: nn.Module | None,
        unimodal_heads: Mapping[str, nn.Module] | None = None,
        missing_tokens: MissingTokens | None = None,
        modality_dropout: ModalityDropout | None = None,
    ) -> None:
        super().__init__()
        self.modalities = modality_order(encoders)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.unimodal_heads = nn.ModuleDict(dict(unimodal_heads or {}))
        self.missing_tokens = missing_tokens
        self.modality_dropout = modality_dropout

    def encode(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality embeddings ``{m: (B, D_m)}``; absent rows are zero (or the learned token)."""
        emb = {}
        for m in self.modalities:
            z = self.encoders[m](inputs[m])
            emb[m] = z * masks[m].to(z.dtype)[:, None]
        if self.missing_tokens is not None:
            emb = self.missing_tokens(emb, masks)
        return emb

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"Model expects modalities {self.modalities}; the batch lacks {missing}.")
        masks = validate_batch(
            {m: inputs[m] for m in self.modalities}, {m: v for m, v in (masks or {}).items() if m in self.encoders}
        )
        if self.modality_dropout is not None:
            masks = self.modality_dropout(masks)
        emb = self.encode(inputs, masks)
        # with learned missing tokens, the token stands in for the absent modality, so the fusion sees it as present
        fusion_masks = {m: torch.ones_like(v) for m, v in masks.items()} if self.missing_tokens is not None else masks
        evidence = None
        if produces_evidence(self.fusion):  # evidential fusion: keep its Dirichlets for the loss and uncertainty
            evidence = self.fusion.evidence(emb, fusion_masks)
            fused = self.fusion.predict_from(evidence)
        else:
            fused = self.fusion(emb, fusion_masks)
        out: dict[str, Any] = {"prediction": self.head(fused), "fused": fused, "embeddings": emb, "masks": masks}
        if evidence is not None:
            out["evidence"] = evidence
        if len(self.unimodal_heads):
            out["unimodal"] = {m: self.unimodal_heads[m](emb[m]) for m in self.modalities}
        return out
