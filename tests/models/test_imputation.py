"""Generative imputers and the model's missing-modality strategies."""

from __future__ import annotations

import pytest
import torch

from mmfuse.config import ModelConfig
from mmfuse.errors import ConfigError
from mmfuse.models.builder import build_model
from mmfuse.models.imputation import GANImputer, VAEImputer, build_imputer, use_missing

DIMS = {"a": 4, "b": 3, "c": 2}
ENCODERS = {
    "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]},
    "b": {"name": "mlp", "in_dim": 7, "out_dim": 6, "hidden": [16]},
}


def _embeddings(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}
    masks = {
        "a": torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.bool),
        "b": torch.tensor([1, 1, 0, 0, 1, 0], dtype=torch.bool),
        "c": torch.tensor([1, 1, 1, 0, 0, 0], dtype=torch.bool),
    }
    return {m: v * masks[m][:, None] for m, v in emb.items()}, masks


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_imputation_never_overwrites_a_present_modality(kind):
    torch.manual_seed(0)
    imputer = build_imputer(kind, DIMS, hidden=[8]) if kind == "vae" else build_imputer(kind, DIMS, hidden=[8, 8])
    emb, masks = _embeddings()
    out, filled = imputer(emb, masks)
    for m in DIMS:
        assert torch.equal(out[m][masks[m]], emb[m][masks[m]]), m  # present rows bit for bit
        others = torch.stack([masks[o] for o in DIMS if o != m]).any(0)
        assert torch.equal(filled[m], masks[m] | others)  # absent rows filled only where something conditions
        nothing = ~filled[m]
        assert torch.equal(out[m][nothing], emb[m][nothing])
        gen = ~masks[m] & others
        assert gen.any() and not torch.equal(out[m][gen], emb[m][gen])
    assert not filled["a"][5] and torch.equal(out["a"][5], torch.zeros(4))  # a row with nothing stays empty


def test_imputers_condition_only_on_present_rows_and_train():
    torch.manual_seed(0)
    for imputer in (GANImputer(DIMS, hidden=(8, 8)), VAEImputer(DIMS, latent=3, hidden=(8,))):
        emb, masks = _embeddings()
        moved = {m: v.clone() for m, v in emb.items()}
        moved["b"][2] = 100.0  # an absent row of b
        out1, _ = imputer.eval()(emb, masks)
        out2, _ = imputer(moved, masks)
        assert torch.allclose(out1["b"][[0, 1, 4]], out2["b"][[0, 1, 4]])
        assert torch.allclose(out1["a"], out2["a"]) and torch.allclose(out1["c"], out2["c"])
        imputer.train()
        loss = imputer.loss(emb, masks)["total"]
        assert torch.isfinite(loss)
        loss.backward()
        trained = [p for p in imputer.parameters() if p.requires_grad]
        assert any(p.grad is not None for p in trained)
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in trained)


def test_model_strategies_select_the_fill_and_refuse_what_it_lacks():
    torch.manual_seed(0)
    cfg = ModelConfig(encoders=ENCODERS, num_outputs=3, imputers={"gan": {"hidden": [8, 8]}})
    model = build_model(cfg).eval()
    assert model.missing == "zero" and model.missing_strategies() == ["zero", "gan"]
    x = {"a": torch.randn(4, 5), "b": torch.randn(4, 7)}
    masks = {"a": torch.tensor([True, True, False, True]), "b": torch.tensor([True, False, True, True])}
    zero = model(x, masks)
    model.set_missing("gan")
    gan = model(x, masks)
    assert torch.allclose(zero["prediction"][[0, 3]], gan["prediction"][[0, 3]])  # complete rows unchanged
    assert not torch.allclose(zero["prediction"][[1, 2]], gan["prediction"][[1, 2]])
    with pytest.raises(ConfigError, match="'token' is not available"):
        model.set_missing("token")
    with pytest.raises(ConfigError, match="'vae' is not available.*fit_imputer"):
        use_missing(model, "vae")
    token_model = build_model(ModelConfig(encoders=ENCODERS, num_outputs=3, missing_token=True))
    assert token_model.missing == "token" and token_model.missing_strategies() == ["zero", "token"]


def test_imputers_are_refused_for_a_multitask_model_and_unknown_kinds():
    with pytest.raises(ConfigError, match="not supported with 'tasks'"):
        build_model(
            ModelConfig(
                encoders=ENCODERS, imputers={"gan": {}}, tasks={"x": {"task": "classification", "num_outputs": 2}}
            )
        )
    with pytest.raises(ConfigError, match="Unknown imputer 'diffusion'"):
        build_imputer("diffusion", DIMS)
    with pytest.raises(ConfigError, match="Cannot build imputer 'gan'"):
        build_imputer("gan", DIMS, width=3)
