"""What a column kind reads and where it reports: the rows, the path policy, the cache, the issue log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.tabular import readers as R
from mmfuse.tabular.cache import EmbeddingCache
from mmfuse.tabular.schema import Schema

WIDE_STAGE = 1000  # stages over this many columns print a line when progress is on

Decoder = Callable[[list[Path]], tuple[np.ndarray, list[str | None]]]  # files -> (values (n, ...), reason or None)


@dataclass
class Context:
    """One fit or transform call over some rows of a table, as a column kind sees it.

    Row ``j`` of :attr:`part` is table row ``rows[j]``: arrays are indexed by ``j``, issues name ``rows[j]``.
    """

    part: Any  # the DataFrame of the rows being fitted or transformed
    rows: np.ndarray  # (N,) their positions in the table
    schema: Schema
    base_dir: Path = Path(".")  # folder that relative paths start from
    restrict: bool = False  # paths that leave base_dir (symlinks followed) are the row's issue, not read
    cache: EmbeddingCache = field(default_factory=EmbeddingCache)
    limits: R.Limits = R.LIMITS  # what one cell may cost (file size, image pixels)
    progress: bool = False  # progress bars, and a line per stage over WIDE_STAGE columns
    issues: list[R.Issue] = field(default_factory=list)  # the issue log this call appends to

    def __len__(self) -> int:
        return len(self.rows)

    def issue(
        self, j: int | np.integer[Any], column: str, reason: str, file: str | None = None, action: str = "missing"
    ) -> None:
        """Log an issue of row position ``j`` (the table row ``rows[j]``)."""
        self.issues.append(R.Issue(int(self.rows[j]), column, reason, file, action))

    def read(self, path: Path) -> bytes:
        """The bytes of a file within :attr:`limits` (:class:`~mmfuse.tabular.readers.ReadIssue` otherwise)."""
        return R.read_bytes(path, self.limits)

    def paths(self, column: str) -> dict[int, Path]:
        """``{j: path}`` of the usable path cells of ``column``; empty and refused cells are issues."""
        out = {}
        for j, cell in enumerate(self.part[column].tolist()):
            if R.is_missing(cell):
                self.issue(j, column, "no value")
                continue
            try:
                out[j] = R.resolve_path(cell, self.base_dir, self.restrict)
            except R.ReadIssue as exc:
                self.issue(j, column, str(exc), str(cell).strip())
        return out

    def hashed(self, column: str) -> dict[int, tuple[Path, str]]:
        """``{j: (path, content hash)}`` of the readable files of ``column``."""
        out = {}
        for j, path in self.paths(column).items():
            try:
                out[j] = (path, R.digest(self.read(path)))
            except R.ReadIssue as exc:
                self.issue(j, column, str(exc), str(path))
        return out

    def cached(
        self, encoder_id: str, column: str, shape: tuple[int, ...], decode: Decoder, desc: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x (N, *shape), mask (N,))``: the cached outputs of ``decode`` for the files of ``column``.

        Rows it fails on become issues (every row with the same content gets the reason: the cache decodes
        identical files once).
        """
        items = self.hashed(column)
        js = sorted(items)
        failures: dict[str, str] = {}  # content hash -> reason

        def compute(idx: list[int]) -> np.ndarray:
            values, reasons = decode([items[js[i]][0] for i in idx])
            for i, reason in zip(idx, reasons):
                if reason is not None:
                    failures[items[js[i]][1]] = reason
            return values

        n = len(self)
        x = np.zeros((n, *shape), np.float32)
        mask = np.zeros(n, bool)
        if js:
            values = self.cache.lookup(
                encoder_id,
                [items[j][1] for j in js],
                compute,
                batch_size=32,
                progress=self.progress,
                desc=desc,
                shape=shape,
            )
            for j, v in zip(js, values):
                if items[j][1] in failures or not np.isfinite(v).all():
                    self.issue(j, column, failures.get(items[j][1], "could not be decoded"), str(items[j][0]))
                else:
                    x[j], mask[j] = v, True
        return x, mask

    @contextmanager
    def stage(self, what: str, columns: int) -> Iterator[None]:
        """A line on stderr before and after a stage over ``WIDE_STAGE`` columns or more (when ``progress``
        is on): a 100,000-column table takes seconds per stage, and silence reads as a hang."""
        show = self.progress and columns >= WIDE_STAGE
        if show:
            print(f"mmfuse: {what} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        if show:
            print(f"mmfuse: {what}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
