"""Task kinds: every kind's facts agree with the registries and metric functions that use them."""

from __future__ import annotations

import numpy as np
import pytest

from mmfuse.errors import ConfigError
from mmfuse.registry import OBJECTIVES
from mmfuse.tasks import TASK_KINDS, task_kind


@pytest.mark.parametrize("name", sorted(TASK_KINDS))
def test_every_kind_is_consistent(name):
    from mmfuse.evaluation.predict import METRICS, Predictions, task_metrics
    from mmfuse.training.metrics import monitor_for

    kind = task_kind(name)
    assert task_kind(kind) is kind and kind.name == name and name in METRICS
    OBJECTIVES.get(kind.default_objective)  # its default loss is registered
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 3))
    y = {
        "class_index": rng.integers(0, 3, 20),
        "multi_hot": rng.integers(0, 2, (20, 3)),
        "values": rng.normal(size=(20, 1)),
    }[kind.target]
    metrics = task_metrics(Predictions(z if kind.target != "values" else z[:, :1], y, {}, 0.0), name)
    assert list(metrics)[: len(kind.metrics)] == list(kind.metrics)  # the main metric first
    assert monitor_for(name) == (kind.main_metric, kind.mode)
    p = kind.activate(z)
    if kind.activation == "softmax":
        assert np.allclose(p.sum(1), 1.0) and (kind.activate(z, 2.0).argmax(1) == p.argmax(1)).all()
    elif kind.activation == "sigmoid":
        assert ((p > 0) & (p < 1)).all()
    else:
        assert np.array_equal(p, z)
    assert kind.improvement(1.0, 0.5) == (0.5 if kind.higher_is_better else -0.5)


def test_unknown_kinds_are_one_sentence():
    with pytest.raises(ConfigError, match="Unknown task 'clasification'.*Did you mean 'classification'"):
        task_kind("clasification")


def test_no_task_string_comparisons_outside_the_task_module():
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "mmfuse"
    pattern = re.compile(r"""[!=]= ["'](classification|regression|multilabel)["']""")
    hits = [
        f"{p.relative_to(src)}:{i}"
        for p in src.rglob("*.py")
        if p.name != "tasks.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
