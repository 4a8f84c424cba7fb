from __future__ import annotations

import numpy as np
import pytest

from mmfuse.errors import DataError
from mmfuse.evaluation.sentiment import format_sentiment_row, sentiment_metrics


def test_golden_values_by_hand():
    y = np.array([-2.6, -1.0, 0.0, 0.0, 0.4, 1.8, 3.0, -0.2])
    p = np.array([-1.4, 0.2, 0.1, -0.3, 0.9, 2.4, 3.9, -0.6])
    m = sentiment_metrics(p, y)
    # has0: y>=0 -> [F,F,T,T,T,T,T,F]; p>=0 -> [F,T,T,F,T,T,T,F]: 6/8 agree
    assert m["acc2_has0"] == pytest.approx(6 / 8)
    # non0 drops the two zero scores: y>0 [F,F,T,T,T,F], p>0 [F,T,T,T,T,F]: 5/6 agree
    assert m["acc2_non0"] == pytest.approx(5 / 6)
    # acc7: round(clip(p)) = [-1,0,0,-0,1,2,3,-1]; round(clip(y)) = [-3,-1,0,0,0,2,3,-0]: matches at 2,3,5,6 -> 4/8
    assert m["acc7"] == pytest.approx(4 / 8)
    assert m["mae"] == pytest.approx(np.abs(p - y).mean())
    assert m["corr"] == pytest.approx(np.corrcoef(p, y)[0, 1])


def test_f1_is_sklearn_weighted_f1_of_both_binarisations():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 200) * 2) / 2  # includes exact zeros
    p = y + rng.normal(0, 1.0, 200)
    m = sentiment_metrics(p, y)
    assert m["f1_has0"] == pytest.approx(f1_score(y >= 0, p >= 0, average="weighted"))
    nz = y != 0
    assert nz.sum() < 200
    assert m["f1_non0"] == pytest.approx(f1_score(y[nz] > 0, p[nz] > 0, average="weighted"))


def test_perfect_prediction_and_shapes():
    y = np.linspace(-3, 3, 13)[:, None]
    m = sentiment_metrics(y, y)
    assert m["acc2_has0"] == m["acc2_non0"] == m["acc7"] == 1.0 and m["mae"] == 0.0 and m["corr"] == pytest.approx(1.0)
    assert "100.0/100.0" in format_sentiment_row("oracle", m)
    with pytest.raises(DataError, match="one prediction per target"):
        sentiment_metrics([0.1, 0.2], [0.1])


def test_acc7_clips_out_of_range_predictions():
    m = sentiment_metrics([5.0, -7.0], [3.0, -3.0])
    assert m["acc7"] == 1.0 and m["mae"] == pytest.approx(3.0)
