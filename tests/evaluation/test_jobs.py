"""Parallel worker processes: results in order, equal to one process, failures and bad options reported."""

from __future__ import annotations

import pytest

from mmfuse.errors import ConfigError
from mmfuse.evaluation.jobs import check_jobs, run_jobs, threads_per_job


def _square_plus(state, item):  # module level: workers import it by name
    import torch

    return {"value": item * item + state["offset"], "threads": torch.get_num_threads()}


def test_two_workers_give_the_results_of_one_process_in_order():
    done = []
    one = run_jobs(_square_plus, [3, 1, 2], 1, {"offset": 10})
    two = run_jobs(_square_plus, [3, 1, 2], 2, {"offset": 10}, done=lambda i, r: done.append(i))
    assert [r["value"] for r in two] == [r["value"] for r in one] == [19, 11, 14]
    assert sorted(done) == [0, 1, 2]
    assert all(r["threads"] == threads_per_job(2) for r in two)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_bad_jobs_value_is_refused_naming_the_option(bad):
    with pytest.raises(ConfigError, match="--jobs"):
        check_jobs(bad)
