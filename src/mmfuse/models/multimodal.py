"""The multimodal model: per-modality encoders -> fusion -> head.

It only composes modules that were built elsewhere (see :mod:`mmfuse.models.builder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.contract import modality_order, validate_batch
from mmfuse.errors import ConfigError
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
        imputers: optional generative imputers ``{"gan" | "vae": Imputer}`` of absent embeddings
            (:mod:`mmfuse.models.imputation`). Which of zero / token / imputer fills an absent row is the model's
            ``missing`` strategy (default ``"token"`` with tokens, else ``"zero"``; see :meth:`set_missing`).

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
        imputers: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.modalities = modality_order(encoders)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.unimodal_heads = nn.ModuleDict(dict(unimodal_heads or {}))
        self.missing_tokens = missing_tokens
        self.modality_dropout = modality_dropout
        self.imputers = nn.ModuleDict(dict(sorted((imputers or {}).items())))
        self.missing = "token" if missing_tokens is not None else "zero"

    def missing_strategies(self) -> list[str]:
        """The strategies this model can fill an absent modality with: ``"zero"``, ``"token"`` (with learned
        tokens) and each of its imputers."""
        return ["zero"] + (["token"] if self.missing_tokens is not None else []) + list(self.imputers)

    def set_missing(self, strategy: str) -> None:
        """Fill absent modalities with ``strategy`` from now on (one of :meth:`missing_strategies`)."""
        if strategy not in self.missing_strategies():
            hint = (
                " Train an imputer first (mmfuse.training.imputation.fit_imputer)."
                if strategy in ("gan", "vae")
                else " A learned token needs a model trained with missing_token=True."
                if strategy == "token"
                else ""
            )
            raise ConfigError(
                f"Missing-modality strategy {strategy!r} is not available for this model; "
                f"it has {self.missing_strategies()}.{hint}"
            )
        self.missing = strategy

    def fill_missing(
        self, emb: Mapping[str, Tensor], masks: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Absent rows of zero embeddings ``emb`` filled by the ``missing`` strategy; returns ``(embeddings, masks
        the fusion sees)``: a learned token or an imputed row counts as present. Present rows are never changed."""
        if self.missing == "token" and self.missing_tokens is not None:
            # the token stands in for the absent modality, so the fusion sees it as present
            return self.missing_tokens(emb, masks), {m: torch.ones_like(v) for m, v in masks.items()}
        if self.missing in self.imputers:
            return self.imputers[self.missing](emb, masks)
        return dict(emb), dict(masks)

    def _embed(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        emb = {}
        for m in self.modalities:
            z = self.encoders[m](inputs[m])
            emb[m] = z * masks[m].to(z.dtype)[:, None]
        return emb

    def encode(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality embeddings ``{m: (B, D_m)}``; absent rows are zero, or filled by the ``missing`` strategy."""
        return self.fill_missing(self._embed(inputs, masks), masks)[0]

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"Model expects modalities {self.modalities}; the batch lacks {missing}.")
        masks = validate_batch(
            {m: inputs[m] for m in self.modalities}, {m: v for m, v in (masks or {}).items() if m in self.encoders}
        )
        if self.modality_dropout is not None:
            masks = self.modality_dropout(masks)
        emb, fusion_masks = self.fill_missing(self._embed(inputs, masks), masks)
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
