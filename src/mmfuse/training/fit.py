"""``fit``: build a model from configs, train it with Lightning, keep the best validation checkpoint.

Lightning's hardware options (``accelerator``, ``devices``, ``strategy``, ``num_nodes``,
``precision``) pass straight through from :class:`~mmfuse.config.TrainConfig`, so
``devices=2, strategy="ddp"`` trains with distributed data parallel unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.data.base import collate
from mmfuse.errors import ConfigError
from mmfuse.files import check_output_dir, scratch_dir
from mmfuse.models.builder import build_encoders, build_model, task_specs
from mmfuse.quiet import quiet_lightning
from mmfuse.tasks import task_kind
from mmfuse.training.precision import has_conv2d, resolve_precision
from mmfuse.training.serialization import save_model_dir
from mmfuse.training.task import MultimodalTask, objectives_for, objectives_need


class History(Callback):
    """Records the epoch-level metrics (learning curves) on the main process."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after the epoch's validation, so train and validation aggregates are both in callback_metrics
        row = {"epoch": float(trainer.current_epoch)}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1})
        self.epochs.append(row)


@dataclass
class FitResult:
    """What :func:`fit` returns."""

    model: nn.Module  # MultimodalModel (or a multi-task model), best-validation weights loaded, eval mode
    task: MultimodalTask
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch metrics
    train_time_s: float = 0.0
    best_score: float | None = None  # best validation value of the monitored metric
    epochs_run: int = 0
    global_rank: int = 0
    best_epoch: int | None = None  # epochs trained when the best validation score was reached (None without val)
    precision: str = "32-true"  # the precision trained with (TrainConfig.precision, "auto" resolved)
    precision_note: str = ""  # how it was chosen


EVAL_SCALE = 4  # validation batches are this many training batches: no gradients are kept, so the memory is alike


def make_loader(ds: Dataset, cfg: TrainConfig, shuffle: bool) -> DataLoader:
    """Training batches of ``cfg.batch_size`` (``shuffle``), else evaluation batches :data:`EVAL_SCALE` times larger."""
    g = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size if shuffle else EVAL_SCALE * cfg.batch_size,
        shuffle=shuffle,
        num_workers=cfg.num_workers,
        generator=g,
        persistent_workers=cfg.num_workers > 0,
        collate_fn=collate,
    )


