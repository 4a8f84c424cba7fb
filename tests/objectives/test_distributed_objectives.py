"""Batch-level objectives under DDP: 2 processes (gloo) on the two halves of a batch compute the loss of the
whole batch, equal to 1 process on it; the gathered rows keep the local gradient."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mmfuse.registry import OBJECTIVES

# every objective over batch statistics: the CrossModalObjectives and the shared subspace's scatter matrices
NAMES = ["infonce", "contrastive_margin", "cca", "gcca", "cka", "hsic", "subspace"]


def problem():
    g = torch.Generator().manual_seed(0)
    n = 24
    emb = {"a": torch.randn(n, 4, generator=g), "b": torch.randn(n, 4, generator=g)}
    masks = {
        "a": torch.ones(n, dtype=torch.bool),
        "b": torch.rand(n, generator=g) > 0.2,
    }  # uneven paired rows per shard
    target = torch.randint(0, 3, (n,), generator=g)
    return emb, masks, target


def losses(rows: slice | None = None) -> dict[str, float]:
    emb, masks, target = problem()
    if rows is not None:
        emb, masks, target = {m: v[rows] for m, v in emb.items()}, {m: v[rows] for m, v in masks.items()}, target[rows]
    out = {}
    for name in NAMES:
        torch.manual_seed(0)
        obj = OBJECTIVES.build(name, dims={"a": 4, "b": 4})
        out[name] = float(obj({"embeddings": emb, "masks": masks}, {"target": target}).detach())
    return out


def worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        _work(rank, queue)
    except Exception as exc:  # noqa: BLE001 - reported to the test instead of hanging it
        queue.put((rank, {"error": repr(exc)}))
        queue.put((rank, {"error": repr(exc)}))
    finally:
        torch.distributed.destroy_process_group()


def _work(rank: int, queue) -> None:
    from mmfuse.objectives._distributed import gather_rows

    emb, _, _ = problem()
    rows = slice(0, 10) if rank == 0 else slice(10, 24)  # unequal shards
    queue.put((rank, losses(rows)))
    x = emb["a"][rows].clone().requires_grad_(True)
    gathered = gather_rows(x)
    gathered.sum().backward()
    queue.put((rank, {"rows": gathered.shape[0], "grad_ok": bool(torch.equal(x.grad, torch.ones_like(x)))}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")
def test_two_processes_see_the_global_batch():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, free_port_once(), queue)) for r in range(2)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=120) for _ in range(4)]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    single = losses()
    assert not [v for _, v in got if "error" in v], got
    for rank, values in got:
        if "rows" in values:
            assert values == {"rows": 24, "grad_ok": True}
        else:
            for name in NAMES:
                assert values[name] == pytest.approx(single[name], rel=1e-5, abs=1e-6), (rank, name)


_PORT: list[int] = []


def free_port_once() -> int:
    if not _PORT:
        _PORT.append(free_port())
    return _PORT[0]
