"""Multi-task models (``ModelConfig.tasks``) trained by the ordinary ``fit``: learning, logging, weights, save/load,
refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mmfuse.config import ModelConfig, TrainConfig, from_dict
from mmfuse.errors import ConfigError, DataError
from mmfuse.evaluation.predict import predict, predict_tasks, task_metrics
from mmfuse.models.builder import build_model
from mmfuse.models.multitask import HardSharingModel, SoftSharingModel
from mmfuse.training import fit
from mmfuse.training.serialization import load_model_dir, load_objectives

ENC = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 16}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 16}}
TASKS = {"cls": {"task": "classification", "num_outputs": 3}, "reg": {"task": "regression"}}


class TwoTaskDataset(Dataset):
    """Items ``{"inputs", "masks", "target": {task: value}}``; ``drop`` leaves a task's target out."""

    def __init__(self, inputs: dict, targets: dict, drop: str | None = None) -> None:
        self.inputs = {m: torch.as_tensor(v) for m, v in inputs.items()}
        self.targets = {t: torch.as_tensor(v) for t, v in targets.items() if t != drop}

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def __getitem__(self, i: int) -> dict:
        return {
            "inputs": {m: v[i] for m, v in self.inputs.items()},
            "masks": {m: torch.tensor(True) for m in self.inputs},
            "target": {t: v[i] for t, v in self.targets.items()},
        }


