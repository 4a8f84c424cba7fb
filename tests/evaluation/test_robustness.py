from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.errors import ConfigError
from mmfuse.evaluation.robustness import (
    RobustnessResult,
    Sweep,
    effective_robustness,
    evaluate_robustness,
    feature_std,
    format_removal_table,
    maxmin_normalize,
    missing_rate_transform,
    noise_transform,
    relative_robustness,
    removal_transform,
    robustness_summary,
)
from mmfuse.training import fit

ENC = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 16}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 16}}


def one_batch(n=64, seed=0, three=False):
    rng = np.random.default_rng(seed)
    inputs = {"a": rng.normal(size=(n, 5)).astype("float32"), "b": rng.normal(size=(n, 3, 2)).astype("float32")}
    if three:
        inputs["c"] = rng.normal(size=(n, 4)).astype("float32")
    ds = TensorMultimodalDataset(inputs, rng.integers(0, 3, n))
    return next(iter(DataLoader(ds, batch_size=n)))


def test_missing_rate_zero_keeps_everything_and_one_hits_every_sample_once():
    batch = one_batch(three=True)
    same = missing_rate_transform(0.0, seed=1)(batch)
    assert all(same["masks"][m].all() for m in "abc")
    out = missing_rate_transform(1.0, seed=1)(batch)
    lost = torch.stack([~out["masks"][m] for m in "abc"], 1)
    assert (lost.sum(1) == 1).all()  # exactly one modality lost per sample
    assert lost.float().mean(0).min() > 0.15  # drawn among all modalities, not always the same
    for m in "abc":  # dropped rows are zeroed, kept rows untouched
        gone = ~out["masks"][m]
        assert (out["inputs"][m][gone] == 0).all()
        assert torch.equal(out["inputs"][m][~gone], batch["inputs"][m][~gone])


def test_missing_rate_is_seeded_and_nested_across_rates():
    batch = one_batch(n=400)
    a = missing_rate_transform(0.3, seed=5)(batch)
    b = missing_rate_transform(0.3, seed=5)(batch)
    assert all(torch.equal(a["masks"][m], b["masks"][m]) for m in "ab")
    hit = lambda out: ~(out["masks"]["a"] & out["masks"]["b"])  # noqa: E731
    lo, hi = hit(a), hit(missing_rate_transform(0.7, seed=5)(batch))
    assert not (lo & ~hi).any()  # a sample hit at 0.3 is also hit at 0.7
    assert abs(lo.float().mean().item() - 0.3) < 0.07 and abs(hi.float().mean().item() - 0.7) < 0.07


def test_missing_rate_never_removes_the_last_modality_and_rejects_bad_rates():
    batch = one_batch()
    batch["masks"]["b"] = torch.zeros_like(batch["masks"]["b"])
    out = missing_rate_transform(1.0)(batch)
    assert out["masks"]["a"].all()
    with pytest.raises(ConfigError, match="Missing rate"):
        missing_rate_transform(1.5)


def test_removal_transform_zeroes_and_masks_one_modality():
    out = removal_transform(["b"])(one_batch())
    assert not out["masks"]["b"].any() and out["masks"]["a"].all()
    assert (out["inputs"]["b"] == 0).all()


def test_feature_std_matches_numpy_over_present_rows_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2, 3)).astype("float32") * np.array([1.0, 2.0, 3.0], dtype="float32")
    mask = rng.random(300) < 0.8
    x[~mask] = 0
    ds = TensorMultimodalDataset({"x": x}, np.zeros(300, dtype=int), {"x": mask})
    std = feature_std(ds, "x", batch_size=64)
    assert std.shape == (2, 3)
    np.testing.assert_allclose(std.numpy(), x[mask].std(0, ddof=1), rtol=1e-4)


def test_feature_std_refuses_integer_inputs():
    ds = TensorMultimodalDataset({"tok": np.arange(20).reshape(10, 2)}, np.zeros(10, dtype=int))
    with pytest.raises(ConfigError, match="token ids"):
        feature_std(ds, "tok")


def test_noise_has_the_requested_size_spares_absent_rows_and_is_seeded():
    batch = one_batch(n=4000)
    batch["masks"]["a"][:10] = False
    std = torch.tensor([0.5, 1.0, 2.0, 0.0, 3.0])
    out = noise_transform("a", 2.0, std, seed=3)(batch)
    delta = out["inputs"]["a"] - batch["inputs"]["a"]
    assert (delta[:10] == 0).all()
    np.testing.assert_allclose(delta[10:].std(0).numpy(), (2.0 * std).numpy(), rtol=0.05, atol=1e-6)
    assert torch.equal(out["inputs"]["b"], batch["inputs"]["b"])
    assert torch.equal(noise_transform("a", 2.0, std, seed=3)(batch)["inputs"]["a"], out["inputs"]["a"])
    assert torch.equal(noise_transform("a", 0.0, std, seed=3)(batch)["inputs"]["a"], batch["inputs"]["a"])


