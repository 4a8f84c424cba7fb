"""The Lightning task: model + weighted objectives + optimiser.

The training loss is the weighted sum of named terms ``L = sum_i lambda_i L_i`` (weights from
``TrainConfig.objectives``); every term is logged as ``train/<name>``.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import lightning as L
import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.objectives.base import Objective
from mmfuse.registry import OBJECTIVES
from mmfuse.training.metrics import monitor_for, prepare_for_metrics, task_metrics

DEFAULT_OBJECTIVE = {"classification": "cross_entropy", "regression": "mse", "multilabel": "bce"}


def build_objectives(spec: Mapping[str, Mapping[str, Any]], task: str, dims: Mapping[str, int]) -> dict[str, tuple[Objective, float]]:
    """``{term name: {"objective": registered name (default: the term name), "weight": w, **params}}`` -> built objectives.

    Constructor arguments ``dims`` (encoder output sizes) and ``task`` are passed to objectives that accept them.
    An empty spec means the task's default loss with weight 1.
    """
    spec = dict(spec) or {"task": {"objective": DEFAULT_OBJECTIVE[task], "weight": 1.0}}
    built: dict[str, tuple[Objective, float]] = {}
    for term in sorted(spec):
        params = dict(spec[term])
        name = params.pop("objective", term)
        weight = float(params.pop("weight", 1.0))
        accepted = inspect.signature(OBJECTIVES.get(name)).parameters
        for key, value in (("dims", dict(dims)), ("task", task)):
            if key in accepted and key not in params:
                params[key] = value
        built[term] = (OBJECTIVES.build(name, **params), weight)
    return built


def objectives_need(objectives: Mapping[str, tuple[Objective, float]]) -> set[str]:
    """Union of the model outputs the objectives read (e.g. ``{"unimodal"}``)."""
    return {n for obj, _ in objectives.values() for n in getattr(obj, "needs", ())}


class MultimodalTask(L.LightningModule):
    """Wraps a :class:`MultimodalModel` with its objectives, metrics and optimiser.

    Args:
        model: the model to train.
        objectives: ``{term: (objective, weight)}`` from :func:`build_objectives`.
        task: "classification", "regression" or "multilabel".
        num_outputs: classes / targets / labels.
        lr, weight_decay: AdamW settings.
    """

    def __init__(
        self,
        model: MultimodalModel,
        objectives: Mapping[str, tuple[Objective, float]],
        task: str,
        num_outputs: int,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        monitor: str | None = None,
    ) -> None:
        super().__init__()
        if not objectives:
            raise ConfigError("No objective given; name at least one (e.g. 'cross_entropy').")
        self.model = model
        self.objectives = nn.ModuleDict({k: o for k, (o, _) in objectives.items()})
        self.weights = {k: w for k, (_, w) in objectives.items()}
        self.task, self.num_outputs, self.lr, self.weight_decay = task, num_outputs, lr, weight_decay
        self.monitor, self.monitor_mode = monitor_for(task)
        if monitor is not None and monitor != self.monitor:
            self.monitor, self.monitor_mode = monitor, ("min" if monitor in ("loss", "mae", "mse") or monitor in self.objectives else "max")
        self.val_metrics = task_metrics(task, num_outputs).clone(prefix="val/")

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        return self.model(inputs, masks)

    def _loss(self, batch: Mapping[str, Any], stage: str) -> tuple[Tensor, dict[str, Any]]:
        out = self.model(batch["inputs"], batch["masks"])
        terms = {k: obj(out, batch) for k, obj in self.objectives.items()}
        loss = sum(self.weights[k] * t for k, t in terms.items())
        bs = batch["target"].shape[0]
        for k, t in terms.items():
            self.log(f"{stage}/{k}", t.detach(), batch_size=bs, on_step=False, on_epoch=True, sync_dist=stage != "train")
        self.log(f"{stage}/loss", loss.detach(), batch_size=bs, on_step=False, on_epoch=True, prog_bar=stage == "train", sync_dist=stage != "train")
        return loss, out

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        loss, _ = self._loss(batch, "train")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Training loss became {loss.item()} at step {self.global_step}; lower the learning rate or check the inputs for NaN/inf.")
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        _, out = self._loss(batch, "val")
        pred, target = prepare_for_metrics(out["prediction"], batch["target"], self.task)
        self.val_metrics.update(pred, target)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=target.shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
