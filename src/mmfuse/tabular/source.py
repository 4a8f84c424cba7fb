"""Tables larger than memory: a Parquet file read one row group at a time.

:func:`open_table` gives a :class:`RowGroups` for a Parquet file of several row groups, and the whole DataFrame
(:func:`~mmfuse.tabular.readers.read_table`) otherwise. The table pipeline (:mod:`mmfuse.tabular.dataset`)
reads a :class:`RowGroups` part by part (:func:`parts`): each row group's rows are encoded and written into the
arrays being built, then dropped, so peak memory is one row group (of the columns the schema uses) plus the
encoded features, not the raw table.

Why Parquet row groups: pyarrow already reads every Parquet table here (no new dependency); Parquet is
columnar, so a row group's used columns are read without the others and a ``list<float>`` column arrives as
flat Arrow buffers; and it is the format people bring for tables of millions of rows, whose writers
(pandas, Spark, DuckDB, Polars) already cut it into row groups sized to fit in memory. A CSV has no such
units (every reader would have to parse it all to find the rows of a split); convert it once
(``pandas.read_csv(...).to_parquet(path, row_group_size=100_000)``, or chunk by chunk with pyarrow).
Wide files (:data:`~mmfuse.tabular._wide.WIDE` columns or more) keep the block-wise whole-table reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_ROWS = 10_000  # rows (whole row groups) a streamed table's schema is inferred from


class RowGroups:
    """A Parquet file as a table that is read by row groups: ``len``, ``columns``, one whole column by name
    (``source["label"]``: targets and ids are small), and :meth:`read` of some rows.

    Args:
        path: a Parquet file.
    """

    def __init__(self, path: str | Path) -> None:
        import pandas as pd
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.file = pq.ParquetFile(self.path)
        meta = self.file.metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # row group g: starts[g]..starts[g+1]
        self.columns = pd.Index(self.file.schema_arrow.names)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def num_row_groups(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, column: str) -> Any:
        """One whole column as a Series (positions 0..N-1)."""
        return self._frame(self.file.read(columns=[column], use_threads=False))[column]

    def head(self, n: int = SCHEMA_ROWS) -> Any:
        """The first row groups, at least ``n`` rows (or all), as a DataFrame: what a schema is inferred from."""
        groups = int(np.searchsorted(self.starts[1:], min(n, len(self)), side="left")) + 1
        return self._frame(self.file.read_row_groups(list(range(min(groups, self.num_row_groups))), use_threads=False))

    def read(self, rows: np.ndarray, columns: list[str] | None = None) -> Any:
        """Rows ``rows`` (table positions, any order) of ``columns`` (default all) as one DataFrame."""
        import pandas as pd

        frames = [(sel, part) for sel, part in self.parts(rows, columns)]
        whole = frames[0][1] if len(frames) == 1 else pd.concat([part for _, part in frames], ignore_index=True)
        order = np.argsort(np.concatenate([sel for sel, _ in frames]), kind="stable")
        if np.array_equal(order, np.arange(len(order))):  # rows in file order (a fit's sample): no reordering copy
            return whole
        return whole.iloc[order].reset_index(drop=True)

    def parts(self, rows: np.ndarray, columns: list[str] | None = None) -> Iterator[tuple[np.ndarray, Any]]:
        """``(positions in rows, DataFrame of those rows)`` per row group holding some of ``rows``, in file order."""
        rows = np.asarray(rows, np.int64)
        if not len(rows):  # no row: an empty frame with the columns, so every array still gets its shape
            yield rows, self._frame(self.file.read_row_group(0, columns=columns, use_threads=False).slice(0, 0))
            return
        group = np.searchsorted(self.starts, rows, side="right") - 1  # the row group of each row
        for g in np.unique(group):
            sel = np.flatnonzero(group == g)
            table = self.file.read_row_group(int(g), columns=columns, use_threads=False)
            part = self._frame(table.take(rows[sel] - self.starts[g]))
            del table
            yield sel, part
            del part
            release()

    @staticmethod
    def _frame(table: Any) -> Any:
        from mmfuse.tabular._wide import float_list_type

        def mapper(t: Any) -> Any:
            import pandas as pd

            return pd.ArrowDtype(t) if float_list_type(t) else None

        return table.to_pandas(types_mapper=mapper).reset_index(drop=True)


def release() -> None:
    """Hand the row group just used back to the system: Arrow's allocator keeps freed pages for reuse otherwise, and
    the process's footprint would grow to the largest sum of row groups it has seen."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def open_table(path: str | Path) -> Any:
    """A :class:`RowGroups` for a narrow Parquet file of several row groups, else the whole table as a DataFrame."""
    from mmfuse.errors import DataError
    from mmfuse.tabular._wide import WIDE
    from mmfuse.tabular.readers import read_table

    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq") and path.is_file():
        try:
            source = RowGroups(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for malformed files
            raise DataError(
                f"Cannot read table {str(path)!r} ({type(exc).__name__}: {str(exc)[:120]}); "
                f"give a CSV, TSV, Parquet or JSON-lines file."
            ) from exc
        if source.num_row_groups > 1 and len(source.columns) < WIDE and len(set(source.columns)) == len(source.columns):
            return source
    return read_table(path)


def parts(table: Any, rows: np.ndarray, columns: list[str]) -> Iterator[tuple[np.ndarray, Any]]:
    """``(positions in rows, frame of those rows)``: row group by row group for a :class:`RowGroups`, else one part
    (the frame itself when ``rows`` are all its rows in order: a wide table is never copied)."""
    rows = np.asarray(rows, np.int64)
    if isinstance(table, RowGroups):
        yield from table.parts(rows, [c for c in table.columns if c in set(columns)])
        return
    every = len(rows) == len(table) and bool(np.all(rows == np.arange(len(table))))
    yield np.arange(len(rows)), table if every else table.iloc[rows]
