from __future__ import annotations

import pytest
import torch

from mmfuse.config import ModelConfig
from mmfuse.models import build_model
from mmfuse.models.missing import MissingTokens, ModalityDropout
from mmfuse.registry import FUSIONS

ENC = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 8}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 6}}


def batch(n=6):
    torch.manual_seed(1)
    return {"a": torch.randn(n, 5), "b": torch.randn(n, 7)}


def test_absent_modality_cannot_leak_into_the_output():
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoders=ENC, num_outputs=3, fusion="concat")).eval()
    x = batch()
    masks = {"a": torch.tensor([1, 1, 0, 0, 1, 1], dtype=torch.bool), "b": torch.ones(6, dtype=torch.bool)}
    out1 = model(x, masks)
    x2 = {**x, "a": x["a"] + 100.0}
    out2 = model(x2, masks)
    absent = ~masks["a"]
    assert torch.equal(out1["prediction"][absent], out2["prediction"][absent])
    assert not torch.equal(out1["prediction"][~absent], out2["prediction"][~absent])
    assert torch.equal(out1["embeddings"]["a"][absent], torch.zeros(2, 8))


def test_modality_dropout_never_drops_every_modality():
    torch.manual_seed(0)
    drop = ModalityDropout(0.9, ["a", "b"]).train()
    masks = {"a": torch.ones(2000, dtype=torch.bool), "b": torch.tensor([True, False] * 1000)}
    out = drop(masks)
    present = out["a"].int() + out["b"].int()
    assert (present >= 1).all()
    assert not (out["b"] & ~masks["b"]).any()  # never adds a modality the sample lacks
    # where both are present: a is kept w.p. (1-p) + p^2/2 (both dropped -> one restored at random)
    kept = out["a"][masks["b"]].float().mean()
    assert abs(kept - (0.1 + 0.81 / 2)) < 0.05
    assert out["a"][~masks["b"]].all()  # the only modality of a sample is never dropped
    assert torch.equal(drop.eval()(masks)["a"], masks["a"])


def test_missing_tokens_replace_absent_rows_only():
    tokens = MissingTokens({"a": 3})
    z = {"a": torch.ones(2, 3)}
    out = tokens(z, {"a": torch.tensor([True, False])})
    assert torch.equal(out["a"][0], torch.ones(3))
    assert torch.equal(out["a"][1], tokens.tokens["a"].detach())


def test_builder_wires_heads_and_options():
    cfg = ModelConfig(
        encoders=ENC,
        num_outputs=3,
        fusion="concat",
        unimodal_heads=True,
        missing_token=True,
        modality_dropout={"a": 0.2},
    )
    model = build_model(cfg)
    out = model(batch())
    assert out["prediction"].shape == (6, 3) and set(out["unimodal"]) == {"a", "b"}
    assert model.missing_tokens is not None and model.modality_dropout.rates == {"a": 0.2, "b": 0.0}
    decision = [n for n in FUSIONS.list() if getattr(FUSIONS.get(n), "decision_level", False)]
    for name in decision:
        m = build_model(ModelConfig(encoders=ENC, num_outputs=3, fusion=name))
        assert isinstance(m.head, torch.nn.Identity) and m.fusion.out_dim == 3


def test_model_reports_missing_input_modality():
    model = build_model(ModelConfig(encoders=ENC, num_outputs=3))
    with pytest.raises(KeyError, match="lacks"):
        model({"a": torch.randn(2, 5)})


def test_missing_tokens_reach_the_fusion_and_learn():
    torch.manual_seed(0)
    cfg = ModelConfig(encoders=ENC, num_outputs=3, fusion="concat", missing_token=True)
    model = build_model(cfg)
    masks = {"a": torch.tensor([True, False, True, False, True, True]), "b": torch.ones(6, dtype=torch.bool)}
    out = model(batch(), masks)
    out["prediction"].sum().backward()
    grad = model.missing_tokens.tokens["a"].grad
    assert grad is not None and grad.abs().sum() > 0
    assert torch.equal(out["masks"]["a"], masks["a"])  # the true presence is still reported
