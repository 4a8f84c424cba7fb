"""Shared fixtures: the real-data folder and small synthetic multimodal problems."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    return Path(os.environ.get("MMFUSE_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real data sets (``../shared/data`` here); tests that need it skip elsewhere."""
    path = real_data_dir()
    if not (path / "mnist").is_dir():
        pytest.skip(f"real data not found in {path}; set MMFUSE_DATA_DIR")
    return path


def synthetic_problem(n: int = 600, seed: int = 0, classes: int = 3):
    """Two vector modalities, each carrying part of the label signal."""
    from mmfuse.data.base import TensorMultimodalDataset

    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    a = rng.normal(size=(n, 5)).astype("float32")
    b = rng.normal(size=(n, 7)).astype("float32")
    a[:, 0] += 2.5 * y
    b[:, 0] -= 2.5 * y
    return TensorMultimodalDataset({"a": a, "b": b}, y)


@pytest.fixture
def synthetic():
    torch.manual_seed(0)
    ds = synthetic_problem()
    return torch.utils.data.Subset(ds, range(400)), torch.utils.data.Subset(ds, range(400, 600))
