"""Imputers trained on a model's embeddings, saved and loaded with the model (safetensors + JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmfuse.config import ModelConfig
from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.evaluation.predict import masks_transform, predict
from mmfuse.evaluation.robustness import evaluate_robustness
from mmfuse.models.builder import build_model
from mmfuse.training.imputation import add_imputers, embed_dataset, fit_imputer
from mmfuse.training.serialization import load_model_dir, save_model_dir

ENCODERS = {
    "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]},
    "b": {"name": "mlp", "in_dim": 7, "out_dim": 6, "hidden": [16]},
}


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    a = rng.standard_normal((n, 5)).astype("float32") + y[:, None]
    b = rng.standard_normal((n, 7)).astype("float32") - y[:, None]
    masks = {"b": np.arange(n) % 5 != 0}
    b[~masks["b"]] = 0
    return TensorMultimodalDataset({"a": a, "b": b}, y, masks)


def test_fit_imputer_leaves_the_model_weights_and_uses_present_rows_only():
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoders=ENCODERS, num_outputs=3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    emb, masks = embed_dataset(model, _data())
    assert emb["b"].shape == (96, 6) and int(masks["b"].sum()) == 96 - 20
    assert torch.equal(emb["b"][~masks["b"]], torch.zeros(20, 6))
    record = fit_imputer(model, _data(), "gan", {"hidden": [8, 8]}, epochs=2)
    assert len(record["curve"]) == 2 and record["seconds"] > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model's own weights did not move
    scale = model.imputers["gan"].scale["b"]
    assert torch.allclose(scale[0], emb["b"][masks["b"]].mean(0), atol=1e-5)


def test_save_load_round_trip_of_a_model_with_imputers(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(encoders=ENCODERS, num_outputs=3)
    save_model_dir(tmp_path / "plain", build_model(cfg), {"model": cfg.to_dict()})
    add_imputers(tmp_path / "plain", _data(), {"gan": {"hidden": [8, 8]}, "vae": {"latent": 4}}, tmp_path / "imp", 2)
    files = sorted(p.name for p in (tmp_path / "imp").iterdir())
    assert "model.safetensors" in files and not any(f.endswith((".pt", ".pkl", ".ckpt")) for f in files)
    meta = json.loads((tmp_path / "imp" / "config.json").read_text())
    assert meta["model"]["imputers"] == {"gan": {"hidden": [8, 8]}, "vae": {"latent": 4}}
    model, _ = load_model_dir(tmp_path / "imp")
    again, _ = load_model_dir(tmp_path / "imp")
    assert model.missing_strategies() == ["zero", "gan", "vae"]
    data = _data(seed=1)
    drop_b = masks_transform({"b": True})
    for s in ("gan", "vae"):
        p1 = predict(model, data, transform=drop_b, missing=s).prediction
        p2 = predict(again, data, transform=drop_b, missing=s).prediction
        assert np.allclose(p1, p2)
    assert model.missing == "zero"  # predict's strategy lasted for the call only
    zero = predict(model, data, transform=drop_b).prediction
    assert not np.allclose(zero, predict(model, data, transform=drop_b, missing="gan").prediction)


def test_robustness_takes_the_strategy():
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoders=ENCODERS, num_outputs=3))
    fit_imputer(model, _data(), "vae", {"latent": 4}, epochs=1)
    kw = {"missing_rates": [0.0, 1.0], "noise_levels": [0.0], "noise_modalities": []}
    zero = evaluate_robustness(model, _data(seed=1), "classification", **kw)
    vae = evaluate_robustness(model, _data(seed=1), "classification", missing="vae", **kw)
    assert zero.clean == pytest.approx(vae.clean) or zero.removal != vae.removal
    assert zero.removal["b"] != vae.removal["b"]
