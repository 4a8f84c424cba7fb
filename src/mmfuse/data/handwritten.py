"""Handwritten 6-view: UCI Multiple Features (Duin, "mfeat"), 2,000 digits described by six feature views.

The file is ``handwritten/handwritten_6views.mat`` of the TMC repository (Han et al., "Trusted
Multi-View Classification", ICLR 2021) at commit :data:`TMC_COMMIT`: ``x1_train .. x6_train
(1600, d)``, ``x1_test .. x6_test (400, d)``, ``gt_train (1600, 1)``, ``gt_test (400, 1)`` with labels 1..10
for the digits 0..9 (160 / 40 per class). The views, in the order x1..x6:

========  ===  ==================================================
view       d   UCI file and content
========  ===  ==================================================
pixel     240  mfeat-pix: pixel averages in 2x3 windows
fourier    76  mfeat-fou: Fourier coefficients of the contours
profile   216  mfeat-fac: profile correlations
zernike    47  mfeat-zer: Zernike moments
kl         64  mfeat-kar: Karhunen-Loeve coefficients
morph       6  mfeat-mor: morphological features
========  ===  ==================================================

The fixed 1,600 / 400 split is kept; a validation set of ``val_fraction`` is carved from the 1,600,
stratified by class with a seeded permutation. Each view is standardised with the mean and standard
deviation of the (carved) training part: ``x' = (x - mean_train) / std_train`` (std 0 -> 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmfuse.data.base import DatasetSpec, Splits, TensorMultimodalDataset
from mmfuse.data.download import check_digest, data_root, ensure_file
from mmfuse.errors import ConfigError

FOLDER = "handwritten"
FILE = "handwritten_6views.mat"
TMC_COMMIT = "08d0ca4c4461b6de1cf73514d8c621598bc2b504"
URL = f"https://raw.githubusercontent.com/hanmenghan/TMC/{TMC_COMMIT}/TMC%20ICLR/datasets/{FILE}"
SHA256 = "d731ec02aaa97cf9a5826df68b0dd1e73ba61a82ba3c8f64606ba402926c885b"
VIEWS = {"pixel": 240, "fourier": 76, "profile": 216, "zernike": 47, "kl": 64, "morph": 6}  # x1..x6


def read_handwritten(data_dir: str | Path | None = None, download: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """The raw fixed split: ``{"train" | "test": {view: float64 (N, d), "label": int64 (N,) in 0..9}}``."""
    from scipy.io import loadmat

    root = data_root(data_dir)
    path = ensure_file(root, FOLDER, FILE, URL, SHA256, "sha256", download)
    check_digest(path, SHA256, "sha256", root, FOLDER)
    mat = loadmat(path)
    out: dict[str, dict[str, np.ndarray]] = {}
    for split in ("train", "test"):  # shapes and labels are guaranteed by the checksum
        part: dict[str, np.ndarray] = {
            view: np.asarray(mat[f"x{j}_{split}"], np.float64) for j, view in enumerate(VIEWS, start=1)
        }
        part["label"] = np.asarray(mat[f"gt_{split}"]).reshape(-1).astype(np.int64) - 1  # 1..10 -> digits 0..9
        out[split] = part
    return out


def stratified_carve(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing ``round(fraction * n_c)`` random items of every class ``c``."""
    chosen = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        chosen[members[: int(round(fraction * len(members)))]] = True
    return chosen


def load_handwritten(
    data_dir: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0, download: bool = True
) -> Splits:
    """Handwritten 6-view train / validation / test splits (1,440 / 160 / 400 with the defaults).

    Args:
        data_dir: folder holding ``handwritten/handwritten_6views.mat`` (default: ``$MMFUSE_DATA_DIR``, else
            ``~/.cache/mmfuse/data``); absent files are downloaded.
        val_fraction: share of each class of the 1,600 training digits carved out for validation.
        seed: drives the validation carve.
        download: fetch the file when absent; when False it raises :class:`DataError`.

    Returns:
        :class:`Splits` of :class:`TensorMultimodalDataset`; inputs ``{view: float32 (d,)}`` standardised
        with training statistics, long ``target`` in 0..9.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"Option val_fraction={val_fraction} must lie in (0, 1).")
    raw = read_handwritten(data_dir, download)
    is_val = stratified_carve(raw["train"]["label"], val_fraction, np.random.default_rng(seed))
    parts = {
        "train": {k: v[~is_val] for k, v in raw["train"].items()},
        "val": {k: v[is_val] for k, v in raw["train"].items()},
        "test": raw["test"],
    }
    stats = {v: (parts["train"][v].mean(0), parts["train"][v].std(0)) for v in VIEWS}
    datasets = {}
    for split, part in parts.items():
        inputs = {
            v: ((part[v] - stats[v][0]) / np.where(stats[v][1] > 0, stats[v][1], 1.0)).astype(np.float32) for v in VIEWS
        }
        datasets[split] = TensorMultimodalDataset(inputs, part["label"])
    spec = DatasetSpec(
        name="handwritten",
        task="classification",
        num_outputs=10,
        encoders={v: {"name": "mlp", "in_dim": d, "input_norm": False} for v, d in VIEWS.items()},
        class_names=[str(d) for d in range(10)],
        metric="accuracy",
    )
    return Splits(datasets["train"], datasets["val"], datasets["test"], spec=spec)
