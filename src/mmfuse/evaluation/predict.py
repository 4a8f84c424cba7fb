"""Batched inference and task metrics for a trained :class:`~mmfuse.models.MultimodalModel`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.data.base import batch_to, collate
from mmfuse.errors import DataError
from mmfuse.models.imputation import use_missing
from mmfuse.tasks import task_kind


@dataclass
class Predictions:
    """Model outputs over a dataset, in dataset order."""

    prediction: np.ndarray  # (N, num_outputs): log-probs/logits (classification) or values (regression)
    target: np.ndarray | None  # (N,) or (N, T)
    masks: dict[str, np.ndarray]  # presence masks actually used
    seconds: float  # wall time of the forward passes
    evidential_uncertainty: np.ndarray | None = None  # (N,) u = K / S of an evidential fusion, else None

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities ``softmax(prediction)`` ``(N, K)`` (classification; log-probabilities are unchanged by
        it)."""
        return task_kind("classification").activate(self.prediction)

    @property
    def uncertainty(self) -> np.ndarray:
        """Per-row uncertainty in [0, 1]: the evidential ``u`` where the fusion has it, else the predictive
        entropy ``-sum_k p_k log p_k / log K`` (classification)."""
        if self.evidential_uncertainty is not None:
            return self.evidential_uncertainty
        from mmfuse.training.calibration import normalised_entropy

        return normalised_entropy(self.probabilities)

    @property
    def labels(self) -> np.ndarray:
        """Predicted class per row (classification)."""
        return self.prediction.argmax(1)

    def require_target(self) -> np.ndarray:
        """``target``, for what needs one (metrics); a dataset without targets gives predictions without."""
        if self.target is None:
            raise DataError("These predictions have no targets (the dataset holds none); metrics need them.")
        return self.target


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    device: str = "cpu",
    missing: str | None = None,
) -> Predictions:
    """Run ``model`` over ``dataset`` in eval mode; ``transform`` may alter each batch first (robustness sweeps).

    ``missing`` fills absent modalities for this call with one of the model's strategies (``"zero"``, ``"token"``,
    ``"gan"``, ``"vae"``; :meth:`mmfuse.models.MultimodalModel.missing_strategies`); ``None`` keeps the model's own.
    """
    previous = getattr(model, "missing", None)
    use_missing(model, missing)
    try:
        return _predict(model, dataset, batch_size, transform, device)
    finally:
        if missing is not None and previous is not None:
            model.missing = previous


def _predict(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
    device: str,
) -> Predictions:
    model.eval().to(device)
    preds, targets, evidential = [], [], []
    masks: dict[str, list[np.ndarray]] = {}
    seconds = 0.0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        if transform is not None:
            batch = transform(batch)
        batch = batch_to(batch, device)
        t0 = time.perf_counter()
        out = model(batch["inputs"], batch["masks"])
        seconds += time.perf_counter() - t0
        if isinstance(out["prediction"], Mapping):
            raise TypeError(
                "This is a multi-task model (its prediction is a dict of tasks); use predict_tasks() "
                "instead of predict()."
            )
        preds.append(out["prediction"].float().cpu().numpy())
        if "evidence" in out:
            evidential.append(out["evidence"].uncertainty.float().cpu().numpy())
        if "target" in batch:
            targets.append(batch["target"].cpu().numpy())
        for m, v in out["masks"].items():
            masks.setdefault(m, []).append(v.cpu().numpy())
    return Predictions(
        prediction=np.concatenate(preds),
        target=np.concatenate(targets) if targets else None,
        masks={m: np.concatenate(v) for m, v in masks.items()},
        seconds=seconds,
        evidential_uncertainty=np.concatenate(evidential) if evidential else None,
    )


