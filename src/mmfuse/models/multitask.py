"""Multi-task multimodal models: hard and soft parameter sharing.

* :class:`HardSharingModel` - one trunk (encoders + fusion) shared by all tasks, one head per task
  (hard parameter sharing, Caruana, "Multitask Learning", Machine Learning 1997).
* :class:`SoftSharingModel` - one trunk per task, tied by the penalty
  ``Omega = sum_{t<t'} sum_p ||theta_t^p - theta_t'^p||_2^2`` over corresponding parameters (soft
  sharing, Duong, Cohn, Bird & Cook, "Low Resource Dependency Parsing: Cross-lingual Parameter
  Sharing in a Neural Network Parser", ACL 2015; Ruder, arXiv:1706.05098, 2017).

Both only compose modules built elsewhere and return ``{"prediction": {task: (B, C_t)}, ...}``;
train them with :func:`mmfuse.objectives.multitask.multitask_loss` (their ``loss`` method) or the
``"multitask"`` objective.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from itertools import combinations
from typing import Any

from torch import Tensor, nn

from mmfuse.contract import tensor_sum, validate_batch
from mmfuse.errors import ConfigError
from mmfuse.fusion.base import Fusion
from mmfuse.models.missing import MissingTokens, ModalityDropout
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.objectives.multitask import multitask_loss


def _headless(
    encoders: Mapping[str, nn.Module],
    fusion: Fusion,
    missing_tokens: MissingTokens | None = None,
    modality_dropout: ModalityDropout | None = None,
) -> MultimodalModel:
    if getattr(fusion, "decision_level", False):
        raise ConfigError(
            f"Fusion {type(fusion).__name__} is decision-level (it predicts directly); "
            f"multi-task models need a feature-level fusion."
        )
    return MultimodalModel(
        encoders, fusion, head=None, missing_tokens=missing_tokens, modality_dropout=modality_dropout
    )


class HardSharingModel(nn.Module):
    """Shared encoders + fusion (one copy) and a head per task: ``y_t = h_t(fuse(f_1(x_1), ..., f_M(x_M)))``.

    Args:
        encoders: ``{modality: encoder}``; fusion: a feature-level fusion built for their dims.
        heads: ``{task: head (B, fusion.out_dim) -> (B, C_t)}``.
        task_weights: ``{task: w_t}`` used by :meth:`loss` (default 1).
        missing_tokens, modality_dropout: as in :class:`~mmfuse.models.MultimodalModel`.

    Inputs: ``inputs {m: (B, ...)}``, ``masks {m: (B,)}``.
    Returns: ``{"prediction": {t: (B, C_t)}, "fused": (B, D), "embeddings": {m: (B, D_m)}, "masks"}``.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: Fusion,
        heads: Mapping[str, nn.Module],
        task_weights: Mapping[str, float] | None = None,
        missing_tokens: MissingTokens | None = None,
        modality_dropout: ModalityDropout | None = None,
    ) -> None:
        super().__init__()
        if not heads:
            raise ConfigError("HardSharingModel needs at least one task head.")
        self.trunk = _headless(encoders, fusion, missing_tokens, modality_dropout)
        self.tasks = sorted(heads)
        self.heads = nn.ModuleDict({t: heads[t] for t in self.tasks})
        self.task_weights = {t: float((task_weights or {}).get(t, 1.0)) for t in self.tasks}

    @classmethod
    def from_model(cls, model: MultimodalModel, heads: Mapping[str, nn.Module], **kwargs: Any) -> HardSharingModel:
        """Reuse the encoders, fusion and missing-modality modules of a built :class:`MultimodalModel` (its head is
        dropped)."""
        kwargs.setdefault("missing_tokens", model.missing_tokens)
        kwargs.setdefault("modality_dropout", model.modality_dropout)
        return cls(dict(model.encoders), model.fusion, heads, **kwargs)

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        """Shared trunk once, then every head: ``{"prediction": {t: h_t(fused)}, ...}`` (see the class docstring)."""
        out = self.trunk(inputs, masks)
        fused = out["fused"]
        return {
            "prediction": {t: self.heads[t](fused) for t in self.tasks},
            "fused": fused,
            "embeddings": out["embeddings"],
            "masks": out["masks"],
        }

    def loss(
        self, output: Mapping[str, Any], targets: Mapping[str, Tensor], task_types: Mapping[str, str]
    ) -> dict[str, Tensor]:
        """``{task: L_t, "total": sum_t w_t L_t}`` (see :func:`~mmfuse.objectives.multitask.multitask_loss`)."""
        return multitask_loss(output["prediction"], targets, task_types, self.task_weights)


