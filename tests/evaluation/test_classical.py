"""Linear candidates: logistic / ridge regression with CV-chosen regularisation, as torch modules."""

from __future__ import annotations

import numpy as np
import torch

from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.evaluation.classical import features, fit_linear, linear_groups
from mmfuse.evaluation.predict import output_metrics
from mmfuse.tasks import task_kind


def data(task: str) -> tuple[TensorMultimodalDataset, np.ndarray]:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)).astype("float32"), rng.normal(size=(300, 3)).astype("float32")
    y = (a[:, 0] > 0).astype(int) if task == "classification" else (2 * a[:, 0] + b[:, 1]).astype("float32")[:, None]
    present = rng.random(300) > 0.2
    b[~present] = 0.0
    return TensorMultimodalDataset({"a": a, "b": b}, y, {"b": present}), y


def scores(task: str, mods: list[str]) -> float:
    ds, y = data(task)
    x, _ = features(ds, mods)
    model = fit_linear(x[:200], y[:200], mods, task, 2 if task == "classification" else 1)
    sub = torch.utils.data.Subset(ds, range(200, 300))
    batch = next(iter(torch.utils.data.DataLoader(sub, batch_size=100)))
    out = task_kind(task).activate(model(batch["inputs"], batch["masks"])["prediction"].detach().numpy())
    return output_metrics(out, y[200:], task)[task_kind(task).main_metric]


def test_linear_models_find_the_signal_in_the_right_modality():
    assert scores("classification", ["a"]) > 0.9 and scores("classification", ["b"]) < 0.8  # the label is in a
    assert scores("regression", ["a", "b"]) < scores("regression", ["a"]) < scores("regression", ["b"])  # MAE
    assert linear_groups(["b", "a"]) == {"sklearn_concat": ["a", "b"], "sklearn_a": ["a"], "sklearn_b": ["b"]}


def test_the_torch_module_gives_scikit_learns_probabilities():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ds, y = data("classification")
    x, _ = features(ds, ["a", "b"])
    model = fit_linear(x, y, ["a", "b"], "classification", 3)  # a third class never seen: ~0 probability
    p = torch.softmax(model(ds.inputs, ds.masks)["prediction"], 1).detach().numpy()
    assert p.shape == (300, 3) and p[:, 2].max() < 1e-9
    z = StandardScaler().fit_transform(x)
    ref = LogisticRegression(C=1.0 / 1.0, max_iter=2000).fit(z, y)  # same family: predictions mostly agree
    assert (p[:, :2].argmax(1) == ref.predict(z)).mean() > 0.95
