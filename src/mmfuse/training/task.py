"""The Lightning task: model + weighted objectives + optimiser.

The training loss is the weighted sum of named terms ``L = sum_i lambda_i L_i`` (weights from
``TrainConfig.objectives``); every term is logged as ``train/<name>``.

A multi-task model (``ModelConfig.tasks``) has one term per task, ``L = sum_t w_t L_t + S``: ``L_t`` is
cross-entropy (classification), MSE (regression) or BCE (multilabel) of task ``t``, ``w_t`` its
``"weight"``, and ``S`` the term ``"sharing"`` of soft sharing (``sharing_weight * Omega``, see
:class:`~mmfuse.models.multitask.SoftSharingModel`). Batches then carry ``target = {task: tensor}``;
validation logs ``val/<task>/<metric>`` for every task, and the best checkpoint is chosen by the
validation loss ``val/loss`` unless ``TrainConfig.monitor`` names another logged value (``"<task>/accuracy"``,
``"<task>/mae"``, a task's loss ``"<task>"``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from mmfuse.config import ModelConfig
from mmfuse.encoders.base import Encoder
from mmfuse.errors import ConfigError, DataError
from mmfuse.models.builder import task_specs
from mmfuse.objectives.base import Objective
from mmfuse.objectives.multitask import task_loss
from mmfuse.registry import FUSIONS, OBJECTIVES
from mmfuse.tasks import task_kind
from mmfuse.training.metrics import monitor_for, prepare_for_metrics, task_metrics

RESERVED_TERMS = ("loss", "sharing")  # names a task may not take (they are logged terms of their own)


def build_objectives(
    spec: Mapping[str, Mapping[str, Any]], task: str, dims: Mapping[str, int]
) -> dict[str, tuple[Objective, float]]:
    """``{term name: {"objective": registered name (default: the term name), "weight": w, **params}}`` -> built
    objectives.

    Constructor arguments ``dims`` (encoder output sizes) and ``task`` are passed to objectives that accept them.
    An empty spec means the task's default loss with weight 1; ``"objective": None`` names that default too.
    """
    spec = dict(spec) or {"task": {"objective": task_kind(task).default_objective, "weight": 1.0}}
    built: dict[str, tuple[Objective, float]] = {}
    for term in sorted(spec):
        params = dict(spec[term])
        name = params.pop("objective", term) or task_kind(task).default_objective  # None: the task kind's own loss
        weight = float(params.pop("weight", 1.0))
        accepted = inspect.signature(OBJECTIVES.get(name)).parameters
        for key, value in (("dims", dict(dims)), ("task", task)):
            if key in accepted and key not in params:
                params[key] = value
        built[term] = (OBJECTIVES.build(name, **params), weight)
    return built


class TaskTerm(Objective):
    """Loss of one task of a multi-task model: ``L_t(output["prediction"][t], batch["target"][t])``."""

    def __init__(self, name: str, kind: str) -> None:
        super().__init__()
        self.name, self.kind = name, kind

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return task_loss(output["prediction"][self.name], batch["target"][self.name], self.kind)


class SharingTerm(Objective):
    """The soft-sharing penalty the model reports, ``output["sharing_penalty"]`` (already ``sharing_weight *
    Omega``)."""

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        return output["sharing_penalty"]


def build_multitask_objectives(
    tasks: Mapping[str, Mapping[str, Any]], sharing: str = "hard"
) -> dict[str, tuple[Objective, float]]:
    """``{task: (its loss, w_t)}`` for checked task specs (:func:`~mmfuse.models.builder.task_specs`), plus
    ``"sharing"`` when soft."""
    clash = [t for t in tasks if t in RESERVED_TERMS or "/" in t]
    if clash:
        raise ConfigError(
            f"Task name(s) {clash} are reserved or contain '/'; rename them (reserved: {list(RESERVED_TERMS)})."
        )
    built: dict[str, tuple[Objective, float]] = {
        t: (TaskTerm(t, s["task"]), float(s["weight"])) for t, s in sorted(tasks.items())
    }
    if sharing == "soft":
        built["sharing"] = (SharingTerm(), 1.0)  # the model already scales Omega by ModelConfig.sharing_weight
    return built


def objectives_for(
    model_cfg: ModelConfig, spec: Mapping[str, Mapping[str, Any]], dims: Mapping[str, int]
) -> dict[str, tuple[Objective, float]]:
    """The training terms of a run: per-task terms for a multi-task ``model_cfg``, else :func:`build_objectives` of
    ``spec``.

    An empty ``spec`` means the fusion's own ``default_objective`` when it declares one (the evidential fusion
    trains with ``tmc``), else the task's default loss.
    """
    tasks = task_specs(model_cfg)
    if not tasks:
        own = getattr(FUSIONS.get(model_cfg.fusion), "default_objective", None)
        if not spec and own:
            spec = {"task": {"objective": own, "weight": 1.0}}
        return build_objectives(spec, model_cfg.task, dims)
    if spec:
        raise ConfigError(
            f"TrainConfig.objectives {sorted(spec)} cannot be combined with ModelConfig.tasks; "
            f"set each task's 'weight' in ModelConfig.tasks instead."
        )
    return build_multitask_objectives(tasks, model_cfg.sharing)


def objectives_need(objectives: Mapping[str, tuple[Objective, float]]) -> set[str]:
    """Union of the model outputs the objectives read (e.g. ``{"unimodal"}``)."""
    return {n for obj, _ in objectives.values() for n in getattr(obj, "needs", ())}


LR_SCHEDULES = ("constant", "onecycle", "cosine")


class MultimodalTask(L.LightningModule):
    """Wraps a multimodal (or multi-task) model with its objectives, metrics and optimiser.

    Args:
        model: the model to train.
        objectives: ``{term: (objective, weight)}`` from :func:`build_objectives` (or :func:`objectives_for`).
        task: "classification", "regression" or "multilabel" (unused with ``tasks``).
        num_outputs: classes / targets / labels (unused with ``tasks``).
        lr, weight_decay: AdamW settings.
        lr_schedule: one of :data:`LR_SCHEDULES` (see :meth:`configure_optimizers`).
        backbone_lr_scale: the learning rate of fine-tuned pretrained backbones is ``lr * backbone_lr_scale``
            (discriminative fine-tuning, Howard & Ruder 2018; see :meth:`mmfuse.encoders.base.Encoder.backbone`).
        monitor: validation value selecting the best checkpoint (default: the task's metric; ``"loss"`` with ``tasks``).
        tasks: checked multi-task specs ``{task: {"task": kind, "num_outputs": n, "weight": w}}``; batches then hold
            ``target = {task: tensor}`` and the model predicts ``{task: (B, C_t)}``.
    """

    def __init__(
        self,
        model: nn.Module,
        objectives: Mapping[str, tuple[Objective, float]],
        task: str,
        num_outputs: int,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        monitor: str | None = None,
        tasks: Mapping[str, Mapping[str, Any]] | None = None,
        backbone_lr_scale: float = 1.0,
        lr_schedule: str = "constant",
    ) -> None:
        super().__init__()
        self.backbone_lr_scale = float(backbone_lr_scale)
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"TrainConfig.lr_schedule is {lr_schedule!r}; use one of {list(LR_SCHEDULES)}.")
        self.lr_schedule = lr_schedule
        if not objectives:
            raise ConfigError("No objective given; name at least one (e.g. 'cross_entropy').")
        self.model = model
        self.objectives = nn.ModuleDict({k: o for k, (o, _) in objectives.items()})
        self.weights = {k: w for k, (_, w) in objectives.items()}
        self.task, self.num_outputs, self.lr, self.weight_decay = task, num_outputs, lr, weight_decay
        self.tasks = {t: dict(s) for t, s in sorted((tasks or {}).items())}
        if self.tasks:
            per_task = {
                t: task_metrics(s["task"], s["num_outputs"]).clone(prefix=f"val/{t}/") for t, s in self.tasks.items()
            }
            self.val_metrics: nn.ModuleDict = nn.ModuleDict(per_task)  # {task: MetricCollection}
            logged = [
                "loss",
                *self.objectives,
                *(str(k).removeprefix("val/") for c in per_task.values() for k in c.keys()),  # keys() is typed Hashable
            ]
            if monitor is not None and monitor not in logged:
                raise ConfigError(
                    f"TrainConfig.monitor {monitor!r} is not logged by this multi-task model; use one of {logged}."
                )
            self.monitor = monitor or "loss"
        else:
            self.val_metrics = task_metrics(task, num_outputs).clone(prefix="val/")
            self.monitor = monitor or monitor_for(task)[0]
        minimised = self.monitor.rsplit("/", 1)[-1] in ("loss", "mae", "mse") or self.monitor in self.objectives
        self.monitor_mode = "min" if minimised else "max"

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
        return self.model(inputs, masks)

    def _batch_size(self, batch: Mapping[str, Any]) -> int:
        """Rows in ``batch``; checks that its target matches the model (one tensor, or one per task)."""
        target = batch["target"]
        if not self.tasks:
            if isinstance(target, Mapping):
                raise DataError(
                    f"The batch's target is a dict {sorted(target)} but the model has one task; "
                    f"set ModelConfig.tasks for a multi-task model."
                )
            return target.shape[0]
        if not isinstance(target, Mapping):
            raise DataError(
                f"A multi-task model needs batch['target'] to be a dict {{task: tensor}} "
                f"with keys {list(self.tasks)}; the batch holds a single tensor."
            )
        missing = [t for t in self.tasks if t not in target]
        if missing:
            raise DataError(
                f"The batch's target lacks task(s) {missing}; give a target for every task "
                f"of ModelConfig.tasks {list(self.tasks)}."
            )
        return next(iter(target.values())).shape[0]

    def _loss(self, batch: Mapping[str, Any], stage: str) -> tuple[Tensor, dict[str, Any]]:
        bs = self._batch_size(batch)
        out = self.model(batch["inputs"], batch["masks"])
        terms = {k: obj(out, batch) for k, obj in self.objectives.items()}
        loss = sum(self.weights[k] * t for k, t in terms.items())
        for k, t in terms.items():
            self.log(
                f"{stage}/{k}", t.detach(), batch_size=bs, on_step=False, on_epoch=True, sync_dist=stage != "train"
            )
        self.log(
            f"{stage}/loss",
            loss.detach(),
            batch_size=bs,
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "train",
            sync_dist=stage != "train",
        )
        return loss, out

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        loss, _ = self._loss(batch, "train")
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"Training loss became {loss.item()} at step {self.global_step}; lower the "
                f"learning rate or check the inputs for NaN/inf."
            )
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        _, out = self._loss(batch, "val")
        if not self.tasks:
            pred, target = prepare_for_metrics(out["prediction"], batch["target"], self.task)
            metrics = self._val_metrics()
            metrics.update(pred, target)
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=target.shape[0])
            return
        for t, spec in self.tasks.items():
            pred, target = prepare_for_metrics(out["prediction"][t], batch["target"][t], spec["task"])
            metrics = self._val_metrics(t)
            metrics.update(pred, target)
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=out["prediction"][t].shape[0])

    def _val_metrics(self, task: str | None = None) -> MetricCollection:
        """The validation metrics: the model's, or those of ``task`` of a multi-task model."""
        metrics = self.val_metrics if task is None else self.val_metrics[task]
        assert isinstance(metrics, MetricCollection)
        return metrics

    def configure_optimizers(self) -> Any:
        """AdamW over two parameter groups (fine-tuned backbones at ``lr * backbone_lr_scale``), with the
        :data:`LR_SCHEDULES` entry ``lr_schedule`` stepped once per batch.

        ``"onecycle"`` is the one-cycle policy (Smith & Topin, "Super-convergence", 2019; torch's ``OneCycleLR``):
        over the first 30 % of the ``T = max_epochs x batches`` steps the rate rises from ``lr / 25`` to ``lr``,
        then follows a cosine down to ``lr / 25e4``, ``lr_t = lr_min + (lr - lr_min) (1 + cos(pi t'))/2``; it
        trains a short budget to a better optimum than a constant rate. ``"cosine"``: cosine annealing from ``lr``
        to 0 over ``T`` (Loshchilov & Hutter, SGDR, ICLR 2017, without restarts). ``"constant"``: ``lr`` throughout.
        Early stopping may end a schedule before ``T``; the refit of a cross-validated model trains exactly its epochs.
        """
        backbone = {
            id(p)
            for m in self.model.modules()
            if isinstance(m, Encoder) and (b := m.backbone()) is not None
            for p in b.parameters()
        }
        rest = [p for p in self.parameters() if id(p) not in backbone]
        slow = [p for p in self.parameters() if id(p) in backbone]
        groups: list[dict[str, Any]] = [{"params": rest, "lr": self.lr}]
        if slow:
            groups.append({"params": slow, "lr": self.lr * self.backbone_lr_scale})
        optimizer = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler: torch.optim.lr_scheduler.LRScheduler
        if self.lr_schedule == "onecycle":
            peaks = [g["lr"] for g in groups]
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=steps)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