class SoftSharingModel(nn.Module):
    """One trunk per task tied by ``Omega = sum_{t<t'} sum_p ||theta_t^p - theta_t'^p||^2`` (weighted by
    ``penalty_weight``).

    Args:
        trunks: ``{task: MultimodalModel}`` built without a head, all of the same architecture
            (:meth:`from_modules` makes them by copying one encoder set and fusion).
        heads: ``{task: head}``. task_weights: ``{task: w_t}`` (default 1). penalty_weight: weight of ``Omega``.
        modality_dropout: applied once, so every task sees the same masks.

    Inputs: ``inputs {m: (B, ...)}``, ``masks {m: (B,)}``.
    Returns: ``{"prediction": {t: (B, C_t)}, "fused": {t: (B, D)}, "embeddings": {t: {m: (B, D_m)}}, "masks",
    "sharing_penalty": penalty_weight * Omega}``.
    """

    def __init__(
        self,
        trunks: Mapping[str, MultimodalModel],
        heads: Mapping[str, nn.Module],
        task_weights: Mapping[str, float] | None = None,
        penalty_weight: float = 1e-3,
        modality_dropout: ModalityDropout | None = None,
    ) -> None:
        super().__init__()
        self.tasks = sorted(heads)
        if sorted(trunks) != self.tasks:
            raise ConfigError(
                f"SoftSharingModel needs one trunk per task head; trunks {sorted(trunks)}, heads {self.tasks}."
            )
        shapes = {t: [(n, p.shape) for n, p in trunks[t].named_parameters()] for t in self.tasks}
        for t in self.tasks:
            if not isinstance(trunks[t].head, nn.Identity):
                raise ConfigError(
                    f"Trunk of task {t!r} has a head; build trunks with head=None "
                    "(or use SoftSharingModel.from_modules)."
                )
            if shapes[t] != shapes[self.tasks[0]]:
                raise ConfigError(
                    f"Trunk of task {t!r} differs in architecture from that of {self.tasks[0]!r}; "
                    f"soft sharing ties corresponding parameters."
                )
        self.trunks = nn.ModuleDict({t: trunks[t] for t in self.tasks})
        self.heads = nn.ModuleDict({t: heads[t] for t in self.tasks})
        self.task_weights = {t: float((task_weights or {}).get(t, 1.0)) for t in self.tasks}
        self.penalty_weight = float(penalty_weight)
        self.modality_dropout = modality_dropout

    @classmethod
    def from_modules(
        cls,
        encoders: Mapping[str, nn.Module],
        fusion: Fusion,
        heads: Mapping[str, nn.Module],
        missing_tokens: MissingTokens | None = None,
        **kwargs: Any,
    ) -> SoftSharingModel:
        """One deep copy of ``encoders`` + ``fusion`` (+ ``missing_tokens``) per task (all start equal, so ``Omega = 0``
        at initialisation)."""
        trunks = {
            t: _headless(copy.deepcopy(dict(encoders)), copy.deepcopy(fusion), copy.deepcopy(missing_tokens))
            for t in sorted(heads)
        }
        return cls(trunks, heads, **kwargs)

    def sharing_penalty(self) -> Tensor:
        """``Omega = sum_{t<t'} sum_p ||theta_t^p - theta_t'^p||_2^2`` (unweighted; 0 with a single task)."""
        params = {t: list(self.trunks[t].parameters()) for t in self.tasks}
        total = tensor_sum(p.sum() * 0.0 for p in params[self.tasks[0]])
        for a, b in combinations(self.tasks, 2):
            for pa, pb in zip(params[a], params[b]):
                total = total + ((pa - pb) ** 2).sum()
        return total

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        """Each task's trunk on the same (dropped-out) masks, its head, and ``penalty_weight * Omega``."""
        first = self.trunks[self.tasks[0]]
        assert isinstance(first, MultimodalModel)  # __init__ takes MultimodalModel trunks
        modalities = first.modalities
        masks = validate_batch({m: inputs[m] for m in modalities}, masks)
        if self.modality_dropout is not None:
            masks = self.modality_dropout(masks)
        outs = {t: self.trunks[t](inputs, masks) for t in self.tasks}
        return {
            "prediction": {t: self.heads[t](outs[t]["fused"]) for t in self.tasks},
            "fused": {t: outs[t]["fused"] for t in self.tasks},
            "embeddings": {t: outs[t]["embeddings"] for t in self.tasks},
            "masks": masks,
            "sharing_penalty": self.penalty_weight * self.sharing_penalty(),
        }

    def loss(
        self, output: Mapping[str, Any], targets: Mapping[str, Tensor], task_types: Mapping[str, str]
    ) -> dict[str, Tensor]:
        """``{task: L_t, "sharing": weighted Omega, "total": sum_t w_t L_t + penalty_weight * Omega}``."""
        terms = multitask_loss(output["prediction"], targets, task_types, self.task_weights)
        terms["sharing"] = output["sharing_penalty"]
        terms["total"] = terms["total"] + terms["sharing"]
        return terms
