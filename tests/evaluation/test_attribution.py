"""Exact modality Shapley values: hand-worked games, efficiency on a trained model."""

from __future__ import annotations

import numpy as np
import pytest

from mmfuse.evaluation.attribution import modality_shapley, shapley_from_values, shapley_summary


def game(fn, mods):
    import itertools

    return {
        frozenset(s): np.array([fn(frozenset(s))])
        for k in range(len(mods) + 1)
        for s in itertools.combinations(mods, k)
    }


def test_additive_and_interaction_games_by_hand():
    mods = ["a", "b", "c"]
    additive = game(lambda s: 1.0 * ("a" in s) + 2.0 * ("b" in s), mods)
    assert shapley_from_values(additive, mods)[0] == pytest.approx([1.0, 2.0, 0.0])  # c is a dummy
    both = game(lambda s: float({"a", "b"} <= s), mods)  # only together: the credit is shared
    assert shapley_from_values(both, mods)[0] == pytest.approx([0.5, 0.5, 0.0])


def test_shapley_of_a_trained_model_sums_to_all_minus_none(synthetic):
    import torch

    from conftest import SYNTHETIC_ENCODERS
    from mmfuse.config import ModelConfig, TrainConfig
    from mmfuse.evaluation.predict import masks_transform, predict
    from mmfuse.training.fit import fit

    train, val = synthetic
    model = fit(
        ModelConfig(encoders=SYNTHETIC_ENCODERS, num_outputs=3, fusion="gated"),
        TrainConfig(max_epochs=3, progress_bar=False),
        train,
        val,
    ).model
    phi, mods, v_all = modality_shapley(model, val, "classification")
    assert phi.shape == (len(val), 2) and mods == ["a", "b"]
    full = predict(model, val).probabilities
    cls = full.argmax(1)
    none = predict(model, val, transform=masks_transform({"a": True, "b": True})).probabilities[
        np.arange(len(cls)), cls
    ]
    assert np.allclose(phi.sum(1), v_all - none, atol=1e-5)
    assert np.allclose(v_all, full[np.arange(len(cls)), cls])
    summary = shapley_summary(phi, mods)
    assert set(summary) == {"a", "b"} and all(v["mean_abs"] > 0 for v in summary.values())
    torch.manual_seed(0)