def test_relative_robustness_is_multibench_trapezoid_area():
    levels = [i / 10 for i in range(11)]
    f = [0.9, 0.88, 0.85, 0.8, 0.74, 0.7, 0.66, 0.6, 0.55, 0.5, 0.48]
    multibench = sum((f[i] + f[i + 1]) * 0.1 / 2 for i in range(10))  # eval_scripts/robustness.py helper
    assert relative_robustness(levels, f) == pytest.approx(multibench, abs=1e-12)
    assert relative_robustness([0, 1, 2, 4], [0.5] * 4) == pytest.approx(0.5)  # levels rescaled to [0, 1]
    with pytest.raises(ConfigError):
        relative_robustness([0.0], [1.0])


def test_effective_robustness_is_gain_over_the_shifted_reference():
    ref = [0.9, 0.8, 0.6, 0.4]
    assert effective_robustness(ref, ref) == pytest.approx(0.0)
    assert effective_robustness([v - 0.1 for v in ref], ref) == pytest.approx(0.0)  # same drop, lower start
    # MultiBench: sum_i f_i - (r_i + f_0 - r_0)
    f = [0.7, 0.69, 0.65, 0.6]
    assert effective_robustness(f, ref) == pytest.approx(sum(fi - (ri + 0.7 - 0.9) for fi, ri in zip(f, ref)))
    assert effective_robustness(f, ref) > 0


def test_summary_normalises_over_methods_and_flips_for_errors():
    lv = [0.0, 0.5, 1.0]
    curves = {
        "late": Sweep("missing_rate", None, lv, [{"acc": v} for v in (0.9, 0.7, 0.5)]),
        "robust": Sweep("missing_rate", None, lv, [{"acc": v} for v in (0.85, 0.8, 0.75)]),
        "weak": Sweep("missing_rate", None, lv, [{"acc": v} for v in (0.9, 0.5, 0.1)]),
    }
    s = robustness_summary(curves, "acc", "late")
    assert s["robust"]["relative_norm"] == 1.0 and s["weak"]["relative_norm"] == 0.0
    assert s["late"]["effective"] == pytest.approx(0.0) and s["robust"]["effective_norm"] == 1.0
    assert maxmin_normalize({"x": 0.2, "y": 0.4}, higher_is_better=False) == {"x": 1.0, "y": 0.0}
    with pytest.raises(ConfigError, match="Reference"):
        robustness_summary(curves, "acc", "nope")


@pytest.fixture(scope="module")
def trained():
    from conftest import synthetic_problem

    ds = synthetic_problem(n=600, seed=0)
    train, test = torch.utils.data.Subset(ds, range(400)), torch.utils.data.Subset(ds, range(400, 600))
    cfg = ModelConfig(encoders=ENC, num_outputs=3, fusion="concat")
    result = fit(cfg, TrainConfig(max_epochs=6, batch_size=32, progress_bar=False, seed=0), train, test)
    return result.model, test


def test_evaluate_robustness_end_to_end(trained):
    model, test = trained
    r = evaluate_robustness(model, test, "classification", missing_rates=[0, 0.5, 1.0], noise_levels=[0, 1, 8], seed=0)
    assert r.metric == "accuracy" and r.clean["accuracy"] > 0.65
    assert set(r.removal) == {"a", "b"}
    assert max(r.removal[m]["accuracy"] for m in "ab") < r.clean["accuracy"]
    curve = r.missing_rate.values("accuracy")
    assert curve[0] == r.clean["accuracy"]
    # at rate 1 each sample loses a or b at random: accuracy lies between the two removal accuracies
    lo, hi = sorted(r.removal[m]["accuracy"] for m in "ab")
    assert lo - 0.08 <= curve[-1] <= hi + 0.08
    assert r.noise["a"].values("accuracy")[-1] < r.clean["accuracy"] - 0.1
    again = evaluate_robustness(
        model, test, "classification", missing_rates=[0, 0.5, 1.0], noise_levels=[0, 1, 8], seed=0
    )
    assert again.to_dict() == r.to_dict()  # seeded: identical numbers
    assert RobustnessResult.from_dict({**r.to_dict(), "seed": 0}).to_dict() == r.to_dict()
    assert "no a" in format_removal_table({"concat": r})
