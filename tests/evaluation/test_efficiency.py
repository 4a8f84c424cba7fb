"""Cost measurements: parameter counts, peak memory of a block, latency."""

from __future__ import annotations

import time

import pytest
import torch

from mmfuse.evaluation import efficiency
from mmfuse.evaluation.efficiency import PeakMemory, count_parameters, measure_latency, timed

MB = 2**20


def test_count_parameters_trainable_only():
    layer = torch.nn.Linear(3, 2)  # 6 weights + 2 biases
    assert count_parameters(layer) == 8
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 6
    assert count_parameters(layer, trainable_only=False) == 8


@pytest.mark.skipif(efficiency._MALLINFO2 is None, reason="needs glibc mallinfo2 (the RSS fallback has this flaw)")
def test_peak_memory_sees_a_block_allocation_every_time():
    """Memory freed by an earlier block must not hide the next block's needs.

    Each block allocates 32 MiB in small chunks and keeps one tiny tensor allocated after them, so the
    allocator cannot give the freed chunks back to the OS: a resident-set-size delta reads ~0 from the
    third block on (the freed pages are reused), the live-heap measure reads 32 MiB every time.
    """
    keep, peaks = [], []
    for _ in range(4):
        with PeakMemory() as mem:
            chunks = [torch.ones(2**14) for _ in range(512)]  # 512 x 64 KiB, live together
            keep.append(torch.ones(1024))
            time.sleep(0.1)  # many sampling intervals while the chunks are live
            del chunks
        peaks.append(mem.peak_bytes / MB)
    assert mem.source == "heap"
    assert all(30 <= p < 40 for p in peaks), peaks


def test_peak_memory_of_an_empty_block_is_small():
    with PeakMemory() as mem:
        pass
    assert 0 <= mem.peak_bytes < 4 * MB
    assert mem.source in {"heap", "rss"}


def test_timed_returns_result_seconds_and_memory():
    def work() -> float:
        x = torch.ones(2**21)  # 8 MiB, live for several sampling intervals
        time.sleep(0.1)
        return x.sum().item()

    result, seconds, peak = timed(work)
    assert result == 2**21
    assert seconds >= 0
    assert peak >= 7 * MB


def test_measure_latency_counts_every_sample(synthetic):
    from mmfuse.config import ModelConfig
    from mmfuse.models import build_model

    _, test = synthetic
    model = build_model(
        ModelConfig(
            encoders={"a": {"name": "mlp", "in_dim": 5}, "b": {"name": "mlp", "in_dim": 7}},
            num_outputs=3,
            fusion="concat",
        )
    )
    lat = measure_latency(model, test, batch_size=64, max_batches=2, single_runs=5)
    assert lat.batch_size == 64
    assert lat.ms_per_sample > 0 and lat.ms_per_single > 0
    assert abs(lat.samples_per_s * lat.ms_per_sample / 1000 - 1) < 1e-6  # throughput = 1 / time per sample
