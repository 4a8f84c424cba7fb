"""Wide tables (thousands of numeric columns) and array columns, read and scanned without per-column objects.

pandas and pyarrow keep one object (array, builder, Series) per column, so a 100,000-column table costs
gigabytes before its values are counted: ``pd.read_parquet`` through pyarrow's dataset scanner went past
15 GB on a 27 MB file with one CPU thread, and ``read_csv`` holds each column's parse buffers and then a
consolidated copy. Here the float columns of a wide table are parsed straight into ONE float32 ``(N, k)``
block (``np.loadtxt`` for CSV, column batches of ``pyarrow.parquet.ParquetFile`` for Parquet) that the
DataFrame then wraps without a copy; integer columns become one int64 block (a column that turns out
fractional is float32, as pandas would make it float64); every other column is read by pandas as before.
float64 values of a wide table are rounded to float32, the precision every encoder computes in anyway.

A Parquet column of numeric lists (``list<float>`` / ``fixed_size_list``) stays an Arrow column in the
frame (``pd.ArrowDtype``), so :func:`vectors` turns it into ``(N, D)`` with pyarrow compute, no per-cell
Python. Narrow tables (under :data:`WIDE` columns) are read exactly as pandas reads them.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

WIDE = 1000  # a table with at least this many columns takes the block-wise path
CHUNK = 4096  # columns per batch when reading or scanning a wide block
SAMPLE_ROWS = 50  # rows read first to tell the column types of a wide CSV (int, float, other)


def float_list_type(dtype: Any) -> bool:
    """An Arrow list (variable or fixed size) whose values are floating point: a vector column."""
    import pandas as pd
    import pyarrow as pa

    t = dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else dtype
    if not isinstance(t, pa.DataType):
        return False
    lists = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    return lists and pa.types.is_floating(t.value_type)


def _frame(n: int, order: list[str], blocks: list[tuple[np.ndarray, list[str]]], rest: Any) -> Any:
    """A DataFrame with columns in file ``order`` from ``(N, k)`` blocks (wrapped, not copied) and frame ``rest``.

    The largest block is wrapped first and the other columns inserted at their file positions, which copies
    nothing; with more than 200 such columns, a concat and one reorder (a copy) is faster.
    """
    import pandas as pd

    blocks = sorted(blocks, key=lambda b: -b[0].shape[1])
    if not blocks:
        return rest[order]
    df = pd.DataFrame(blocks[0][0], columns=pd.Index(blocks[0][1], dtype=object), copy=False)
    parts = [pd.DataFrame(b, columns=pd.Index(c, dtype=object), copy=False) for b, c in blocks[1:]] + [rest]
    others = sum(p.shape[1] for p in parts)
    if others > 200:
        df = pd.concat([df, *parts], axis=1)
        return df if list(df.columns) == order else df[order]
    columns = {c: p[c] for p in parts for c in p.columns}
    for pos, name in enumerate(order):  # increasing positions: every column before ``pos`` is already in place
        if name in columns:
            df.insert(pos, name, columns[name].reset_index(drop=True))
    if len(df) != n:
        raise ValueError(f"columns read {len(df)} rows, the file holds {n}")
    return df


def read_parquet(path: Path) -> Any:
    """A Parquet file as a DataFrame; float-list columns as ``pd.ArrowDtype``, a wide table block-wise."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def mapper(t: Any) -> Any:
        return pd.ArrowDtype(t) if float_list_type(t) else None

    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    if len(schema.names) < WIDE or len(set(schema.names)) < len(schema.names):
        # ParquetFile, not pq.read_table: the dataset scanner is the path that blew up on wide files
        return pf.read(use_pandas_metadata=True).to_pandas(types_mapper=mapper)
    n = pf.metadata.num_rows
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    numeric = set(floats) | set(ints)
    rest_cols = [name for name in schema.names if name not in numeric]
    xf = np.empty((n, len(floats)), np.float32)
    xi = np.empty((n, len(ints)), np.int64)
    int_ok = np.ones(len(ints), bool)
    for names, x, is_int in ((floats, xf, False), (ints, xi, True)):
        for start in range(0, len(names), CHUNK):
            batch = pf.read(columns=names[start : start + CHUNK], use_threads=False)
            for k, col in enumerate(batch.columns):
                if is_int and col.null_count:  # pandas makes such a column float64: read it with the rest
                    int_ok[start + k] = False
                    continue
                # one chunk (one row group) converts 20x faster than ChunkedArray.to_numpy
                x[:, start + k] = col.chunk(0).to_numpy(zero_copy_only=False) if col.num_chunks == 1 else col.to_numpy()
            del batch
    bad_ints = [c for c, ok in zip(ints, int_ok) if not ok]
    if bad_ints:
        xi, ints = xi[:, int_ok], [c for c, ok in zip(ints, int_ok) if ok]
    rest = pf.read(columns=rest_cols + bad_ints, use_threads=False).to_pandas(types_mapper=mapper)
    blocks = [(x, c) for x, c in ((xf, floats), (xi, ints)) if c]
    return _frame(n, list(schema.names), blocks, rest)


