"""Handwritten 6-view: a multi-view CCA embedding's accuracy with a linear classifier.

Protocol: the fixed 1,600 / 400 train / test split of the .mat release
(:func:`mmfuse.data.handwritten.read_handwritten`; nothing is tuned, so no validation part is carved
out and all 1,600 training digits fit both the embedding and the classifier). Every view is
standardised with the training mean and standard deviation. The classifier is always the same:
scikit-learn's ``LogisticRegression`` (multinomial soft-max, L-BFGS, ``C = 1``) on standardised
features, fitted on the training embeddings and scored on the 400 test digits.

Embeddings (``k`` in :data:`COMPONENTS`, ridge ``c`` = :data:`RIDGE` in the covariance units of the
standardised views, i.e. ``reg = (N - 1) c`` for :class:`~mmfuse.representation.cca.GCCA`):

* ``gcca{k}`` - MAXVAR generalised CCA of the six views (Kettenring, Biometrika 1971). A sample is
  embedded as the **mean of its per-view projections** ``z = (1/M) sum_m (x_m - mean_m) W_m``: for
  fixed ``W_m`` this is the least-squares estimate of the shared representation ``G`` under the
  MAXVAR objective ``sum_m ||G - X_m W_m||^2``, and it needs no training row of ``G`` at test time
  (mvlearn's ``GCCA.transform`` returns the per-view projections; averaging them is the usual
  shared-space estimate, and the classifier standardises, so mean and sum give the same result);
* ``gcca{k}_concat`` - the ``M`` per-view projections concatenated (``M k`` features), the other
  common use of the per-view outputs;
* ``cca{k}_<a>+<b>`` - two-view linear CCA of the two views with the best single-view 5-fold
  cross-validated accuracy on the training set (never the test set), embedded the same two ways.

Baselines: the classifier on each single view (``<view>_only``) and on all six views concatenated
(``concat_all``, 649 features). ``--quick`` runs the same protocol (it takes seconds either way).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.config import TrainConfig

DEFAULTS: dict[str, dict[str, Any]] = {"quick": {}, "full": {}}  # no network is trained: TrainConfig is unused
COMPONENTS = (9, 16, 32)  # embedding sizes; 9 = classes - 1, the rank of the between-class scatter
RIDGE = 1e-2  # covariance ridge c added to each standardised view's covariance


def linear_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> dict[str, float]:
    """Test accuracy and macro-F1 of standardised multinomial logistic regression fitted on ``train_x``."""
    from sklearn.metrics import f1_score

    pred = _classifier().fit(train_x, train_y).predict(test_x)
    return {
        "test_accuracy": float((pred == test_y).mean()),
        "test_macro_f1": float(f1_score(test_y, pred, average="macro")),
    }


def _classifier() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))


def standardised_views(
    data_dir: str | Path | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """``({"train" | "test": {view: (N, d)}}, y_train (1600,), y_test (400,))`` with training statistics."""
    from mmfuse.data.handwritten import VIEWS, read_handwritten

    raw = read_handwritten(data_dir)
    out: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    for v in VIEWS:
        mean, std = raw["train"][v].mean(0), raw["train"][v].std(0)
        std = np.where(std > 0, std, 1.0)
        for split in out:
            out[split][v] = (raw[split][v] - mean) / std
    return out, raw["train"]["label"], raw["test"]["label"]


def best_views(
    train: dict[str, np.ndarray], y: np.ndarray, seed: int, n: int = 2
) -> tuple[list[str], dict[str, float]]:
    """The ``n`` views with the best 5-fold cross-validated single-view accuracy on the training set."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    cv = {v: float(cross_val_score(_classifier(), x, y, cv=folds).mean()) for v, x in train.items()}
    return sorted(cv, key=lambda v: (-cv[v], v))[:n], cv


