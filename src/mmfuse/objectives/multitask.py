"""Multi-task loss: a weighted sum of per-task supervised losses.

``L = sum_t w_t L_t(f_t(x), y_t)`` (the standard multi-task objective, see Ruder, "An Overview of
Multi-Task Learning in Deep Neural Networks", arXiv:1706.05098, 2017), plus, for soft parameter
sharing, the model's parameter-distance penalty reported in ``output["sharing_penalty"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from mmfuse.contract import tensor_sum
from mmfuse.errors import ConfigError
from mmfuse.objectives.base import Objective
from mmfuse.objectives.supervised import LOSSES
from mmfuse.registry import OBJECTIVES
from mmfuse.tasks import TASK_KINDS, task_kind


def task_loss(prediction: Tensor, target: Tensor, task_type: str) -> Tensor:
    """The default loss of the task's kind: cross-entropy (classification), MSE (regression) or BCE with logits
    (multilabel)."""
    return LOSSES[task_kind(task_type).default_objective](prediction, target)


def multitask_loss(
    predictions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    task_types: Mapping[str, str],
    weights: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """``{task: L_t, ..., "total": sum_t w_t L_t}`` over the tasks of ``task_types`` (weights default to 1).

    Inputs:
        predictions: ``{t: (B, C_t)}``; targets: ``{t: (B,) or (B, C_t)}``; task_types: ``{t: type}``.

    Returns:
        dict of scalars, one per task (unweighted) and the weighted ``"total"``.
    """
    missing = [t for t in sorted(task_types) if t not in predictions or t not in targets]
    if missing:
        raise ConfigError(f"Tasks {missing} have no prediction or no target; give both for every task in task_types.")
    out: dict[str, Tensor] = {}
    for t in sorted(task_types):
        out[t] = task_loss(predictions[t], targets[t], task_types[t])
    out["total"] = tensor_sum(float((weights or {}).get(t, 1.0)) * out[t] for t in sorted(task_types))
    return out


@OBJECTIVES.register("multitask")
class MultiTaskLoss(Objective):
    """``sum_t w_t L_t + output["sharing_penalty"]`` for multi-task models (see :func:`multitask_loss`).

    Reads ``output["prediction"] {t: (B, C_t)}`` and ``batch["target"] {t: ...}``.

    Args:
        task_types: ``{task: "classification" | "regression" | "multilabel"}``.
        weights: ``{task: w_t}`` (default 1).
    """

    def __init__(self, task_types: Mapping[str, str], weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        for t, kind in task_types.items():
            if kind not in TASK_KINDS:
                raise ConfigError(
                    f"Objective 'multitask': task {t!r} has type {kind!r}; use one of {list(TASK_KINDS)}."
                )
        self.task_types, self.weights = dict(task_types), dict(weights or {})

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """``sum_t w_t L_t`` plus ``output["sharing_penalty"]`` when the model reports one."""
        total = multitask_loss(output["prediction"], batch["target"], self.task_types, self.weights)["total"]
        if "sharing_penalty" in output:
            total = total + output["sharing_penalty"]
        return total