def read_wide_csv(path: Path, sep: str) -> Any | None:
    """A wide CSV/TSV as a DataFrame, float columns parsed by ``np.loadtxt`` into one float32 block.

    Returns ``None`` when the file is narrow or anything in it needs pandas' own parser (empty cells, ``NA``
    markers, ragged rows, duplicate or blank header names); the caller then reads it with pandas.
    """
    import pandas as pd

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, [])
        if len(header) < WIDE or len(set(header)) < len(header) or not all(h.strip() for h in header):
            return None
        sample = [row for _, row in zip(range(SAMPLE_ROWS), reader)]
    if not sample or any(len(row) != len(header) for row in sample):
        return None
    kinds = [_cell_kind([row[j] for row in sample]) for j in range(len(header))]
    fpos = [j for j, k in enumerate(kinds) if k == "f"]
    ipos = [j for j, k in enumerate(kinds) if k == "i"]
    if len(fpos) + len(ipos) < WIDE:
        return None

    def load(cols: list[int], dtype: Any) -> np.ndarray:
        return np.loadtxt(
            path,
            delimiter=sep,
            skiprows=1,
            usecols=cols,
            dtype=dtype,
            ndmin=2,
            comments=None,
            quotechar='"',
            encoding="utf-8",
        )

    try:
        # integer-looking columns first, as float64: a column is int64 (as pandas makes it) when every value is a
        # whole number, else it joins the float block; so the float block is parsed once, in file order
        xi, big = None, []
        if ipos:
            wide = load(ipos, np.float64)
            whole = np.all(np.isfinite(wide) & (wide == np.round(wide)), 0)
            big = [p for p, b in zip(ipos, np.abs(wide).max(0) >= 2.0**53) if b]  # beyond float64: pandas reads them
            ints = whole & ~np.isin(ipos, big)
            xi = wide[:, ints].astype(np.int64)
            fpos = sorted(fpos + [p for p, w in zip(ipos, whole) if not w])
            ipos = [p for p, k in zip(ipos, ints) if k]
            del wide
        xf = load(fpos, np.float32) if fpos else None
    except (ValueError, OverflowError):
        return None
    block = xf if xf is not None else xi
    if block is None:  # no numeric column after all
        return None
    n = block.shape[0]
    numeric = set(fpos) | set(ipos)
    rest_pos = [j for j in range(len(header)) if j not in numeric]
    rest = pd.read_csv(path, sep=sep, usecols=rest_pos) if rest_pos else pd.DataFrame(index=range(n))
    if len(rest) != n:
        return None
    blocks = [(x, [header[j] for j in p]) for x, p in ((xf, fpos), (xi, ipos)) if x is not None and p]
    return _frame(n, header, blocks, rest)


def _cell_kind(cells: list[str]) -> str:
    """``"i"`` (every cell an integer), ``"f"`` (every cell a number) or ``"o"`` (anything else, read by pandas)."""
    if all(c.strip().lstrip("+-").isdigit() for c in cells):
        return "i"
    try:
        for c in cells:
            if not c.strip() or c.strip().lower() in ("na", "n/a", "null", "none", "-nan", "#n/a"):
                return "o"  # pandas reads these as empty: let it
            float(c)
    except ValueError:
        return "o"
    return "f"


def numeric_chunks(df: Any, cols: list[str], dtype: Any = np.float32) -> Iterator[tuple[slice, np.ndarray]]:
    """``(slice of cols, values (N, k))`` for numeric-dtype columns ``cols`` of ``df``, ``CHUNK`` columns at a time;
    infinite values become NaN (they are imputed and reported like empty cells)."""
    pos = df.columns.get_indexer(cols)
    for start in range(0, len(cols), CHUNK):
        part = pos[start : start + CHUNK]
        x = df.iloc[:, part].to_numpy(dtype, na_value=np.nan)
        inf = np.isinf(x)
        if inf.any():  # to_numpy may hand back a read-only view of the frame: replace, never write
            x = np.where(inf, np.nan, x)
        yield slice(start, start + len(part)), x


