"""Batch-level objectives under data parallelism: gather every process's rows, keep the local gradient.

A contrastive or CCA loss compares the rows of a batch with each other; under DDP each process sees only
its shard, so it would compare ``B / world`` rows instead of ``B``. :func:`gather_rows` all-gathers the
rows of every process (padding to the largest shard, since each process keeps a different number of
paired rows) and puts the local tensor back in its slot, so the loss is computed on the global batch
while gradients flow to the local embeddings (compare TorchMultimodal's
``contrastive_loss_with_temperature._gather_embeddings_and_labels``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` outside an initialised process group."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def gather_rows(x: Tensor) -> Tensor:
    """Rows of ``x`` ``(n_r, ...)`` from every process, concatenated in rank order ``(sum_r n_r, ...)``; the local
    slot is ``x`` itself (its gradient is kept), the others are detached copies."""
    rank, size = world()
    if size == 1:
        return x
    dist = torch.distributed
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    padded = torch.cat([x, x.new_zeros((longest - x.shape[0], *x.shape[1:]))]) if x.shape[0] < longest else x
    parts = [torch.zeros_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded.detach().contiguous())
    parts[rank] = padded
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])
