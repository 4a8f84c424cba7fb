"""precision="auto": bf16 + channels-last only for convolutional models on a CPU with bf16, and it stays close to
float32."""

from __future__ import annotations

import pytest
import torch

import mmfuse.training.precision as P
from mmfuse.config import ModelConfig
from mmfuse.models.builder import build_model

CNN = ModelConfig(encoders={"image": {"name": "cnn", "in_channels": 1, "pool": 3}}, num_outputs=10)
MLP = ModelConfig(encoders={"x": {"name": "mlp", "in_dim": 5, "out_dim": 8}}, num_outputs=3)


@pytest.mark.parametrize("supports", [True, False])
def test_auto_chooses_bf16_only_for_convolutions_on_a_bf16_cpu(monkeypatch, supports):
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda: supports)
    cnn, mlp = build_model(CNN), build_model(MLP)
    assert P.resolve_precision("auto", cnn)[0] == ("bf16-mixed" if supports else "32-true")
    precision, note = P.resolve_precision("auto", mlp)
    assert precision == "32-true" and "no convolution" in note
    assert P.resolve_precision("auto", cnn, accelerator="gpu")[0] == "32-true"
    assert P.resolve_precision("16-mixed", mlp) == ("16-mixed", "precision 16-mixed (as configured)")


def test_bf16_channels_last_forward_matches_float32_on_a_small_batch():
    torch.manual_seed(0)
    model = build_model(CNN).eval()
    x = {"image": torch.rand(16, 1, 28, 28)}
    with torch.no_grad():
        ref = model(x)["prediction"]
        fast = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fast(x)["prediction"].float()
    # bf16 keeps 8 mantissa bits: a relative error of a few 1e-3 per operation
    assert torch.allclose(low, ref, atol=0.05 * ref.abs().max().item()), (low - ref).abs().max()
    assert (low.argmax(1) == ref.argmax(1)).float().mean() >= 0.9