def numeric_dtype_columns(df: Any, cols: list[str]) -> list[bool]:
    """For each of ``cols``: its dtype is numeric and not bool (the per-dtype test, not per column)."""
    import pandas as pd

    verdict: dict[Any, bool] = {}
    out = []
    for dt in df.dtypes[cols].tolist() if cols else []:
        if dt not in verdict:
            verdict[dt] = pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)
        out.append(verdict[dt])
    return out


def vectors(values: Any, dim: int | None) -> tuple[np.ndarray | None, dict[int, str], int | None]:
    """``(x (N, D) float32 with NaN rows where unusable, {row position: reason}, D)`` of a vector column, vectorised.

    An Arrow list column is read with pyarrow compute; JSON-list strings with one ``json.loads`` of the whole
    column; equal-length numeric arrays with one ``np.stack``. Returns ``(None, {}, dim)`` when the column needs
    the per-cell reader (mixed cell types, ragged strings), which gives the same reasons cell by cell.
    """
    import pandas as pd

    if isinstance(values.dtype, pd.ArrowDtype) and float_list_type(values.dtype):
        return _arrow_vectors(values, dim)
    cells = values.tolist()
    if cells and all(type(c) is np.ndarray and c.ndim == 1 and c.dtype.kind in "fiu" for c in cells):
        sizes = {c.size for c in cells}
        if len(sizes) == 1 and (dim is None or sizes == {dim}) and dim != 0:
            with np.errstate(over="ignore"):
                x = np.stack(cells).astype(np.float32)
            if x.shape[1] and np.isfinite(x).all():
                return x, {}, x.shape[1]
    parsed = json_vectors(cells)
    if parsed is not None and (dim is None or parsed.shape[1] == dim):
        return parsed, {}, parsed.shape[1]
    return None, {}, dim


def _arrow_vectors(values: Any, dim: int | None) -> tuple[np.ndarray, dict[int, str], int | None]:
    """Chunk by chunk: the float32 result is the only full-size array (no combined float64 copy of the column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    n = len(arr)
    null = np.concatenate([c.is_null().to_numpy(zero_copy_only=False) for c in chunks]) if n else np.zeros(0, bool)
    length = (
        np.concatenate([pc.list_value_length(c).fill_null(-1).to_numpy(zero_copy_only=False) for c in chunks])
        if n
        else np.zeros(0, np.int64)
    )
    if dim is None:
        sizes = length[(~null) & (length > 0)]
        dim = int(sizes[0]) if len(sizes) else None
    reasons: dict[int, str] = {}
    for j in np.flatnonzero(null):
        reasons[int(j)] = "no value"
    for j in np.flatnonzero((~null) & (length == 0)):
        reasons[int(j)] = "empty vector"
    if dim is not None:
        for j in np.flatnonzero((~null) & (length > 0) & (length != dim)):
            reasons[int(j)] = f"vector has {int(length[j])} values, expected {dim}"
    x = np.full((n, dim or 1), np.nan, np.float32)
    good = (~null) & (length == (dim or -2))
    if dim is not None and good.any():
        start = 0
        for c in chunks:
            keep = good[start : start + len(c)]
            if keep.any():
                part = c if keep.all() else c.filter(pa.array(keep))
                flat = pc.list_flatten(part).to_numpy(zero_copy_only=False)
                with np.errstate(over="ignore"):
                    x[start + np.flatnonzero(keep)] = np.asarray(flat, np.float32).reshape(-1, dim)  # (n_keep, D)
            start += len(c)
        for j in np.flatnonzero(good & ~np.isfinite(x).all(1)):
            reasons[int(j)] = "vector holds NaN/inf"
            x[j] = np.nan
    return x, reasons, dim


def json_vectors(cells: list[Any]) -> np.ndarray | None:
    """``(N, D)`` float32 from JSON-list strings of one length, parsed by ONE ``json.loads``; ``None`` if any cell
    is not such a string (the per-cell reader then says which)."""
    if not cells or not all(isinstance(c, str) for c in cells):
        return None
    stripped = [c.strip() for c in cells]
    if not all(c[:1] == "[" and c[-1:] == "]" and c.count("[") == 1 and c.count("]") == 1 for c in stripped):
        return None  # one bracket pair per cell, so the joined text splits back into exactly these cells
    cells = stripped
    try:
        parsed = json.loads("[" + ",".join(cells) + "]")
        if len(parsed) != len(cells):
            return None
        with np.errstate(over="ignore"):
            x = np.asarray(parsed, np.float32)
    except (ValueError, TypeError, RecursionError):
        return None
    if x.ndim != 2 or x.shape[1] == 0 or not np.isfinite(x).all():
        return None
    return x
