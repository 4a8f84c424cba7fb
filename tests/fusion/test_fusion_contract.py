"""Contract tests run over every registered fusion: a new method is tested the day it is registered."""

from __future__ import annotations

import math

import pytest
import torch

from mmfuse.errors import ConfigError, DataError
from mmfuse.registry import FUSIONS

NAMES = FUSIONS.list()
DECISION = [n for n in NAMES if getattr(FUSIONS.get(n), "decision_level", False)]
DIMS = {"b": 3, "a": 5}  # deliberately not in sorted order
DIMS3 = {"c": 4, "a": 5, "b": 3}
OUT = 4
N = 8


def build(name, dims=DIMS, seed=0, **kwargs):
    torch.manual_seed(seed)
    return FUSIONS.build(name, dims=dims, out_dim=OUT, **kwargs)


def embeddings(dims, seed=1, n=N):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, d, generator=g) for m, d in sorted(dims.items())}


def combos(dims, n=N):
    """Row i has the j-th (sorted) modality iff bit j of i is set: all-absent, partial and all-present rows."""
    rows = torch.arange(n)
    return {m: (rows >> j) % 2 == 1 for j, m in enumerate(sorted(dims))}


def check_gradients(fusion, out):
    out.sum().backward()
    for pname, p in fusion.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} got a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient (unused parameter?)"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_shape_and_finite_with_absent_modalities(name, training):
    fusion = build(name).train(training)
    out = fusion(embeddings(DIMS), combos(DIMS))
    assert out.shape == (N, OUT) and fusion.out_dim == OUT
    assert torch.isfinite(out).all(), "non-finite output (rows 0 and 4 have no modality at all)"


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_finite_gradient(name):
    fusion = build(name).train()  # late_vote trains through its differentiable surrogate
    check_gradients(fusion, fusion(embeddings(DIMS), combos(DIMS)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dims", [DIMS, DIMS3], ids=["2mod", "3mod"])
def test_absent_rows_ignore_the_embedding(name, training, dims):
    fusion = build(name, dims).train(training)
    emb, masks = embeddings(dims), combos(dims)
    base = fusion(emb, masks)
    for m in sorted(dims):
        absent = ~masks[m]
        noisy = emb[m].clone()
        noisy[absent] = 100.0 * torch.randn(int(absent.sum()), dims[m])
        out = fusion({**emb, m: noisy}, masks)
        assert torch.equal(out, base), f"changing absent rows of {m!r} changed the output"
        # the method does use m: changing the present rows changes some present row's output
        moved = emb[m] + 3.0 * masks[m][:, None].float()
        assert not torch.equal(fusion({**emb, m: moved}, masks)[masks[m]], base[masks[m]]), f"{m!r} is ignored"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name):
    emb, masks = embeddings(DIMS), combos(DIMS)
    first, again = build(name).eval(), build(name).eval()
    assert torch.equal(first(emb, masks), again(emb, masks))


@pytest.mark.parametrize("name", NAMES)
def test_three_modalities(name):
    fusion = build(name, DIMS3).train()
    out = fusion(embeddings(DIMS3), combos(DIMS3))
    assert out.shape == (N, OUT) and torch.isfinite(out).all()
    check_gradients(fusion, out)
    fusion.eval()
    assert torch.isfinite(fusion(embeddings(DIMS3), combos(DIMS3))).all()


@pytest.mark.parametrize("name", NAMES)
def test_single_modality(name):
    fusion = build(name, {"a": 5}).eval()
    emb, masks = embeddings({"a": 5}), combos({"a": 5})
    out = fusion(emb, masks)
    assert out.shape == (N, OUT) and torch.isfinite(out).all()
    absent = ~masks["a"]
    other = fusion({"a": emb["a"] + 5.0}, masks)
    assert torch.equal(other[absent], out[absent]) and not torch.equal(other[~absent], out[~absent])


@pytest.mark.parametrize("name", NAMES)
def test_result_does_not_depend_on_dict_order(name):
    forward, backward = dict(sorted(DIMS3.items())), dict(sorted(DIMS3.items(), reverse=True))
    f1, f2 = build(name, forward).eval(), build(name, backward).eval()
    assert f1.modalities == f2.modalities == sorted(DIMS3)
    emb, masks = embeddings(DIMS3), combos(DIMS3)
    reordered = {m: emb[m] for m in reversed(list(emb))}
    masks_reordered = {m: masks[m] for m in reversed(list(masks))}
    assert torch.equal(f1(emb, masks), f2(reordered, masks_reordered))


@pytest.mark.parametrize("name", NAMES)
def test_modality_weights_are_renormalised_over_present(name):
    fusion = build(name, DIMS3).eval()
    emb, masks = embeddings(DIMS3), combos(DIMS3)
    w = fusion.modality_weights(emb, masks)
    if w is None:
        pytest.skip(f"{name} has no modality weights")
    present = torch.stack([masks[m] for m in fusion.modalities], dim=1)
    assert w.shape == (N, 3) and (w >= 0).all()
    assert torch.equal(w[~present], torch.zeros(int((~present).sum())))
    sums = w.sum(dim=1)
    some = present.any(dim=1)
    assert torch.allclose(sums[some], torch.ones(int(some.sum())), atol=1e-6) and torch.equal(
        sums[~some], torch.zeros(int((~some).sum()))
    )


@pytest.mark.parametrize("name", NAMES)
def test_user_errors_name_the_problem(name):
    with pytest.raises(ConfigError, match="not_an_option"):
        FUSIONS.build(name, dims=DIMS, out_dim=OUT, not_an_option=1)
    fusion = build(name)
    with pytest.raises(DataError, match="lack"):
        fusion({"a": torch.randn(2, 5)}, {})
    with pytest.raises(DataError, match="'b'"):
        fusion({"a": torch.randn(2, 5), "b": torch.randn(2, 4)}, {})


@pytest.mark.parametrize("name", DECISION)
@pytest.mark.parametrize("task", ["classification", "regression", "multilabel"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_decision_level_tasks(name, task, training):
    if task not in FUSIONS.get(name).tasks:  # a method that cannot serve a task refuses it by name
        with pytest.raises(ConfigError, match=f"'{task}'"):
            build(name, task=task)
        return
    fusion = build(name, task=task).train(training)
    emb, masks = embeddings(DIMS), combos(DIMS)
    out = fusion(emb, masks)
    assert out.shape == (N, OUT) and torch.isfinite(out).all()
    nothing = ~(masks["a"] | masks["b"])
    empty = {"classification": -math.log(OUT), "regression": 0.0, "multilabel": 0.0}[task]
    assert torch.allclose(out[nothing], torch.full((int(nothing.sum()), OUT), empty), atol=1e-6)
    if task == "classification":  # log-probabilities
        assert torch.allclose(out.exp().sum(dim=1), torch.ones(N), atol=1e-5)
    absent = ~masks["a"]
    noisy = emb["a"].clone()
    noisy[absent] = 50.0
    assert torch.equal(fusion({**emb, "a": noisy}, masks), out)
    if training:
        check_gradients(fusion, out)


def test_decision_level_fusions_check_their_task():
    for name in DECISION:
        with pytest.raises(ConfigError, match="task"):
            build(name, task="ranking")
    with pytest.raises(ConfigError, match="tie_break"):
        build("late_vote", tie_break=1.0)  # a tie-break weight >= 1 could override a vote
