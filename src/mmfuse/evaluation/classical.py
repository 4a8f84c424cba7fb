"""Classical baselines beside every leaderboard: regularised linear models on the standardised columns.

For a table's encoded splits: logistic regression (classification; multinomial, L2, ``C`` chosen by 5-fold
stratified cross-validation on the training rows over 10 values in [1e-4, 1e4]) or ridge regression
(regression; ``alpha`` by efficient leave-one-out CV over the same grid), fitted on

* ``sklearn_concat``: every modality's inputs flattened and concatenated, plus one presence column per modality
  (an absent modality's inputs are already zero), standardised with training statistics;
* ``sklearn_<modality>``: that modality alone.

These are the bar a user would reach for first (a one-line scikit-learn model); ``compare`` shows them in the
same table as the fusion methods, chosen and scored the same way (validation score for the choice, test reported).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from mmfuse.tasks import task_kind

GRID = np.logspace(-4, 4, 10)
MAX_FEATURES = 200_000  # a flattened modality wider than this (e.g. raw pixels of large images) is left out


def features(dataset: Dataset, modalities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(X (N, sum_m D_m + M), y)``: flattened inputs of ``modalities`` and their presence columns, in dataset
    order."""
    xs, ys = [], []
    for batch in DataLoader(dataset, batch_size=512, shuffle=False):
        n = len(batch["target"])
        parts = [batch["inputs"][m].reshape(n, -1).float().numpy() for m in modalities]
        parts += [batch["masks"][m].reshape(n, 1).float().numpy() for m in modalities]
        xs.append(np.concatenate(parts, 1))
        ys.append(batch["target"].numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _current_api() -> dict[str, Any]:
    """Plain L2 logistic regression spelled for recent scikit-learn (which warns without these); nothing for older."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    new = "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters
    return {"l1_ratios": (0.0,), "use_legacy_attributes": False} if new else {}


def classical_rows(splits: Any, task: str) -> list[dict[str, Any]]:
    """Leaderboard rows of the classical baselines (module docstring) on ``splits`` (train / val / test)."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mmfuse.evaluation.predict import Predictions, task_metrics

    kind = task_kind(task)
    if kind.target == "multi_hot":
        return []  # one-vs-rest per label is not offered here
    modalities = sorted(splits.spec.encoders)
    groups = {
        "sklearn_concat": modalities,
        **({f"sklearn_{m}": [m] for m in modalities} if len(modalities) > 1 else {}),
    }
    rows = []
    for name, mods in groups.items():
        row: dict[str, Any] = {"method": name, "kind": "classical", "fusion": "-", "modalities": "+".join(mods)}
        try:
            t0 = time.perf_counter()
            (xtr, ytr), (xva, yva), (xte, yte) = (features(getattr(splits, s), mods) for s in ("train", "val", "test"))
            if xtr.shape[1] > MAX_FEATURES:
                raise ValueError(f"{xtr.shape[1]:,} flattened input columns, over {MAX_FEATURES:,}")
            if kind.single_label:
                model = LogisticRegressionCV(Cs=GRID, cv=5, max_iter=2000, scoring="accuracy", **_current_api())
                est = make_pipeline(StandardScaler(), model).fit(xtr, ytr.astype(int))
                n_cls = splits.spec.num_outputs

                def scores(x: np.ndarray, est: Any = est, n_cls: int = n_cls) -> np.ndarray:
                    p = np.full((len(x), n_cls), 1e-12)
                    p[:, est.classes_.astype(int)] = est.predict_proba(x)
                    return np.log(p)

                row["params"] = int(model.coef_.size + model.intercept_.size)
            else:
                model = RidgeCV(alphas=GRID)
                est = make_pipeline(StandardScaler(), model).fit(xtr, ytr.reshape(len(ytr), -1))

                def scores(x: np.ndarray, est: Any = est) -> np.ndarray:
                    return np.asarray(est.predict(x)).reshape(len(x), -1)

                row["params"] = int(np.size(model.coef_) + np.size(model.intercept_))
            row["train_time_s"] = time.perf_counter() - t0
            row["best_val"] = task_metrics(Predictions(scores(xva), yva, {}, 0.0), task)[kind.main_metric]
            if len(yte):
                row.update(
                    {f"test_{k}": v for k, v in task_metrics(Predictions(scores(xte), yte, {}, 0.0), task).items()}
                )
        except Exception as exc:  # noqa: BLE001 - recorded in the leaderboard like a failed method
            row["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        rows.append(row)
    return rows
