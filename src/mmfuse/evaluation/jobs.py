"""Independent trainings in parallel worker processes (``--jobs N`` of ``mmfuse benchmark`` and ``compare``).

Small models on a CPU do not use many threads well: a batch of a 60k-parameter CNN is a few milliseconds of
work, and splitting each operation across threads costs about as much as it saves. Running ``N`` independent
methods at once, each in its own process with ``cores // N`` threads, keeps every core busy with whole models
instead. Workers start with ``spawn`` (no fork of a process that already runs OpenMP threads), receive the shared
read-only state (the data) once, and run ``fn(state, item)`` for the items they are handed; results come back in
the items' order. ``jobs=1`` runs in this process, with nothing pickled.

Results are reproducible per item (every training seeds itself) but can differ from a one-process run in the last
bits, because a different thread count changes the order of floating-point sums.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mmfuse.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

_STATE: Any = None  # the worker's copy of the shared state


def check_jobs(jobs: int, option: str = "--jobs") -> int:
    """``jobs`` as a positive integer, or a one-line :class:`ConfigError` naming ``option``."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"Option {option} is {jobs!r}; give a whole number of worker processes, 1 or more.")
    return jobs


def threads_per_job(jobs: int) -> int:
    """Torch threads of each of ``jobs`` workers: the CPU cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _init(threads: int, state: Any) -> None:
    global _STATE
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set by an earlier parallel region of this process
        pass
    _STATE = state


def _call(fn: Callable[[Any, T], R], item: T) -> R:
    return fn(_STATE, item)


def run_jobs(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    jobs: int,
    state: Any,
    done: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(state, item) for item in items]``, over ``jobs`` worker processes when ``jobs > 1``.

    Args:
        fn: a module-level function (workers import it by name).
        items: one per independent run; ``fn`` should catch its own failures and return them as results.
        jobs: worker processes (capped at ``len(items)``).
        state: shared read-only data, sent to each worker once.
        done: called as ``done(index, result)`` when each item finishes (in completion order), e.g. to log.
    """
    check_jobs(jobs)
    jobs = min(jobs, max(1, len(items)))
    if jobs == 1:
        results = []
        for i, item in enumerate(items):
            results.append(fn(state, item))
            if done is not None:
                done(i, results[-1])
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    out: dict[int, R] = {}
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(threads_per_job(jobs), state)) as pool:
        futures = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
        for future in as_completed(futures):
            i = futures[future]
            out[i] = future.result()
            if done is not None:
                done(i, out[i])
    return [out[i] for i in range(len(items))]
