"""torchmetrics collections per task type, and which metric selects the best checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import torchmetrics
from torchmetrics import Metric, MetricCollection

from mmfuse.tasks import task_kind


def task_metrics(task: str, num_outputs: int) -> MetricCollection:
    """Metrics logged during validation/testing for ``task``."""
    return MetricCollection(_COLLECTIONS[task_kind(task).name](num_outputs))


_COLLECTIONS: dict[str, Callable[[int], dict[str, Metric | MetricCollection]]] = {
    "classification": lambda n: {
        "accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=n),
        "macro_f1": torchmetrics.F1Score(task="multiclass", num_classes=n, average="macro"),
    },
    "multilabel": lambda n: {
        "macro_f1": torchmetrics.F1Score(task="multilabel", num_labels=n, average="macro"),
        "accuracy": torchmetrics.Accuracy(task="multilabel", num_labels=n),
    },
    "regression": lambda n: {"mae": torchmetrics.MeanAbsoluteError(), "mse": torchmetrics.MeanSquaredError()},
}


def monitor_for(task: str) -> tuple[str, str]:
    """``(metric name, mode)`` used for early stopping and best-checkpoint selection: the kind's main metric."""
    kind = task_kind(task)
    return kind.main_metric, kind.mode


def prepare_for_metrics(prediction, target, task: str):
    """Shape predictions/targets the way torchmetrics expects for ``task``."""
    kind = task_kind(task)
    if kind.single_label:
        return prediction, target.long()
    if kind.activation == "sigmoid":
        return prediction.sigmoid(), target.long()
    return prediction.reshape(-1), target.reshape(-1).to(prediction.dtype)
