from __future__ import annotations

import numpy as np
import pytest

from mmfuse.errors import DataError
from mmfuse.evaluation.generative import frechet_distance


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # 1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    x = rng.standard_normal((1000, 1))
    y = 3.0 * x + 1.0
    want = (y.mean() - x.mean()) ** 2 + (y.std(ddof=1) - x.std(ddof=1)) ** 2
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-6)


def test_frechet_distance_refuses_mismatched_sets():
    with pytest.raises(DataError, match="same D"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
