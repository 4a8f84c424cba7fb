"""Calibration, uncertainty and selective prediction of a classifier's probabilities (numpy only).

It sits in the training layer because temperature scaling is fitted right after training (every saved
classifier carries its validation temperature); evaluation and prediction read it from here.

* Expected calibration error (Naeini et al., AAAI 2015; Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017): confidences ``c_i = max_k p_ik`` fall into ``B = 15`` equal-width bins;
  ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|``.
* Negative log-likelihood ``-1/N sum_i log p_{i, y_i}`` and the Brier score ``1/N sum_i sum_k (p_ik - 1[k = y_i])^2``
  (Brier, Monthly Weather Review 1950).
* Temperature scaling (Guo et al. 2017): ``p = softmax(z / T)`` with the one scalar ``T > 0`` that minimises the
  NLL on validation data; it changes confidence, never the predicted class.
* Uncertainty of a row: the normalised predictive entropy ``H(p) / log K`` in [0, 1] (or an evidential
  fusion's ``u = K / S``, :mod:`mmfuse.fusion.evidential`).
* Selective prediction (El-Yaniv & Wiener, JMLR 2010; Geifman & El-Yaniv, NeurIPS 2017): keep the fraction
  ``c`` (coverage) of rows with the lowest uncertainty and report their accuracy; and the AUROC of the
  uncertainty for telling wrong from correct predictions (or corrupted from clean inputs, Hendrycks &
  Gimpel, ICLR 2017).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmfuse.tasks import CLASSIFICATION

BINS = 15
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.5)


def reliability_bins(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count ``(bins,)`` each (empty bins: NaN, 0)."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(float)
    which = np.minimum((conf * bins).astype(int), bins - 1)  # (0, 1/B], ... with conf = 1 in the last bin
    counts = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / counts
        acc = np.bincount(which, correct, minlength=bins) / counts
    return mean_conf, acc, counts


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """``sum_b |B_b|/N |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width confidence bins."""
    conf, acc, counts = reliability_bins(probs, y, bins)
    keep = counts > 0
    return float((counts[keep] / counts.sum() * np.abs(acc[keep] - conf[keep])).sum()) if keep.any() else 0.0


def negative_log_likelihood(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()) if len(y) else 0.0


def brier_score(probs: np.ndarray, y: np.ndarray) -> float:
    onehot = np.eye(probs.shape[1])[y]
    return float(((probs - onehot) ** 2).sum(1).mean()) if len(y) else 0.0


def calibration_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``{"ece": ..., "nll": ..., "brier": ...}`` of probabilities ``(N, K)`` and labels ``(N,)``."""
    y = np.asarray(y).astype(int).reshape(-1)
    return {
        "ece": expected_calibration_error(probs, y),
        "nll": negative_log_likelihood(probs, y),
        "brier": brier_score(probs, y),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(z / T)`` per row: the classification kind's activation (:mod:`mmfuse.tasks`)."""
    return CLASSIFICATION.activate(logits, temperature)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The ``T > 0`` minimising ``NLL(softmax(logits / T), y)`` (bounded 1-D search on ``log T`` in [-3, 3]).

    The NLL is convex in ``1/T``, so the bounded scalar minimiser finds the optimum; logits may be
    log-probabilities (a log-softmax differs from the logits by a per-row constant, which ``/T`` keeps).
    When every validation row is already classified correctly the NLL falls without bound as ``T -> 0``:
    such a set gives no evidence for sharpening, so ``T`` is then not taken below 1.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(y).astype(int).reshape(-1)
    if len(y) == 0:
        return 1.0
    logits = np.asarray(logits, np.float64)

    def nll(log_t: float) -> float:
        return negative_log_likelihood(softmax(logits, float(np.exp(log_t))), y)

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-4})
    t = float(np.exp(res.x))
    return max(t, 1.0) if (logits.argmax(1) == y).all() else t


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """``-sum_k p_k log p_k / log K`` per row, in [0, 1]."""
    k = probs.shape[1]
    h = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)
    return h / np.log(k) if k > 1 else np.zeros(len(probs))


def selective_accuracy(
    uncertainty: np.ndarray, correct: np.ndarray, coverages: Sequence[float] = COVERAGES
) -> dict[str, float]:
    """Accuracy on the ``c`` most certain rows, for each coverage ``c`` (ties broken by row order)."""
    order = np.argsort(uncertainty, kind="stable")
    out = {}
    for c in coverages:
        n = max(1, int(round(c * len(order))))
        out[f"{c:g}"] = float(np.asarray(correct)[order[:n]].mean()) if len(order) else 0.0
    return out


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for telling ``positive`` rows from the others (0.5: no better than
    chance)."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive).astype(bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def trust_report(probs: np.ndarray, y: np.ndarray, uncertainty: np.ndarray) -> dict[str, object]:
    """Calibration metrics, accuracy by coverage and the AUROC of ``uncertainty`` for wrong-vs-correct rows."""
    y = np.asarray(y).astype(int).reshape(-1)
    correct = probs.argmax(1) == y
    return {
        **calibration_metrics(probs, y),
        "accuracy_at_coverage": selective_accuracy(uncertainty, correct),
        "auroc_wrong_vs_correct": auroc(uncertainty, ~correct),
    }
