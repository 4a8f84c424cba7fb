"""torchmetrics collections per task type, and which metric selects the best checkpoint."""

from __future__ import annotations

import torchmetrics
from torchmetrics import MetricCollection


def task_metrics(task: str, num_outputs: int) -> MetricCollection:
    """Metrics logged during validation/testing for ``task``."""
    if task == "classification":
        return MetricCollection(
            {
                "accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=num_outputs),
                "macro_f1": torchmetrics.F1Score(task="multiclass", num_classes=num_outputs, average="macro"),
            }
        )
    if task == "multilabel":
        return MetricCollection(
            {
                "macro_f1": torchmetrics.F1Score(task="multilabel", num_labels=num_outputs, average="macro"),
                "accuracy": torchmetrics.Accuracy(task="multilabel", num_labels=num_outputs),
            }
        )
    if task == "regression":
        return MetricCollection({"mae": torchmetrics.MeanAbsoluteError(), "mse": torchmetrics.MeanSquaredError()})
    raise ValueError(f"Unknown task {task!r}; use 'classification', 'regression' or 'multilabel'.")


def monitor_for(task: str) -> tuple[str, str]:
    """``(metric name, mode)`` used for early stopping and best-checkpoint selection."""
    return {"classification": ("accuracy", "max"), "multilabel": ("macro_f1", "max"), "regression": ("mae", "min")}[task]


def prepare_for_metrics(prediction, target, task: str):
    """Shape predictions/targets the way torchmetrics expects for ``task``."""
    if task == "classification":
        return prediction, target.long()
    if task == "multilabel":
        return prediction.sigmoid(), target.long()
    return prediction.reshape(-1), target.reshape(-1).to(prediction.dtype)
