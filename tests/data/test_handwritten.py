"""Handwritten 6-view from the real .mat file: views, split sizes, stratified carve, standardisation, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from mmfuse.data import handwritten
from mmfuse.data.handwritten import VIEWS, load_handwritten, read_handwritten
from mmfuse.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def splits(data_dir):
    return load_handwritten(data_dir)


def test_sizes_views_and_labels(splits):
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1440, 160, 400)
    item = splits.test[0]
    assert {v: tuple(x.shape) for v, x in item["inputs"].items()} == {v: (d,) for v, d in VIEWS.items()}
    assert all(x.dtype == torch.float32 for x in item["inputs"].values()) and item["target"].dtype == torch.long
    assert np.bincount(splits.test.target.numpy()).tolist() == [40] * 10
    assert np.bincount(splits.val.target.numpy()).tolist() == [16] * 10  # stratified carve
    assert splits.spec.encoders["zernike"] == {"name": "mlp", "in_dim": 47, "input_norm": False}
    assert splits.spec.num_outputs == 10 and splits.spec.task == "classification"


def test_labels_are_digits_in_uci_order(data_dir):
    raw = read_handwritten(data_dir, download=False)
    # the morphological view's first feature counts closed loops: one in 0, 6, 9, two in 8, none elsewhere
    loops = [raw["train"]["morph"][raw["train"]["label"] == d, 0].mean() for d in range(10)]
    assert np.round(loops).tolist() == [1, 0, 0, 0, 0, 0, 1, 0, 2, 1]


def test_views_standardised_with_training_statistics(splits):
    for view in VIEWS:
        x = splits.train.inputs[view].numpy().astype(np.float64)
        assert np.allclose(x.mean(0), 0, atol=1e-4)
        std = x.std(0)
        assert np.allclose(std[std > 0], 1, atol=1e-3)
        assert abs(splits.test.inputs[view].numpy().mean()) < 0.5  # test uses the training statistics, not its own


def test_carve_is_seeded(data_dir, splits):
    again = load_handwritten(data_dir)
    other = load_handwritten(data_dir, seed=1)
    assert torch.equal(again.val.inputs["pixel"], splits.val.inputs["pixel"])
    assert not torch.equal(other.val.inputs["pixel"], splits.val.inputs["pixel"])
    with pytest.raises(ConfigError, match="val_fraction"):
        load_handwritten(data_dir, val_fraction=1.0)


def test_download_from_local_copy_and_corrupt_file(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(handwritten, "URL", (data_dir / "handwritten" / handwritten.FILE).as_uri())
    assert len(load_handwritten(tmp_path / "a").train) == 1440
    target = tmp_path / "b" / "handwritten" / handwritten.FILE
    target.parent.mkdir(parents=True)
    shutil.copy(data_dir / "handwritten" / handwritten.FILE, target)
    with target.open("r+b") as f:
        f.seek(5000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(DataError, match=r"handwritten_6views\.mat has sha256"):
        load_handwritten(tmp_path / "b")


def test_missing_folder_names_env_var(tmp_path):
    with pytest.raises(DataError, match=r"handwritten_6views\.mat is missing.*MMFUSE_DATA_DIR"):
        load_handwritten(tmp_path, download=False)
