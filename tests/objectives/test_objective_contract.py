"""Contract of every registered objective and head: built through the task builder on a real model, the loss is a
finite scalar, every parameter of the objective and every model parameter it reaches gets a finite gradient, and
what an absent modality's row holds never changes the loss."""

from __future__ import annotations

import pytest
import torch

from mmfuse.config import ModelConfig
from mmfuse.models.builder import build_encoders, build_model
from mmfuse.registry import HEADS, OBJECTIVES
from mmfuse.training.task import build_multitask_objectives, objectives_for

ENCODERS = {
    "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]},
    "b": {"name": "mlp", "in_dim": 7, "out_dim": 8, "hidden": [16]},
}
N = 16
TASK = {"mse": "regression", "l1": "regression", "bce": "multilabel"}  # every other objective: classification
FUSION = {"tmc": "evidential"}
PARAMS = {"dccae": {"input_dims": {"a": 5, "b": 7}}}


def batch(task: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    masks = {"a": torch.ones(N, dtype=torch.bool), "b": torch.arange(N) % 4 != 0}  # b absent in a quarter of the rows
    inputs = {"a": torch.randn(N, 5, generator=g), "b": torch.randn(N, 7, generator=g)}
    target = {
        "classification": torch.arange(N) % 3,
        "regression": torch.randn(N, 1, generator=g),
        "multilabel": (torch.rand(N, 3, generator=g) > 0.5).float(),
    }[task]
    return {"inputs": inputs, "masks": masks, "target": target}


def setup(name: str):
    task = TASK.get(name, "classification")
    torch.manual_seed(0)
    if name == "multitask":
        cfg = ModelConfig(
            encoders=ENCODERS, num_outputs=3, fusion="concat", tasks={"x": {"task": "classification", "num_outputs": 3}}
        )
        objective = OBJECTIVES.build("multitask", task_types={"x": "classification"})
    else:
        cfg = ModelConfig(
            encoders=ENCODERS,
            num_outputs=1 if task == "regression" else 3,
            task=task,
            fusion=FUSION.get(name, "concat"),
        )
        dims = {m: int(e.out_dim) for m, e in build_encoders(cfg.encoders).items()}
        objective = objectives_for(cfg, {"t": {"objective": name, **PARAMS.get(name, {})}}, dims)["t"][0]
        if "unimodal" in getattr(objective, "needs", ()):
            cfg = ModelConfig(**{**cfg.to_dict(), "unimodal_heads": True})
    return build_model(cfg).train(), objective.train(), task


def loss_of(model, objective, b):
    out = model(b["inputs"], b["masks"])
    if isinstance(out["prediction"], dict):
        b = {**b, "target": {"x": b["target"]}}
    return objective(out, b)


@pytest.mark.parametrize("name", OBJECTIVES.list())
def test_every_objective_gives_a_finite_loss_and_gradients(name):
    model, objective, task = setup(name)
    loss = loss_of(model, objective, batch(task))
    assert loss.dim() == 0 and torch.isfinite(loss), name
    loss.backward()
    for p_name, p in objective.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {p_name} got no finite gradient"
    reached = [p for p in model.parameters() if p.grad is not None]
    assert reached and all(torch.isfinite(p.grad).all() for p in reached), f"{name} reaches no model parameter"


@pytest.mark.parametrize("name", OBJECTIVES.list())
def test_what_an_absent_row_holds_never_changes_the_loss(name):
    model, objective, task = setup(name)
    model.eval()
    objective.eval()  # no dropout, no annealing step
    b = batch(task)
    noisy = {
        **b,
        "inputs": {
            **b["inputs"],
            "b": torch.where(b["masks"]["b"][:, None], b["inputs"]["b"], torch.full_like(b["inputs"]["b"], 50.0)),
        },
    }
    with torch.no_grad():
        assert torch.allclose(loss_of(model, objective, b), loss_of(model, objective, noisy), rtol=1e-5, atol=1e-6), (
            name
        )


@pytest.mark.parametrize("name", HEADS.list())
def test_every_head_maps_shapes_and_passes_gradients(name):
    head = HEADS.build(name, in_dim=8, out_dim=3)
    x = torch.randn(N, 8, requires_grad=True)
    y = head(x)
    assert y.shape == (N, 3) and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())


def test_multitask_terms_are_built_for_every_task():
    built = build_multitask_objectives(
        {
            "x": {"task": "classification", "num_outputs": 3, "weight": 1.0},
            "y": {"task": "regression", "num_outputs": 1, "weight": 0.5},
        },
        "soft",
    )
    assert sorted(built) == ["sharing", "x", "y"] and built["y"][1] == 0.5