def two_task_problem(n: int = 600, seed: int = 0, drop: str | None = None) -> tuple[TwoTaskDataset, TwoTaskDataset]:
    """``cls``: 3 classes carried by a[:, 0] and b[:, 0]; ``reg``: a[:, 1] - b[:, 1] (variance 2) plus a little
    noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a = rng.normal(size=(n, 5)).astype("float32")
    b = rng.normal(size=(n, 7)).astype("float32")
    a[:, 0] += 2.5 * y
    b[:, 0] -= 2.5 * y
    r = (a[:, 1] - b[:, 1] + 0.1 * rng.normal(size=n)).astype("float32")
    k = int(0.7 * n)
    part = lambda s: TwoTaskDataset({"a": a[s], "b": b[s]}, {"cls": y[s], "reg": r[s]}, drop)  # noqa: E731
    return part(slice(0, k)), part(slice(k, n))


def cfgs(tasks=TASKS, sharing="hard", **train):
    base = dict(max_epochs=6, patience=6, batch_size=64, progress_bar=False, seed=1, lr=5e-3)
    base.update(train)
    return ModelConfig(encoders=ENC, tasks=tasks, sharing=sharing, hidden=32), TrainConfig(**base)


@torch.no_grad()
def outputs(model, ds: TwoTaskDataset) -> dict[str, torch.Tensor]:
    return model.eval()(ds.inputs)["prediction"]


@pytest.mark.parametrize("sharing", ["hard", "soft"])
def test_both_tasks_learn_are_logged_and_the_model_reloads(sharing, tmp_path):
    train, val = two_task_problem()
    mc, tc = cfgs(sharing=sharing)
    result = fit(mc, tc, train, val, out_dir=tmp_path / "m")
    assert isinstance(result.model, HardSharingModel if sharing == "hard" else SoftSharingModel)
    hist = result.history
    terms = {
        "train/cls",
        "train/reg",
        "val/cls",
        "val/reg",
        "val/cls/accuracy",
        "val/cls/macro_f1",
        "val/reg/mae",
        "val/reg/mse",
    }
    assert terms <= set(hist[-1]) and ("train/sharing" in hist[-1]) == (sharing == "soft")
    sharing_term = hist[-1].get("train/sharing", 0.0)
    assert hist[-1]["train/loss"] == pytest.approx(
        hist[-1]["train/cls"] + hist[-1]["train/reg"] + sharing_term, rel=1e-4
    )
    assert hist[-1]["train/loss"] < 0.5 * hist[0]["train/loss"]
    # the default monitor is the validation loss; the weights in hand are the best epoch's
    assert result.best_score == pytest.approx(min(h["val/loss"] for h in hist))
    pred = outputs(result.model, val)
    acc = (pred["cls"].argmax(1) == val.targets["cls"]).float().mean().item()
    mse = ((pred["reg"][:, 0] - val.targets["reg"]) ** 2).mean().item()
    assert (
        acc > 0.8 and mse < 0.25 * val.targets["reg"].var().item()
    )  # chance is 1/3; predicting the mean gives the variance
    # save / load: the config round-trips and the reloaded model predicts exactly the same
    model, meta = load_model_dir(tmp_path / "m")
    assert (
        from_dict(ModelConfig, meta["model"]) == mc
        and json.loads((tmp_path / "m" / "config.json").read_text())["model"]["sharing"] == sharing
    )
    again = outputs(model, val)
    assert all(torch.equal(pred[t], again[t]) for t in TASKS)
    assert sorted(load_objectives(tmp_path / "m")) == (
        ["cls", "reg"] if sharing == "hard" else ["cls", "reg", "sharing"]
    )
    assert "tasks=['cls', 'reg']" in (tmp_path / "m" / "summary.txt").read_text()
    # batched evaluation: one Predictions per task, equal to the direct forward pass, with task metrics
    per_task = predict_tasks(model, val, batch_size=50)
    np.testing.assert_allclose(per_task["cls"].prediction, pred["cls"].numpy(), rtol=1e-5, atol=1e-6)
    assert task_metrics(per_task["cls"], "classification")["accuracy"] == pytest.approx(acc)
    assert task_metrics(per_task["reg"], "regression")["mse"] == pytest.approx(mse, rel=1e-4)
    with pytest.raises(TypeError, match="predict_tasks"):
        predict(model, val)


def test_task_weights_set_what_is_learned_and_monitor_picks_a_task_metric():
    train, val = two_task_problem()
    runs = {}
    for name, weights in (("cls_only", {"cls": 1.0, "reg": 0.0}), ("reg_heavy", {"cls": 0.05, "reg": 1.0})):
        tasks = {t: {**s, "weight": weights[t]} for t, s in TASKS.items()}
        mc, tc = cfgs(tasks, max_epochs=4, monitor="cls/accuracy")
        runs[name] = result = fit(mc, tc, train, val)
        row = result.history[-1]
        assert row["train/loss"] == pytest.approx(
            weights["cls"] * row["train/cls"] + weights["reg"] * row["train/reg"], rel=1e-4
        )
        assert result.best_score == pytest.approx(max(h["val/cls/accuracy"] for h in result.history))
    a, b = runs["cls_only"].history[-1], runs["reg_heavy"].history[-1]
    assert a["val/reg/mse"] > 3 * b["val/reg/mse"]  # with weight 0 the regression head is never trained
    assert a["val/cls"] < b["val/cls"]  # and the down-weighted classification learns less


@pytest.mark.parametrize(
    "tasks, extra, message",
    [
        ({"cls": {"task": "ranking"}}, {}, r"ModelConfig.tasks\['cls'\] has task kind 'ranking'; use one of"),
        ({"cls": {"task": "classification"}}, {}, r"ModelConfig.tasks\['cls'\] needs 'num_outputs'"),
        ({"cls": {"task": "classification", "num_outputs": 3, "wieght": 2}}, {}, r"unknown key\(s\) \['wieght'\]"),
        (TASKS, {"sharing": "partial"}, r"ModelConfig.sharing is 'partial'; use one of"),
        (TASKS, {"fusion": "late_mean"}, "decision-level"),
    ],
)
def test_bad_model_configs_are_refused_in_one_sentence(tasks, extra, message):
    with pytest.raises(ConfigError, match=message):
        build_model(ModelConfig(encoders=ENC, tasks=tasks, **extra))


@pytest.mark.parametrize(
    "train, message",
    [
        (
            {"monitor": "cls/mae"},
            r"TrainConfig.monitor 'cls/mae' is not logged by this multi-task model; "
            r"use one of \['loss', 'cls', 'reg', 'cls/accuracy'",
        ),
        ({"objectives": {"task": {"objective": "cross_entropy"}}}, r"cannot be combined with ModelConfig.tasks"),
    ],
)
def test_bad_train_configs_are_refused_before_training(train, message):
    mc, tc = cfgs(**train)
    with pytest.raises(ConfigError, match=message):
        fit(mc, tc, *two_task_problem(60))


def test_batches_without_a_target_per_task_are_refused():
    mc, tc = cfgs(max_epochs=1)
    with pytest.raises(DataError, match=r"The batch's target lacks task\(s\) \['reg'\]; give a target for every task"):
        fit(mc, tc, *two_task_problem(60, drop="reg"))
    from conftest import synthetic_problem

    single = synthetic_problem(60)
    with pytest.raises(DataError, match="needs batch\\['target'\\] to be a dict"):
        fit(mc, tc, single, single)
    with pytest.raises(DataError, match="set ModelConfig.tasks for a multi-task model"):
        fit(ModelConfig(encoders=ENC, num_outputs=3), tc, *two_task_problem(60))


@pytest.mark.parametrize("sharing", ["hard", "soft"])
def test_missing_modality_options_reach_every_trunk(sharing):
    cfg = ModelConfig(
        encoders=ENC, tasks=TASKS, sharing=sharing, missing_token=True, modality_dropout=0.3, sharing_weight=0.5
    )
    model = build_model(cfg)
    trunks = [model.trunk] if sharing == "hard" else list(model.trunks.values())
    assert all(t.missing_tokens is not None for t in trunks)
    assert model.heads["cls"].out_dim == 3 and model.heads["reg"].out_dim == 1  # regression defaults to one output
    if sharing == "soft":
        assert (
            model.modality_dropout is not None and model.penalty_weight == 0.5 and model.sharing_penalty().item() == 0.0
        )
    else:
        assert model.trunk.modality_dropout is not None
