"""Contract tests over every registered encoder: shape, out_dim, finite gradients, determinism."""

from __future__ import annotations

import pytest
import torch

from mmfuse.registry import ENCODERS

# name -> (constructor kwargs, example input of batch 4). A new encoder must add a line here.
EXAMPLES = {
    "mlp": ({"in_dim": 10, "out_dim": 16}, lambda: torch.randn(4, 10)),
    "identity": ({"in_dim": 12}, lambda: torch.randn(4, 12)),
    "cnn": ({"in_channels": 1, "out_dim": 16}, lambda: torch.randn(4, 1, 28, 28)),
    "logmel_cnn": ({"sample_rate": 8000, "out_dim": 16}, lambda: torch.randn(4, 8000)),
    "spectrogram_cnn": ({"out_dim": 16}, lambda: torch.randn(4, 40, 32)),
    "gru": ({"in_dim": 6, "out_dim": 16}, lambda: torch.randn(4, 9, 6)),
    "transformer": ({"in_dim": 6, "out_dim": 16, "num_heads": 2}, lambda: torch.randn(4, 9, 6)),
    "ge2e": ({"out_dim": 16, "pretrained": False}, lambda: 0.1 * torch.randn(4, 8000)),  # random LSTM, frozen
}
PRETRAINED = {"minilm", "efficientnet_lite0"}  # covered by tests/encoders/test_pretrained*.py


def test_every_encoder_has_an_example():
    missing = set(ENCODERS.list()) - set(EXAMPLES) - PRETRAINED
    assert not missing, f"add contract examples for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_encoder_contract(name):
    kwargs, make = EXAMPLES[name]
    torch.manual_seed(0)
    enc = ENCODERS.build(name, **kwargs)
    x = make().requires_grad_()
    z = enc(x)
    assert z.shape == (4, enc.out_dim)
    assert torch.isfinite(z).all()
    z.pow(2).sum().backward()
    for pname, p in enc.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}.{pname} got no finite gradient"
    x = x.detach()
    torch.manual_seed(0)
    first = ENCODERS.build(name, **kwargs).eval()
    torch.manual_seed(0)
    again = ENCODERS.build(name, **kwargs).eval()
    assert torch.equal(first(x), again(x))


def test_sequence_encoders_ignore_padding():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    padded = torch.cat([x, torch.zeros(2, 4, 3)], dim=1)
    for name in ("gru", "transformer"):
        enc = ENCODERS.build(name, in_dim=3, out_dim=8, **({"num_heads": 2} if name == "transformer" else {})).eval()
        assert torch.allclose(enc(x), enc(padded), atol=1e-5), name


def test_logmel_frontend_matches_librosa():
    librosa = pytest.importorskip("librosa")
    import numpy as np

    from mmfuse.encoders.audio import LogMelSpectrogram

    wave = np.random.default_rng(0).normal(size=8000).astype("float32")
    ours = LogMelSpectrogram(8000, 512, 128, 40)(torch.from_numpy(wave)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=wave, sr=8000, n_fft=512, hop_length=128, n_mels=40, power=2.0, center=True, pad_mode="reflect"
    )
    assert np.allclose(ours, np.log(ref + 1e-6), atol=1e-3)
