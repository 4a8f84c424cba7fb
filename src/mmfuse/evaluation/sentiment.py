"""The six CMU-MOSI / MOSEI sentiment metrics, computed from a regression output in [-3, 3].

As the field reports them (Zadeh et al. 2018; Tsai et al., MulT, ACL 2019; Hazarika et al., MISA,
ACM MM 2020; the MMSA toolkit of Yu et al.):

* **Acc-2 / F1 "has0"** - negative (``y < 0``) vs non-negative (``y >= 0``) over ALL segments:
  ``acc = mean[(yhat >= 0) == (y >= 0)]``; F1 is sklearn's *weighted* F1 of the same labels.
* **Acc-2 / F1 "non0"** - negative vs positive over the segments whose true score is not 0:
  ``acc = mean[(yhat > 0) == (y > 0)]`` on ``{i : y_i != 0}``; weighted F1 likewise.
* **Acc-7** - ``mean[round(clip(yhat, -3, 3)) == round(clip(y, -3, 3))]`` (numpy's ``round``,
  half to even, as in the reference code).
* **MAE** - ``mean |yhat - y|``; **Corr** - Pearson's ``r(yhat, y)``.

Papers write Acc-2 as "has0/non0" (e.g. MISA: 81.8/83.4 on MOSI); older papers report has0 only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmfuse.errors import DataError

SENTIMENT_METRICS = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr")


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def sentiment_metrics(pred: Sequence[float] | np.ndarray, target: Sequence[float] | np.ndarray) -> dict[str, float]:
    """All MOSI metrics of regression outputs ``pred`` against sentiment scores ``target``.

    Inputs:
        pred: ``(N,)`` or ``(N, 1)`` predicted scores.
        target: ``(N,)`` or ``(N, 1)`` true scores in ``[-3, 3]``.

    Returns:
        ``{"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"}`` (accuracies and F1 in
        ``[0, 1]``; multiply by 100 to compare with papers).
    """
    yhat = np.asarray(pred, dtype=float).reshape(-1)
    y = np.asarray(target, dtype=float).reshape(-1)
    if yhat.shape != y.shape or y.size == 0:
        raise DataError(
            f"Sentiment metrics need one prediction per target; got {yhat.size} predictions and {y.size} targets."
        )
    out: dict[str, float] = {}
    has_t, has_p = y >= 0, yhat >= 0
    out["acc2_has0"] = float(np.mean(has_t == has_p))
    out["f1_has0"] = _weighted_f1(has_t, has_p)
    nz = y != 0
    if nz.any():
        pos_t, pos_p = y[nz] > 0, yhat[nz] > 0
        out["acc2_non0"] = float(np.mean(pos_t == pos_p))
        out["f1_non0"] = _weighted_f1(pos_t, pos_p)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    out["acc7"] = float(np.mean(np.round(np.clip(yhat, -3, 3)) == np.round(np.clip(y, -3, 3))))
    out["mae"] = float(np.mean(np.abs(yhat - y)))
    out["corr"] = float(np.corrcoef(yhat, y)[0, 1]) if yhat.std() > 0 and y.std() > 0 else 0.0
    return out


def format_sentiment_row(name: str, m: dict[str, float]) -> str:
    """One line ``name  Acc-2 has0/non0  F1 has0/non0  Acc-7  MAE  Corr`` in the papers' units (percent)."""

    def pct(k: str) -> str:
        v = m.get(k)
        return "  -  " if v is None or v != v else f"{100 * v:5.1f}"

    def num(k: str) -> str:
        v = m.get(k)
        return "  -  " if v is None or v != v else f"{v:.3f}"

    acc2, f1 = f"{pct('acc2_has0')}/{pct('acc2_non0')}", f"{pct('f1_has0')}/{pct('f1_non0')}"
    return f"{name:<28} {acc2}  {f1}  {pct('acc7')}  {num('mae')}  {num('corr')}"