@torch.inference_mode()
def predict_tasks(
    model: torch.nn.Module, dataset: Dataset, batch_size: int = 256, device: str = "cpu"
) -> dict[str, Predictions]:
    """Multi-task models (``ModelConfig.tasks``): one :class:`Predictions` per task, from one pass over ``dataset``.

    Items carry ``target = {task: value}``; the masks and the forward time are shared by every task.
    """
    model.eval().to(device)
    preds: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    masks: dict[str, list[np.ndarray]] = {}
    seconds = 0.0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = batch_to(batch, device)
        t0 = time.perf_counter()
        out = model(batch["inputs"], batch["masks"])
        seconds += time.perf_counter() - t0
        if not isinstance(out["prediction"], Mapping):
            raise TypeError("This model has a single task; use predict() instead of predict_tasks().")
        for t, v in out["prediction"].items():
            preds.setdefault(t, []).append(v.float().cpu().numpy())
            if isinstance(batch.get("target"), Mapping):
                targets.setdefault(t, []).append(batch["target"][t].cpu().numpy())
        for m, v in out["masks"].items():
            masks.setdefault(m, []).append(v.cpu().numpy())
    joined = {m: np.concatenate(v) for m, v in masks.items()}
    return {
        t: Predictions(np.concatenate(p), np.concatenate(targets[t]) if t in targets else None, joined, seconds)
        for t, p in preds.items()
    }


def classification_metrics(pred: Predictions) -> dict[str, float]:
    """Accuracy and macro-F1 (sklearn definitions), and the calibration of the probabilities: expected calibration
    error (15 bins), negative log-likelihood and Brier score (:mod:`mmfuse.training.calibration`)."""
    from sklearn.metrics import accuracy_score, f1_score

    from mmfuse.training.calibration import calibration_metrics

    y, yhat = pred.require_target().astype(int), pred.labels
    return {
        "accuracy": float(accuracy_score(y, yhat)),
        "macro_f1": float(f1_score(y, yhat, average="macro")),
        **calibration_metrics(pred.probabilities, y),
    }


def regression_metrics(pred: Predictions) -> dict[str, float]:
    """MAE, MSE and Pearson correlation."""
    y, yhat = pred.require_target().reshape(-1).astype(float), pred.prediction.reshape(-1).astype(float)
    corr = float(np.corrcoef(y, yhat)[0, 1]) if y.std() > 0 and yhat.std() > 0 else 0.0
    return {"mae": float(np.abs(y - yhat).mean()), "mse": float(((y - yhat) ** 2).mean()), "pearson": corr}


def multilabel_metrics(pred: Predictions) -> dict[str, float]:
    """Macro-F1 and subset accuracy of the labels predicted with ``logit > 0``."""
    from sklearn.metrics import f1_score

    y, yhat = pred.require_target().astype(int), (pred.prediction > 0).astype(int)
    return {
        "macro_f1": float(f1_score(y, yhat, average="macro", zero_division=0)),
        "subset_accuracy": float((yhat == y).all(1).mean()),
    }


METRICS: dict[str, Callable[[Predictions], dict[str, float]]] = {
    "classification": classification_metrics,
    "regression": regression_metrics,
    "multilabel": multilabel_metrics,
}


def task_metrics(pred: Predictions, task: str) -> dict[str, float]:
    """Metrics of ``task``'s kind (:mod:`mmfuse.tasks`)."""
    return METRICS[task_kind(task).name](pred)


def masks_transform(drop: Mapping[str, np.ndarray | bool]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A batch transform that marks modalities absent: ``{m: True}`` drops ``m`` for every row."""

    def apply(batch: dict[str, Any]) -> dict[str, Any]:
        masks = dict(batch["masks"])
        inputs = dict(batch["inputs"])
        for m, d in drop.items():
            if d is True:
                masks[m] = torch.zeros_like(masks[m])
                inputs[m] = torch.zeros_like(inputs[m])
        return {**batch, "inputs": inputs, "masks": masks}

    return apply


def output_metrics(out: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """:func:`task_metrics` of activated outputs: probabilities (classification / multi-label, e.g. an average
    over ensemble members or folds) or values (regression), against targets ``y``."""
    kind = task_kind(task)
    p = np.clip(out, 1e-12, 1.0)
    if kind.activation == "softmax":
        z = np.log(p)  # log-probabilities: softmax gives ``out`` back
    elif kind.activation == "sigmoid":
        z = np.log(p) - np.log(np.clip(1.0 - out, 1e-12, 1.0))  # logits: ``z > 0`` exactly where ``out > 0.5``
    else:
        z = out
    return task_metrics(Predictions(z, y, {}, 0.0), task)
