"""Supervised task losses and the per-modality auxiliary loss.

The joint objective of a run is ``L = sum_i lambda_i L_i`` over the named terms in the config
(see :class:`mmfuse.training.task.MultimodalTask`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mmfuse.objectives.base import Objective
from mmfuse.registry import OBJECTIVES
from mmfuse.tasks import task_kind


def classification_loss(prediction: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy ``-1/B sum_b log softmax(p_b)[y_b]`` on logits or log-probabilities ``(B, C)``."""
    return F.cross_entropy(prediction, target.long(), label_smoothing=label_smoothing)


def regression_loss(prediction: Tensor, target: Tensor, kind: str = "mse") -> Tensor:
    """``mean (p - y)^2`` (``kind="mse"``) or ``mean |p - y|`` (``kind="l1"``); ``p`` is ``(B, T)``."""
    target = target.to(prediction.dtype).reshape(prediction.shape)
    return F.mse_loss(prediction, target) if kind == "mse" else F.l1_loss(prediction, target)


def multilabel_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy with logits, averaged over samples and labels; ``target`` in {0,1}^(B, T)."""
    return F.binary_cross_entropy_with_logits(prediction, target.to(prediction.dtype))


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cross_entropy": classification_loss,
    "mse": regression_loss,
    "bce": multilabel_loss,
}  # a task kind's default loss by name


@OBJECTIVES.register("cross_entropy")
class CrossEntropy(Objective):
    """Cross-entropy on the fused prediction (multi-class classification)."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return classification_loss(output["prediction"], batch["target"], self.label_smoothing)


@OBJECTIVES.register("mse")
class MeanSquaredError(Objective):
    """Mean squared error on the fused prediction (regression)."""

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return regression_loss(output["prediction"], batch["target"], "mse")


@OBJECTIVES.register("l1")
class MeanAbsoluteError(Objective):
    """Mean absolute error on the fused prediction (regression)."""

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return regression_loss(output["prediction"], batch["target"], "l1")


@OBJECTIVES.register("bce")
class BinaryCrossEntropy(Objective):
    """Binary cross-entropy with logits on the fused prediction (multi-label)."""

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return multilabel_loss(output["prediction"], batch["target"])


def auxiliary_loss(unimodal: Mapping[str, Tensor], masks: Mapping[str, Tensor], target: Tensor, task: str) -> Tensor:
    """Per-modality auxiliary loss ``sum_k l(f_k(x_k), y)``, each term averaged over samples that have modality k.

    With the task term it gives the joint loss ``L = l(f(x_1..x_K), y) + lambda * sum_k l(f_k(x_k), y)``
    (per-modality supervision as in e.g. Wang, Tran & Feiszli, "What Makes Training Multi-modal
    Classification Networks Hard?", CVPR 2020, gradient blending).
    """
    loss = LOSSES[task_kind(task).default_objective]
    total = target.new_zeros((), dtype=torch.float32)
    for m in sorted(unimodal):
        keep = masks[m]
        if keep.sum() == 0:
            continue
        total = total + loss(unimodal[m][keep], target[keep])
    return total


@OBJECTIVES.register("auxiliary")
class AuxiliaryLoss(Objective):
    """Per-modality auxiliary heads' loss (see :func:`auxiliary_loss`). Makes the model build one
    head per modality on its embedding.

    Args:
        task: "classification", "regression" or "multilabel".
    """

    needs = ("unimodal",)

    def __init__(self, task: str = "classification") -> None:
        super().__init__()
        self.task = task

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return auxiliary_loss(output["unimodal"], output["masks"], batch["target"], self.task)
