"""Calibration metrics pinned by hand; temperature scaling recovers a known temperature; selective prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mmfuse.training import calibration as C

PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
Y = np.array([0, 1, 0])


def test_ece_nll_brier_by_hand():
    # confidences 0.9, 0.6, 0.8 fall in three different bins with accuracies 1, 0, 1: ECE = (0.1 + 0.6 + 0.2) / 3
    assert C.expected_calibration_error(PROBS, Y) == pytest.approx(0.3)
    assert C.brier_score(PROBS, Y) == pytest.approx((0.02 + 0.72 + 0.08) / 3)
    assert C.negative_log_likelihood(PROBS, Y) == pytest.approx(-(np.log(0.9) + np.log(0.4) + np.log(0.8)) / 3)
    perfect = np.eye(2)[[0, 1, 0]]
    assert C.calibration_metrics(perfect, Y)["ece"] == pytest.approx(0.0)


def test_temperature_scaling_recovers_the_temperature_and_keeps_the_classes():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(20000, 5))
    y = np.array([rng.choice(5, p=p) for p in C.softmax(logits, 2.0)])  # labels drawn at temperature 2
    t = C.fit_temperature(logits, y)
    assert t == pytest.approx(2.0, rel=0.05)
    before = C.expected_calibration_error(C.softmax(logits), y)
    after = C.expected_calibration_error(C.softmax(logits, t), y)
    assert after < 0.02 < before
    assert (C.softmax(logits, t).argmax(1) == logits.argmax(1)).all()
    assert C.fit_temperature(np.log(C.softmax(logits)), y) == pytest.approx(t, rel=1e-3)  # log-probabilities work too


def test_a_perfectly_classified_validation_set_does_not_sharpen():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert C.fit_temperature(logits, np.array([0, 1, 0])) >= 1.0  # the NLL would fall forever as T -> 0
    assert C.fit_temperature(logits, np.array([0, 0, 0])) < 10.0  # with a mistake, a finite optimum


def test_selective_accuracy_and_auroc():
    unc = np.array([0.1, 0.9, 0.2, 0.8])
    correct = np.array([True, False, True, True])
    acc = C.selective_accuracy(unc, correct, (1.0, 0.5, 0.75))
    assert acc == {"1": 0.75, "0.5": 1.0, "0.75": 1.0}
    assert C.auroc(unc, ~correct) == pytest.approx(1.0)  # the wrong row is the most uncertain
    assert np.isnan(C.auroc(unc, np.ones(4, bool)))
    h = C.normalised_entropy(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert h == pytest.approx([1.0, 0.0], abs=1e-9)