def fit(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    train: Dataset,
    val: Dataset | None,
    out_dir: str | Path | None = None,
    extra_meta: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
    overwrite: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Train ``model_cfg`` on ``train`` with early stopping on ``val``; optionally save to ``out_dir``.

    With ``model_cfg.tasks`` the model is multi-task: the datasets' targets are ``{task: tensor}``, each task
    adds its weighted loss term, and the best checkpoint is chosen by ``val/loss`` unless
    ``train_cfg.monitor`` names e.g. ``"<task>/accuracy"`` (see :mod:`mmfuse.training.task`).
    Returns the model with the best validation weights loaded. Without ``val`` (a refit on every row, with the
    epoch budget found by cross-validation) it trains exactly ``max_epochs`` epochs and keeps the last weights.

    ``out_dir`` is checked before training (:func:`mmfuse.files.check_output_dir`: an earlier model there is
    replaced only with ``overwrite``). Several processes share the best checkpoint through a folder beside
    ``out_dir`` (or ``checkpoint_dir``, for callers that save the model themselves); one process keeps it in
    a private temporary folder. Either is removed at the end, and a killed run's leftovers by the next run.
    """
    multi = str(train_cfg.devices) not in ("1", "auto") or train_cfg.num_nodes > 1
    if out_dir is not None:
        check_output_dir(out_dir, "model", overwrite)
    shared = checkpoint_dir if checkpoint_dir is not None else out_dir
    if multi and shared is None:
        raise ConfigError(
            "Training on several devices/nodes needs an output directory (out_dir / -o) shared by every process."
        )
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    dims = {m: int(e.out_dim) for m, e in build_encoders(model_cfg.encoders).items()}
    objectives = objectives_for(model_cfg, train_cfg.objectives, dims)
    if "unimodal" in objectives_need(objectives) and not model_cfg.unimodal_heads:
        model_cfg = dataclasses.replace(model_cfg, unimodal_heads=True)
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    model = build_model(model_cfg)
    precision, precision_note = resolve_precision(train_cfg.precision, model, train_cfg.accelerator)
    if precision.startswith("bf16") and has_conv2d(model):
        # oneDNN's preferred layout for bf16 convolutions (Module.to accepts memory_format; its stubs omit it)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    task = MultimodalTask(
        model,
        objectives,
        model_cfg.task,
        model_cfg.num_outputs,
        train_cfg.lr,
        train_cfg.weight_decay,
        train_cfg.monitor,
        tasks=task_specs(model_cfg),
        backbone_lr_scale=train_cfg.backbone_lr_scale,
        lr_schedule=train_cfg.lr_schedule,
    )
    history = History()
    with scratch_dir(tempfile.gettempdir(), "mmfuse-ckpt") as tmp, quiet_lightning():
        ckpt_dir = _shared_checkpoint_dir(Path(shared)) if multi else tmp  # type: ignore[arg-type]
        checkpoint = ModelCheckpoint(
            dirpath=ckpt_dir,
            monitor=f"val/{task.monitor}",
            mode=task.monitor_mode,
            save_top_k=1,
            save_weights_only=True,
            filename="best",
        )
        stopper = EarlyStopping(monitor=f"val/{task.monitor}", mode=task.monitor_mode, patience=train_cfg.patience)
        selecting = [checkpoint, stopper] if val is not None else []
        trainer = L.Trainer(
            max_epochs=train_cfg.max_epochs,
            accelerator=train_cfg.accelerator,
            devices=train_cfg.devices,
            strategy=train_cfg.strategy,
            num_nodes=train_cfg.num_nodes,
            precision=precision,  # type: ignore[arg-type]  # checked by Lightning, named in TrainConfig
            deterministic=train_cfg.deterministic,
            callbacks=[*selecting, history, *(callbacks or [])],
            logger=False,
            enable_checkpointing=val is not None,  # without validation nothing is chosen: the last weights stay
            default_root_dir=tmp,
            enable_progress_bar=train_cfg.progress_bar,
            enable_model_summary=False,
            max_time=None if train_cfg.max_time is None else timedelta(seconds=float(train_cfg.max_time)),
            num_sanity_val_steps=0,
            limit_train_batches=train_cfg.limit_train_batches,  # 1.0 (every batch) is Lightning's default
        )
        t0 = time.perf_counter()
        val_loader = make_loader(val, train_cfg, False) if val is not None else None
        trainer.fit(task, make_loader(train, train_cfg, True), val_loader)
        train_time = time.perf_counter() - t0
        best_path = checkpoint.best_model_path if val is not None else ""
        if best_path:
            state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
            task.load_state_dict(state)
        if ckpt_dir != tmp:
            trainer.strategy.barrier()  # every rank has loaded the best weights before rank 0 deletes them
            if trainer.is_global_zero:
                shutil.rmtree(ckpt_dir, ignore_errors=True)
    model.eval()
    best = checkpoint.best_model_score if val is not None else None
    result = FitResult(
        model=model,
        task=task,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        history=history.epochs,
        train_time_s=train_time,
        best_score=None if best is None else float(best),
        epochs_run=trainer.current_epoch,
        global_rank=trainer.global_rank,
        best_epoch=_best_epoch(history.epochs, f"val/{task.monitor}", task.monitor_mode) if val is not None else None,
        precision=precision,
        precision_note=precision_note,
    )
    if out_dir is not None and trainer.is_global_zero:
        meta = {
            "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "history": history.epochs,
            "train_time_s": train_time,
            "best_val": result.best_score,
            "precision": precision,
            "precision_note": precision_note,
        }
        if task_kind(model_cfg.task).single_label and not model_cfg.tasks and val is not None:
            meta["calibration"] = validation_temperature(model, val)
        meta.update(extra_meta or {})
        save_model_dir(out_dir, model, meta, objectives=task.objectives, overwrite=overwrite)
    return result


def _best_epoch(history: list[dict[str, float]], key: str, mode: str) -> int | None:
    """Epochs trained (1-based) when ``key`` was best in ``history`` (the first of equal values)."""
    rows = [(int(r["epoch"]) + 1, r[key]) for r in history if key in r]
    if not rows:
        return None
    sign = -1.0 if mode == "max" else 1.0
    return min(rows, key=lambda r: (sign * r[1], r[0]))[0]


def validation_temperature(model: nn.Module, val: Dataset) -> dict[str, Any]:
    """Temperature scaling (Guo et al. 2017) of a classifier: the ``T`` minimising the validation NLL, with the
    validation calibration before and after; saved in the model folder, applied by ``predict --calibrate``."""
    import numpy as np

    from mmfuse.training.calibration import calibration_metrics, fit_temperature, softmax

    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for batch in DataLoader(val, batch_size=256):
            logits.append(model(batch["inputs"], batch["masks"])["prediction"].float().numpy())
            targets.append(batch["target"].numpy())
    z, y = np.concatenate(logits), np.concatenate(targets).astype(int)
    t = fit_temperature(z, y)
    return {
        "temperature": t,
        "fitted_on": "validation",
        "validation_before": calibration_metrics(softmax(z), y),
        "validation_after": calibration_metrics(softmax(z, t), y),
    }


def _shared_checkpoint_dir(out_dir: Path) -> Path:
    """``.<name>.ckpt`` beside ``out_dir``: one name every process agrees on. The launching process (rank 0,
    before any other starts) removes one that a killed earlier run left, so old checkpoints never mix in."""
    path = out_dir.parent / f".{out_dir.name}.ckpt"
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        shutil.rmtree(path, ignore_errors=True)
    return path
