"""Weighted ensembles of trained models, and the linear model that puts scikit-learn's baseline among them.

:class:`Ensemble` averages its members' outputs with fixed non-negative weights that sum to 1 (found by greedy
ensemble selection, :func:`mmfuse.evaluation.selection.ensemble_selection`):

* classification: ``p(y | x) = sum_i w_i softmax(z_i(x))``; the ensemble's ``prediction`` is ``log p``
  (log-probabilities are valid logits: ``softmax(log p) = p``, so every consumer of logits reads it unchanged);
* multi-label: ``p = sum_i w_i sigmoid(z_i)``, returned as the logit ``log p - log(1 - p)``;
* regression: ``y = sum_i w_i f_i(x)``.

:class:`LinearModel` is a standardised linear model on the flattened inputs of its modalities plus one presence
column per modality (``z = W clip((x - mu) / sigma, lo, hi) + b``), whose weights come from scikit-learn
(:mod:`mmfuse.evaluation.classical`): the one-line baseline a user compares against, as a torch module, so it is
saved as safetensors (never pickled), scored, ensembled, perturbed and explained exactly like a fusion model.

Both follow the model contract of :class:`~mmfuse.models.multimodal.MultimodalModel`: ``forward(inputs, masks)``
returns ``prediction`` and the ``masks`` used. An ensemble also returns its *primary* member's ``embeddings`` and
``fused`` (the neural member of largest weight), and exposes that member's ``encoders``/``encode``, so commands that
read representations (``embed``, ``retrieve``) use the primary member; it has no ``fusion`` of its own (``None``).

Reference: R. Caruana, A. Niculescu-Mizil, G. Crew, A. Ksikes, "Ensemble selection from libraries of models",
ICML 2004.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.contract import modality_order
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.tasks import task_kind


class LinearModel(nn.Module):
    """``z = W clip((x - mu) / sigma, lo, hi) + b`` on ``x = [flatten(inputs[m]) * mask_m for m in modalities] +
    [mask_m]``.

    Args:
        modalities: the modalities it reads (in this order).
        in_features: width of ``x`` (flattened inputs plus one presence column per modality).
        num_outputs: classes (logits), or regression targets.

    The buffers ``mean``/``scale`` and the linear layer are filled from a fitted scikit-learn pipeline
    (:func:`mmfuse.evaluation.classical.fit_linear`); a binary logistic regression's single decision value ``d``
    becomes the two logits ``(0, d)``, whose softmax is scikit-learn's ``predict_proba``. ``lo``/``hi`` are each
    standardised column's training range: a linear model extrapolates without bound, so a value beyond what it
    was fitted on (a near-constant training column that varies at test time gives ``|z|`` in the tens) is held
    at the range's edge instead of swinging every logit.
    """

    mean: Tensor
    scale: Tensor
    lo: Tensor
    hi: Tensor

    def __init__(self, modalities: Sequence[str], in_features: int, num_outputs: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.in_features, self.num_outputs = int(in_features), int(num_outputs)
        self.register_buffer("mean", torch.zeros(self.in_features))
        self.register_buffer("scale", torch.ones(self.in_features))
        self.register_buffer("lo", torch.full((self.in_features,), -torch.inf))
        self.register_buffer("hi", torch.full((self.in_features,), torch.inf))
        self.linear = nn.Linear(self.in_features, self.num_outputs)

    @staticmethod
    def features(inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor], modalities: Sequence[str]) -> Tensor:
        """The unstandardised ``x`` of the class docstring, ``(B, in_features)``."""
        b = next(iter(masks.values())).shape[0] if masks else inputs[modalities[0]].shape[0]
        present = {m: masks[m].float() if m in masks else torch.ones(b) for m in modalities}
        parts = [inputs[m].reshape(b, -1).float() * present[m][:, None] for m in modalities]
        return torch.cat(parts + [present[m][:, None] for m in modalities], 1)

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        b = inputs[self.modalities[0]].shape[0]
        masks = {m: (masks or {}).get(m, torch.ones(b, dtype=torch.bool)) for m in self.modalities}
        x = self.features(inputs, masks, self.modalities)
        z = torch.clamp((x - self.mean) / self.scale, self.lo, self.hi)
        return {"prediction": self.linear(z), "masks": masks, "embeddings": {}}


class Ensemble(nn.Module):
    """Fixed-weight average of members' outputs (module docstring).

    Args:
        members: trained models following the model contract.
        weights: one non-negative weight per member; normalised to sum to 1.
        task: the task kind's name (how outputs are averaged).
    """

    weights: Tensor

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float], task: str) -> None:
        super().__init__()
        if len(members) != len(weights) or not members:
            raise ValueError("an ensemble needs one weight per member and at least one member")
        w = torch.tensor([float(v) for v in weights], dtype=torch.float64)
        if bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"ensemble weights must be non-negative with a positive sum, got {list(weights)}")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", (w / w.sum()).float())
        self.task = task_kind(task).name
        mods: list[str] = []
        for m in members:
            mods += [x for x in getattr(m, "modalities", []) if x not in mods]
        self.modalities = modality_order({m: None for m in mods})
        neural = [i for i, m in enumerate(members) if not isinstance(m, LinearModel)]
        self.primary_index = max(neural, key=lambda i: float(self.weights[i])) if neural else None

    @property
    def primary(self) -> nn.Module | None:
        """The neural member of largest weight (``None`` for an ensemble of linear models only)."""
        return None if self.primary_index is None else self.members[self.primary_index]

    @property
    def fusion(self) -> None:
        """None: an ensemble has no single fusion module (its members' modality weights do not describe it)."""
        return None

    @property
    def encoders(self) -> Any:
        return getattr(self.primary, "encoders", nn.ModuleDict())

    def encode(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The primary member's per-modality embeddings."""
        primary = self.primary
        if not isinstance(primary, MultimodalModel):
            raise TypeError("This ensemble has no fusion member (only linear models), so it learns no embeddings.")
        return primary.encode(inputs, masks)

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        kind = task_kind(self.task)
        outs = [m(inputs, masks) for m in self.members]
        preds = [o["prediction"].float() for o in outs]
        if kind.activation == "softmax":
            p = _weighted(self.weights, [torch.softmax(z, 1) for z in preds])
            prediction = torch.log(torch.clamp(p, min=1e-12))
        elif kind.activation == "sigmoid":
            p = torch.clamp(_weighted(self.weights, [torch.sigmoid(z) for z in preds]), 1e-7, 1 - 1e-7)
            prediction = torch.log(p) - torch.log1p(-p)
        else:
            prediction = _weighted(self.weights, preds)
        main = outs[self.primary_index] if self.primary_index is not None else outs[0]
        used: dict[str, Tensor] = {}
        for o in outs:
            for m, v in o["masks"].items():
                used.setdefault(m, v)
        return {
            "prediction": prediction,
            "masks": used,
            "embeddings": main.get("embeddings", {}),
            **({"fused": main["fused"]} if "fused" in main else {}),
        }


def _weighted(weights: Tensor, values: Sequence[Tensor]) -> Tensor:
    """``sum_i weights[i] * values[i]``."""
    total = weights[0] * values[0]
    for w, v in zip(weights[1:], values[1:]):
        total = total + w * v
    return total
