"""Leaderboard helpers: seeds parsed, rows averaged over seeds, ranks claimed only beyond the spread."""

from __future__ import annotations

import pytest

from mmfuse.errors import ConfigError
from mmfuse.evaluation.leaderboard import over_seeds, parse_seeds, rank_rows


def test_parse_seeds():
    assert parse_seeds(None, 7) == [7]
    assert parse_seeds("0, 1,2", 7) == [0, 1, 2]
    for bad in ("a", ",", "1;2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad, 0)


def test_over_seeds_means_and_spreads_every_number():
    per_seed = [
        [{"method": "a", "kind": "fusion", "test_accuracy": 0.8, "params": 10, "seed": 0}],
        [{"method": "a", "kind": "fusion", "test_accuracy": 0.9, "params": 10, "seed": 1}],
    ]
    (row,) = over_seeds(per_seed)
    assert row["test_accuracy"] == pytest.approx(0.85) and row["test_accuracy_std"] == pytest.approx(0.05)
    assert row["seeds"] == 2 and "seed" not in row and row["kind"] == "fusion"


def test_rank_is_shared_within_the_spread_and_claimed_beyond_it():
    rows = [
        {"method": "b", "test_accuracy": 0.90, "test_accuracy_std": 0.02},
        {"method": "a", "test_accuracy": 0.91, "test_accuracy_std": 0.005},
        {"method": "c", "test_accuracy": 0.80, "test_accuracy_std": 0.01},
        {"method": "d", "error": "boom"},
    ]
    ranked = {r["method"]: r["rank"] for r in rank_rows(rows, "test_accuracy")}
    assert ranked == {"a": "=1", "b": "=1", "c": "3", "d": "-"}
    exact = rank_rows([{"method": "x", "test_mae": 1.0}, {"method": "y", "test_mae": 0.5}], "test_mae", False)
    assert [(r["method"], r["rank"]) for r in exact] == [("y", "1"), ("x", "2")]
