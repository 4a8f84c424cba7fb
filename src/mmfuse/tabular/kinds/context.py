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
from mmfuse.tabular.encoding import Embed, Encoding, Load, encode
from mmfuse.tabular.schema import Schema

WIDE_STAGE = 1000  # stages over this many columns print a line when progress is on


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
    encoding: Encoding = field(default_factory=Encoding)  # where frozen encoders run (processes, workers)
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

    def encoded(
        self,
        encoder_id: str,
        hashes: list[str],
        load: Load,
        embed: Embed,
        shape: tuple[int, ...],
        desc: str,
        batch_size: int = 32,
    ) -> tuple[np.ndarray, dict[int, str]]:
        """``(values (n, *shape), {item: reason})`` of items ``hashes`` through the cache and :attr:`encoding`
        (:func:`mmfuse.tabular.encoding.encode`)."""
        return encode(self.cache, encoder_id, hashes, load, embed, shape, self.encoding, desc, batch_size)

    def cached(
        self, encoder_id: str, column: str, shape: tuple[int, ...], load: Callable[[Path], Any], embed: Embed, desc: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x (N, *shape), mask (N,))``: the cached encoder outputs of the files of ``column``.

        ``load`` decodes one file (in a DataLoader worker; :class:`~mmfuse.tabular.readers.ReadIssue` for a bad
        one) and ``embed`` encodes decoded files; rows that fail become issues (every row with the same content
        gets the reason: identical files are decoded once).
        """
        items = self.hashed(column)
        js = sorted(items)
        n = len(self)
        x = np.zeros((n, *shape), np.float32)
        mask = np.zeros(n, bool)
        if js:
            paths = [items[j][0] for j in js]
            values, reasons = self.encoded(
                encoder_id, [items[j][1] for j in js], lambda i: load(paths[i]), embed, shape, desc
            )
            for k, j in enumerate(js):
                if k in reasons:
                    self.issue(j, column, reasons[k], str(items[j][0]))
                else:
                    x[j], mask[j] = values[k], True
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
