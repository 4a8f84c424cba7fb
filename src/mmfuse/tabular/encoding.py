"""Frozen encoders over the cells of a table, as one Lightning ``predict``, into the embedding cache.

Every cached column (EfficientNet images, GE2E or log-mel audio, MiniLM text) goes through :func:`encode`:

1. the items whose content hash the cache (:class:`~mmfuse.tabular.cache.EmbeddingCache`) does not hold are
   listed in table order (one item per distinct content) and cut into fixed batches of ``batch_size``;
2. a ``lightning.Trainer(accelerator, devices, strategy, num_nodes)`` runs ``predict`` over those batches:
   DataLoader workers (``workers``) read and decode the files (``load``), the process holding the batch runs
   the frozen encoder (``embed``) and writes every finite row into the cache (one atomic file per entry);
3. with several processes, each takes every ``world_size``-th batch (Lightning's distributed sampler), waits
   for the others at a barrier and then reads their rows from the shared cache.

The batches are the same whatever the number of processes, so an item is always encoded beside the same
neighbours and a 2-process run writes the very bytes a 1-process run writes. One process is the same
``predict`` with ``devices=1``: there is one encoding path, not one per scale. A cell that cannot be decoded is
never stored; its reason comes from the process that saw it, or (for another process's batch) by reading the
cell again.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from mmfuse.errors import ConfigError
from mmfuse.quiet import quiet_lightning
from mmfuse.tabular import readers as R
from mmfuse.tabular.cache import EmbeddingCache

Load = Callable[[int], Any]  # item index -> decoded input (raises ReadIssue); runs in a DataLoader worker
Embed = Callable[[list[Any], str], np.ndarray]  # (decoded inputs, device) -> (n, *shape)
LOG_EVERY = 10_000  # rows between two progress lines when stderr is not a terminal


@dataclass(frozen=True)
class Encoding:
    """Where frozen encoders run: the Lightning hardware options of :class:`~mmfuse.config.TrainConfig` and
    the DataLoader workers that decode files."""

    accelerator: str = "cpu"  # passed to lightning.Trainer
    devices: int | str = 1  # passed to lightning.Trainer; several processes share the work through the cache
    strategy: str = "auto"  # passed to lightning.Trainer ("ddp" for several processes)
    num_nodes: int = 1  # passed to lightning.Trainer
    workers: int = 0  # DataLoader processes that read and decode files (0: the encoding process itself)
    progress: bool = False  # a bar with an ETA on a terminal, else a line every `log_every` rows
    log_every: int = LOG_EVERY

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"--workers must be a whole number, 0 or more; got {self.workers!r}.")
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int) or self.num_nodes < 1:
            raise ConfigError(f"--num-nodes must be a whole number, 1 or more; got {self.num_nodes!r}.")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], progress: bool = False) -> Encoding:
        """From TrainConfig fields (``accelerator``, ``devices``, ``strategy``, ``num_nodes``, ``num_workers``)."""
        given = {k: options[k] for k in ("accelerator", "devices", "strategy", "num_nodes") if options.get(k)}
        workers = options.get("num_workers")
        return cls(**given, workers=0 if workers is None else workers, progress=progress)

    @property
    def several(self) -> bool:
        """More than one process may run (several devices or nodes)."""
        return str(self.devices) not in ("1", "auto") or self.num_nodes > 1

    def check(self, cache: EmbeddingCache) -> None:
        """Several processes hand each other their rows through the cache: refuse them without one."""
        if self.several and not cache.enabled:
            raise ConfigError(
                "--no-cache cannot be combined with --devices/--num-nodes above 1: the processes share their "
                "encoded rows through the cache; drop --no-cache (or give a fresh --cache-dir)."
            )


def encode(
    cache: EmbeddingCache,
    encoder_id: str,
    hashes: Sequence[str],
    load: Load,
    embed: Embed,
    shape: tuple[int, ...],
    encoding: Encoding | None = None,
    desc: str = "encoding",
    batch_size: int = 32,
) -> tuple[np.ndarray, dict[int, str]]:
    """Encoder outputs of every item: from the cache, the others by ``load`` + ``embed`` (module docstring).

    Args:
        encoder_id: encoder name + version (weights and preprocessing): part of the cache key.
        hashes: content hash per item ``(N,)``; items of equal content are loaded and encoded once.
        load: item index -> decoded input; raises :class:`~mmfuse.tabular.readers.ReadIssue` for a bad cell.
        embed: decoded inputs -> ``(n, *shape)``; a non-finite row marks an input it could not encode.
        shape: one item's output; a stored entry of another shape is recomputed.

    Returns:
        ``(values (N, *shape) float32, {item: reason})``: rows of items that failed are NaN and have a reason.
    """
    encoding = encoding or Encoding()
    encoding.check(cache)
    values: dict[str, np.ndarray] = {}
    todo: dict[str, int] = {}  # content hash -> first item holding it
    for i, h in enumerate(hashes):
        if h in values or h in todo:
            continue
        hit = cache.get(encoder_id, h, shape)
        if hit is None:
            todo[h] = i
        else:
            values[h] = hit
    cache.hits += len(values)
    cache.misses += len(todo)
    failed: dict[str, str] = {}
    if todo:
        items = list(todo.values())

        def store(i: int, value: np.ndarray) -> None:
            cache.put(encoder_id, hashes[i], value)

        done = _predict(items, load, embed, shape, store, encoding, desc, batch_size)
        for h, i in todo.items():
            value: np.ndarray | None
            reason: str | None
            if i in done:
                value, reason = done[i]
            else:  # another process's batch: its row is in the cache unless the cell failed there
                value, reason = cache.get(encoder_id, h, shape), None
                if value is None:
                    reason = _reason(load, i)
            if reason is None and value is not None and np.isfinite(value).all():
                values[h] = value
            else:
                failed[h] = reason or "could not be encoded"
    out = np.full((len(hashes), *shape), np.nan, np.float32)
    reasons: dict[int, str] = {}
    for i, h in enumerate(hashes):
        if h in values:
            out[i] = values[h]
        else:
            reasons[i] = failed[h]
    return out, reasons


def _reason(load: Load, i: int) -> str:
    try:
        load(i)
    except R.ReadIssue as exc:
        return str(exc)
    return "could not be encoded"


class _Batches(Dataset[list[tuple[int, Any, "str | None"]]]):
    """Dataset whose item ``b`` is batch ``b``, decoded: ``[(item, input or None, reason or None)]``."""

    def __init__(self, batches: list[list[int]], load: Load) -> None:
        self.batches, self.load = batches, load

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> list[tuple[int, Any, str | None]]:
        out: list[tuple[int, Any, str | None]] = []
        for i in self.batches[b]:
            try:
                out.append((i, self.load(i), None))
            except R.ReadIssue as exc:
                out.append((i, None, str(exc)))
        return out


def _unwrap(batch: list[Any]) -> Any:
    return batch[0]  # the DataLoader's batch of one dataset item (itself a fixed batch of rows)


def _predict(
    items: list[int],
    load: Load,
    embed: Embed,
    shape: tuple[int, ...],
    store: Callable[[int, np.ndarray], None],
    encoding: Encoding,
    desc: str,
    batch_size: int,
) -> dict[int, tuple[np.ndarray, str | None]]:
    """``{item: (value, reason)}`` of the batches this process encoded (every batch with one process)."""
    import lightning as L
    from torch.utils.data import DataLoader

    class FrozenEncoder(L.LightningModule):
        def predict_step(self, batch: list[tuple[int, Any, str | None]], batch_idx: int) -> Any:
            good = [k for k, (_, _, reason) in enumerate(batch) if reason is None]
            values = np.full((len(batch), *shape), np.nan, np.float32)
            if good:
                values[good] = embed([batch[k][1] for k in good], str(self.device))
            for (i, _, reason), value in zip(batch, values):
                if reason is None and np.isfinite(value).all():  # a row that could not be encoded is never stored
                    store(i, value)
            return [(i, value, reason) for (i, _, reason), value in zip(batch, values)]

    callbacks = [_progress(desc, len(items), encoding.log_every)] if encoding.progress else []
    with quiet_lightning():
        trainer = L.Trainer(
            accelerator=encoding.accelerator,
            devices=encoding.devices,
            strategy=encoding.strategy,
            num_nodes=encoding.num_nodes,
            logger=False,
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        batches = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
        batches += [[] for _ in range(trainer.world_size - len(batches))]  # every process gets a batch, maybe empty
        loader = DataLoader(
            _Batches(batches, load), batch_size=1, collate_fn=_unwrap, num_workers=encoding.workers, shuffle=False
        )
        predictions = trainer.predict(FrozenEncoder(), loader) or []
        if trainer.world_size > 1:
            trainer.strategy.barrier()  # every process has written its rows before any reads them
    return {i: (v, r) for batch in predictions for i, v, r in batch}


def _progress(desc: str, total: int, every: int) -> Any:
    """A callback counting the rows encoded: a bar with an ETA on a terminal, else one line per ``every`` rows (main
    process only; with several processes the count is this process's share times their number)."""
    from lightning.pytorch.callbacks import Callback

    class Progress(Callback):
        def __init__(self) -> None:
            self.done, self.logged, self.t0, self.bar = 0, 0, 0.0, None

        def on_predict_start(self, trainer: Any, module: Any) -> None:
            self.t0 = time.perf_counter()
            if trainer.is_global_zero and sys.stderr.isatty():
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="row")

        def on_predict_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, *args: Any) -> None:
            step = len(batch) * trainer.world_size
            self.done = min(total, self.done + step)
            if not trainer.is_global_zero:
                return
            if self.bar is not None:
                self.bar.update(min(step, total - self.bar.n))
            elif self.done - self.logged >= every or self.done == total:
                self.logged = self.done
                rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
                left = (total - self.done) / rate if rate > 0 else math.inf
                print(
                    f"mmfuse: {desc}: {self.done:,}/{total:,} rows, {rate:,.0f} rows/s, ETA {_duration(left)}",
                    file=sys.stderr,
                    flush=True,
                )

        def on_predict_end(self, trainer: Any, module: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return Progress()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"
