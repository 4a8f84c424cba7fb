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


SYNTHETIC_ENCODERS = {
    "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]},
    "b": {"name": "mlp", "in_dim": 7, "out_dim": 8, "hidden": [16]},
}


def fit_synthetic_model_dir(out: Path, n: int, n_train: int, n_val: int, seed: int, train_cfg):
    """Train a small model on :func:`synthetic_problem` and save it to ``out`` as the dataset "synthetic".

    Returns ``(out, splits)``: train / val / test are consecutive slices of the problem, so a test can make
    the data registry answer "synthetic" with these splits (:func:`serve_synthetic_splits`).
    """
    from mmfuse.config import ModelConfig
    from mmfuse.data.base import DatasetSpec, Splits
    from mmfuse.training import fit

    ds = synthetic_problem(n=n, seed=seed)
    sub = lambda a, b: torch.utils.data.Subset(ds, range(a, b))  # noqa: E731
    splits = Splits(
        sub(0, n_train),
        sub(n_train, n_train + n_val),
        sub(n_train + n_val, n),
        DatasetSpec("synthetic", "classification", 3, SYNTHETIC_ENCODERS),
    )
    fit(
        ModelConfig(encoders=SYNTHETIC_ENCODERS, num_outputs=3),
        train_cfg,
        splits.train,
        splits.val,
        out_dir=out,
        extra_meta={"dataset": "synthetic", "data_options": {"n": n}},
    )
    return out, splits


def serve_synthetic_splits(monkeypatch, splits) -> list:
    """Make the data registry answer "synthetic" with ``splits``; returns the list of (name, options) it was asked
    for."""
    import mmfuse.data.registry as reg

    calls = []

    def load_dataset(name, data_dir=None, **options):
        calls.append((name, options))
        assert name == "synthetic"
        return splits

    monkeypatch.setattr(reg, "load_dataset", load_dataset)
    return calls


@pytest.fixture
def synthetic():
    torch.manual_seed(0)
    ds = synthetic_problem()
    return torch.utils.data.Subset(ds, range(400)), torch.utils.data.Subset(ds, range(400, 600))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never write into the user's cache: ``$MMFUSE_CACHE_DIR`` points at a folder of this session."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MMFUSE_CACHE_DIR", str(tmp_path_factory.mktemp("mmfuse-cache")))
    yield
    patch.undo()
