"""Cost measurements taken the same way for every method: parameters, peak memory, latency, throughput.

Peak memory on CPU is the peak of the process's *live heap* (bytes handed out by the C allocator and not
yet freed: glibc ``mallinfo2().uordblks + hblkhd``, which is where PyTorch's CPU tensors live), sampled every
few milliseconds by a background thread while the measured block runs, minus the live heap just before it.
It is the extra memory the block needed (parameters, gradients, optimiser state, activations, batches),
and it does not depend on what ran before: the resident set size does, because the allocator keeps freed
pages of earlier blocks and reuses them, so a second model trained in the same process would look almost
free. Where ``mallinfo2`` is missing (non-glibc systems) the resident set size is used instead and
``PeakMemory.source`` says ``"rss"``. Sampling can miss a peak shorter than the interval.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.data.base import batch_to


def count_parameters(module: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _load_mallinfo2() -> Callable[[], Any] | None:
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None
    fn.restype, fn.argtypes = _MallInfo2, []
    return fn


_MALLINFO2 = _load_mallinfo2()


def _live_heap_bytes() -> int:
    """Bytes currently allocated through malloc (small chunks plus mmap-ed large ones); used only where
    ``mallinfo2`` exists."""
    assert _MALLINFO2 is not None
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # non-Linux: fall back to the (monotonic) peak RSS
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MiB: what a per-process memory budget is about (data,
    model, optimiser and the allocator's slack together). Linux's ``VmHWM``, not ``getrusage``: ``ru_maxrss``
    carries the parent's peak across fork + exec, so a worker process would report its parent's."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


class PeakMemory:
    """Context manager measuring the peak extra memory (bytes) of the enclosed block (see the module doc).

    ``source`` is ``"heap"`` (live malloc bytes, glibc) or ``"rss"`` (resident set size fallback).
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s, self.peak_bytes, self._stop = interval_s, 0, threading.Event()
        self.source = "heap" if _MALLINFO2 is not None else "rss"
        self._read = _live_heap_bytes if _MALLINFO2 is not None else _rss_bytes

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._read() - self.base)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self.base = self._read()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._read() - self.base, 0)


@dataclass
class Latency:
    """Inference cost over a dataset."""

    ms_per_sample: float  # forward time / samples, at ``batch_size``
    samples_per_s: float  # throughput at ``batch_size``
    ms_per_single: float  # median forward time of one sample (batch of 1)
    batch_size: int


@torch.no_grad()
def measure_latency(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    max_batches: int = 20,
    single_runs: int = 50,
    device: str = "cpu",
) -> Latency:
    """Time forward passes in eval mode: batched throughput (after one warm-up batch) and batch-of-1 latency."""
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    seconds, n = 0.0, 0
    for i, batch in enumerate(loader):
        batch = batch_to(batch, device)
        if i == 0:
            model(batch["inputs"], batch["masks"])  # warm-up
        t0 = time.perf_counter()
        model(batch["inputs"], batch["masks"])
        seconds += time.perf_counter() - t0
        n += batch["target"].shape[0]
        if i + 1 >= max_batches:
            break
    single = next(iter(DataLoader(dataset, batch_size=1)))
    single = batch_to(single, device)
    times = []
    for _ in range(single_runs):
        t0 = time.perf_counter()
        model(single["inputs"], single["masks"])
        times.append(time.perf_counter() - t0)
    times.sort()
    return Latency(1000 * seconds / max(n, 1), n / max(seconds, 1e-12), 1000 * times[len(times) // 2], batch_size)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``fn``; return ``(result, seconds, peak extra memory in bytes)``."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, seconds, mem.peak_bytes