def benchmark(
    out_dir: str | Path | None = "results/handwritten_cca",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fit every embedding and baseline, print the table, write results.json/.csv and leaderboard.png.

    ``fusions`` and ``train_cfg`` are accepted for the ``mmfuse benchmark`` interface and unused;
    ``seed`` drives the cross-validation folds that pick the two views of pairwise CCA.
    """
    from mmfuse.evaluation.leaderboard import write_results
    from mmfuse.representation.cca import CCA, GCCA

    t_start = time.perf_counter()
    data, y_tr, y_te = standardised_views(data_dir)
    views = sorted(data["train"])
    rows: list[dict[str, Any]] = []
    spectra: dict[str, list[float]] = {}

    def add(method: str, kind: str, used: list[str], train_x: np.ndarray, test_x: np.ndarray, seconds: float) -> None:
        t0 = time.perf_counter()
        scores = linear_accuracy(train_x, y_tr, test_x, y_te)
        rows.append(
            {
                "method": method,
                "kind": kind,
                "views": "+".join(used),
                "dims": int(train_x.shape[1]),
                **scores,
                "fit_time_s": seconds + time.perf_counter() - t0,
            }
        )

    for v in views:
        add(f"{v}_only", "unimodal", [v], data["train"][v], data["test"][v], 0.0)
    add(
        "concat_all",
        "concat",
        views,
        np.hstack([data["train"][v] for v in views]),
        np.hstack([data["test"][v] for v in views]),
        0.0,
    )

    n = len(y_tr)
    for k in COMPONENTS:
        t0 = time.perf_counter()
        gcca = GCCA(n_components=k, reg=(n - 1) * RIDGE).fit([data["train"][v] for v in views])
        z_tr = gcca.transform([data["train"][v] for v in views])
        z_te = gcca.transform([data["test"][v] for v in views])
        seconds = time.perf_counter() - t0
        spectra[f"gcca{k}"] = [float(e) for e in gcca.eigenvalues_]
        add(f"gcca{k}", "gcca", views, np.mean(z_tr, axis=0), np.mean(z_te, axis=0), seconds)
        add(f"gcca{k}_concat", "gcca", views, np.hstack(z_tr), np.hstack(z_te), seconds)

    t0 = time.perf_counter()
    pair, cv = best_views(data["train"], y_tr, seed)
    cv_seconds = time.perf_counter() - t0
    a, b = pair
    for k in COMPONENTS:
        k_pair = min(k, data["train"][a].shape[1], data["train"][b].shape[1])
        t0 = time.perf_counter()
        cca = CCA(n_components=k_pair, reg=RIDGE).fit(data["train"][a], data["train"][b])
        za_tr, zb_tr = cca.transform(data["train"][a], data["train"][b])
        za_te, zb_te = cca.transform(data["test"][a], data["test"][b])
        seconds = time.perf_counter() - t0
        name = f"cca{k_pair}_{a}+{b}"
        spectra[name] = [float(r) for r in cca.canonical_correlations_]
        add(name, "cca", pair, (za_tr + zb_tr) / 2, (za_te + zb_te) / 2, seconds)
        add(f"{name}_concat", "cca", pair, np.hstack([za_tr, zb_tr]), np.hstack([za_te, zb_te]), seconds)

    print(format_rows(rows))
    if out_dir is not None:
        extra = {
            "protocol": __doc__.split("Protocol: ")[1].split("\n\n")[0],
            "split": {"train": int(n), "test": int(len(y_te))},
            "ridge": RIDGE,
            "components": list(COMPONENTS),
            "cca_views": pair,
            "cv_single_view_accuracy": cv,
            "view_selection_time_s": cv_seconds,
            "spectra": spectra,
            "seed": seed,
        }
        write_results(rows, Path(out_dir), "handwritten", total_s=time.perf_counter() - t_start, extra=extra)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Plain-text table, best test accuracy first."""
    cols = ["method", "kind", "views", "dims", "test_accuracy", "test_macro_f1", "fit_time_s"]
    cells = [
        [f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        for r in sorted(rows, key=lambda r: -r["test_accuracy"])
    ]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    return "\n".join([line, "-" * len(line)] + ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in cells])
