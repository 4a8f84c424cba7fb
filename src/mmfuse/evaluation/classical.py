"""Classical candidates: regularised linear models on the standardised columns, as torch modules.

For the rows of a contract dataset: multinomial L2 logistic regression (classification; ``C`` chosen by stratified
3-fold cross-validation on the rows it is fitted on, over 8 values in [1e-4, 1e3]) or ridge regression
(regression; ``alpha`` by efficient leave-one-out CV over 10 values in [1e-4, 1e4]), fitted on

* ``sklearn_concat``: every modality's inputs flattened and concatenated, plus one presence column per modality
  (an absent modality's inputs are zero), standardised with the fitting rows' statistics and, at prediction,
  held within each column's training range (:class:`~mmfuse.models.ensemble.LinearModel`);
* ``sklearn_<modality>``: that modality alone.

These are the bar a user would reach for first (a one-line scikit-learn model). :func:`fit_linear` returns the
fitted model as a :class:`~mmfuse.models.ensemble.LinearModel`, so the selection in
:mod:`mmfuse.evaluation.selection` scores, ensembles, refits and saves it exactly like a fusion model.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.models.ensemble import LinearModel
from mmfuse.tasks import task_kind

GRID = np.logspace(-4, 4, 10)  # ridge alphas
C_GRID = np.logspace(-4, 3, 8)  # logistic-regression inverse strengths (larger C rarely wins and converges slowly)
MAX_FEATURES = 200_000  # a flattened modality wider than this (e.g. raw pixels of large images) is left out


def features(dataset: Dataset, modalities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(X (N, sum_m D_m + M), y)``: flattened inputs of ``modalities`` (zero where absent) and their presence
    columns, in dataset order (:meth:`LinearModel.features`, the one definition)."""
    xs, ys = [], []
    for batch in DataLoader(dataset, batch_size=512, shuffle=False):
        xs.append(LinearModel.features(batch["inputs"], batch["masks"], modalities).numpy())
        ys.append(batch["target"].numpy())
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def _current_api() -> dict[str, Any]:
    """Plain L2 logistic regression spelled for recent scikit-learn (which warns without these); nothing for older."""
    from sklearn.linear_model import LogisticRegressionCV

    new = "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters
    return {"l1_ratios": (0.0,), "use_legacy_attributes": False} if new else {}


def fit_linear(x: np.ndarray, y: np.ndarray, modalities: list[str], task: str, num_outputs: int) -> LinearModel:
    """Fit the module docstring's model on ``x`` (from :func:`features`) and ``y``; returns it as a LinearModel.

    Raises:
        ValueError: ``x`` is wider than ``MAX_FEATURES`` columns, or the task is multi-label (not offered).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
    from sklearn.preprocessing import StandardScaler

    kind = task_kind(task)
    if kind.target == "multi_hot":
        raise ValueError("linear candidates are not offered for multi-label targets")
    if x.shape[1] > MAX_FEATURES:
        raise ValueError(f"{x.shape[1]:,} flattened input columns, over {MAX_FEATURES:,}")
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    out = LinearModel(modalities, x.shape[1], num_outputs)
    if kind.single_label:
        y = y.astype(int)
        counts = np.bincount(y)
        counts = counts[counts > 0]
        w = np.zeros((num_outputs, x.shape[1]))
        b = np.full(num_outputs, -30.0)  # a class never seen in training gets ~0 probability
        if len(counts) < 2:  # one class only: predict it
            b[int(y[0])] = 0.0
        else:
            if counts.min() >= 2:
                cv = int(min(3, counts.min()))
                model = LogisticRegressionCV(
                    Cs=C_GRID, cv=cv, max_iter=300, tol=1e-3, scoring="accuracy", **_current_api()
                )
            else:  # a class with one row: no stratified split exists, so the default strength
                model = LogisticRegression(max_iter=2000)
            with warnings.catch_warnings():  # the iteration cap is deliberate: C is chosen, not polished
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(z, y)
            classes = model.classes_.astype(int)
            if len(classes) == 2 and model.coef_.shape[0] == 1:  # binary: logits (0, d) give predict_proba
                w[classes[1]], b[classes[1]] = model.coef_[0], model.intercept_[0]
                b[classes[0]] = 0.0
            else:
                w[classes], b[classes] = model.coef_, model.intercept_
    else:
        model = RidgeCV(alphas=GRID).fit(z, y.reshape(len(y), -1))
        w, b = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
    with torch.no_grad():
        out.mean.copy_(torch.as_tensor(scaler.mean_, dtype=torch.float32))
        out.scale.copy_(torch.as_tensor(np.where(scaler.scale_ > 0, scaler.scale_, 1.0), dtype=torch.float32))
        out.lo.copy_(torch.as_tensor(z.min(0), dtype=torch.float32))  # the training range of each standardised column
        out.hi.copy_(torch.as_tensor(z.max(0), dtype=torch.float32))
        out.linear.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        out.linear.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    return out.eval()


def linear_groups(modalities: list[str]) -> dict[str, list[str]]:
    """The classical candidates of a table: ``sklearn_concat`` and, with several modalities, one per modality."""
    mods = sorted(modalities)
    return {"sklearn_concat": mods, **({f"sklearn_{m}": [m] for m in mods} if len(mods) > 1 else {})}
