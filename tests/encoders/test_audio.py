"""Spectrogram encoders: SpecAugment masks whole bands and spans in training only; grid pooling sizes."""

from __future__ import annotations

import pytest
import torch

from mmfuse.encoders.audio import SpecAugment, SpectrogramCNNEncoder


def test_spec_augment_zeroes_whole_bands_and_spans_in_training_only():
    torch.manual_seed(0)
    aug = SpecAugment(freq=6, time=5, masks=1).train()
    x = torch.randn(64, 1, 40, 32).abs() + 1.0  # no zero before masking
    y = aug(x)
    zero = y[:, 0] == 0
    for z in zero:
        rows = z.all(1).nonzero().flatten()  # masked frequency rows are zero across every frame
        cols = z.all(0).nonzero().flatten()
        assert len(rows) <= 6 and len(cols) <= 5
        if len(rows):
            assert rows.max() - rows.min() + 1 == len(rows)  # one contiguous band
        if len(cols):
            assert cols.max() - cols.min() + 1 == len(cols)
        covered = torch.zeros_like(z)
        covered[rows] = True
        covered[:, cols] = True
        assert torch.equal(z, covered)  # nothing else is touched
    assert zero.any()
    assert torch.equal(aug.eval()(x), x)
    assert torch.equal(SpecAugment().train()(x), x)
    with pytest.raises(ValueError, match="freq"):
        SpecAugment(freq=-1)


def test_grid_pooling_sizes_the_projection_by_the_grid():
    for pool, cells in ((1, 1), (3, 9), ([5, 4], 20)):
        enc = SpectrogramCNNEncoder(pool=pool).eval()
        assert enc.proj[0].in_features == 64 * cells
        with torch.no_grad():
            assert enc(torch.randn(2, 40, 32)).shape == (2, 64)
