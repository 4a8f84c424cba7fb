"""Classical baselines: logistic / ridge regression with CV-chosen regularisation, as leaderboard rows."""

from __future__ import annotations

import numpy as np
import torch

from mmfuse.data.base import DatasetSpec, Splits, TensorMultimodalDataset
from mmfuse.evaluation.classical import classical_rows


def splits(task: str) -> Splits:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)).astype("float32"), rng.normal(size=(300, 3)).astype("float32")
    y = (a[:, 0] > 0).astype(int) if task == "classification" else (2 * a[:, 0] + b[:, 1]).astype("float32")[:, None]
    ds = TensorMultimodalDataset({"a": a, "b": b}, y, {"b": rng.random(300) > 0.2})
    sub = lambda i, j: torch.utils.data.Subset(ds, range(i, j))  # noqa: E731
    enc = {"a": {"name": "mlp", "in_dim": 4, "out_dim": 8}, "b": {"name": "mlp", "in_dim": 3, "out_dim": 8}}
    return Splits(
        sub(0, 200), sub(200, 250), sub(250, 300), DatasetSpec("t", task, 2 if task == "classification" else 1, enc)
    )


def test_rows_for_classification_and_regression():
    rows = {r["method"]: r for r in classical_rows(splits("classification"), "classification")}
    assert set(rows) == {"sklearn_concat", "sklearn_a", "sklearn_b"} and all("error" not in r for r in rows.values())
    assert rows["sklearn_a"]["test_accuracy"] > 0.9 and rows["sklearn_b"]["test_accuracy"] < 0.8  # the label is in a
    reg = {r["method"]: r for r in classical_rows(splits("regression"), "regression")}
    assert reg["sklearn_concat"]["test_mae"] < reg["sklearn_a"]["test_mae"] < reg["sklearn_b"]["test_mae"]
    assert all(r["kind"] == "classical" and r["params"] > 0 for r in reg.values())
