"""The numeric and categorical columns of a table, as one vector -> ``mlp``.

Numeric columns are standardised ``(x - mean_train) / std_train`` (NaN -> the training mean); categorical
columns are one-hot over the training vocabulary with index 0 = ``<unk>`` (unseen categories and NaN). The
``mlp``'s first linear layer on that vector is then a learned embedding table per categorical column
(``W onehot(c) = E[c]``). Numeric columns with a numeric dtype are read in ``(N, k)`` blocks, never one Series
per column, so a 100,000-column table fits in seconds.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mmfuse.tabular import _wide as W
from mmfuse.tabular import readers as R
from mmfuse.tabular._values import bad_number, label_key, to_float
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context

UNK = "<unk>"
MAX_CELL_ISSUES = 20  # a row with more imputed numeric cells gets one issue counting them


@COLUMN_KINDS.register("tabular")
class TabularKind(ColumnKind):
    """All numeric + categorical columns; a row is absent when every one of its cells is empty."""

    name = "tabular"
    options = frozenset({"out_dim", "max_categories"})
    sizes = ("dim",)

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        part, kinds = ctx.part, ctx.schema.columns
        cap = int(options.get("max_categories", 255))
        numeric: dict[str, list[float]] = {}  # column -> [mean, std]
        categorical: dict[str, list[str]] = {}  # column -> [UNK, *vocabulary]
        num = [c for c in columns if kinds[c] == "numeric"]
        typed = [c for c, ok in zip(num, W.numeric_dtype_columns(part, num)) if ok]
        with ctx.stage(f"statistics of {len(typed):,} numeric columns over {len(part):,} rows", len(typed)):
            for sl, v in W.numeric_chunks(part, typed, np.float64):  # (N, k) blocks, not 100,000 Series
                seen = np.isfinite(v).any(0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty column: the mean of nothing
                    mu, sd = np.nanmean(v, 0), np.nanstd(v, 0)
                for c, ok, m, d in zip(typed[sl], seen, mu.tolist(), sd.tolist()):
                    numeric[c] = [m, d if d > 0 else 1.0] if ok else [0.0, 1.0]
        typed_set = set(typed)
        for c in columns:
            if c in typed_set:
                continue
            if kinds[c] == "numeric":
                x = to_float(part[c]).to_numpy(np.float64)
                m, d = (float(np.nanmean(x)), float(np.nanstd(x))) if np.isfinite(x).any() else (0.0, 1.0)
                numeric[c] = [m, d if d > 0 else 1.0]
            else:
                counts = part[c].dropna().map(label_key).value_counts()
                categorical[c] = [UNK] + sorted(counts.index[:cap].tolist())
        dim = len(numeric) + sum(len(v) for v in categorical.values())
        return self.new_state(columns, options, numeric=numeric, categorical=categorical, dim=dim)

    def check_state(self, modality: str, state: dict[str, Any]) -> None:
        super().check_state(modality, state)
        if not isinstance(state.get("numeric"), dict) or not isinstance(state.get("categorical"), dict):
            raise ValueError(f"modality {modality!r} needs 'numeric' and 'categorical' mappings")

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        n = len(ctx)
        present = np.zeros(n, bool)
        x_num = _standardised(ctx, state["numeric"], present)
        blocks = [x_num]
        for c in sorted(state["categorical"]):
            blocks.append(_one_hot(ctx, c, state["categorical"][c], present))
        x = x_num if len(blocks) == 1 else np.concatenate(blocks, 1).astype(np.float32)  # (N, dim)
        x[~present] = 0.0
        return x, present


def _standardised(ctx: Context, stats: dict[str, list[float]], present: np.ndarray) -> np.ndarray:
    """``(N, k)`` standardised numeric columns (sorted by name: the layout never depends on JSON key order);
    marks in ``present`` the rows with a finite value and logs every imputed cell."""
    part, n = ctx.part, len(ctx)
    names = sorted(stats)
    x_num = np.zeros((n, len(names)), np.float32)
    typed = dict(zip(names, W.numeric_dtype_columns(part, names)))
    fast = [c for c in names if typed[c]]
    table = np.asarray([stats[c] for c in names], np.float64).reshape(-1, 2)  # (k, [mean, std])
    where = {c: k for k, c in enumerate(names)}
    bad: list[tuple[int, int]] = []  # (row position j, column index k) of cells that are not finite numbers
    with ctx.stage(f"standardising {len(fast):,} numeric columns of {n:,} rows", len(fast)):
        for sl, v in W.numeric_chunks(part, fast, np.float32):  # (N, k): one block per CHUNK columns
            idx = np.fromiter((where[c] for c in fast[sl]), np.int64, len(fast[sl]))
            ok = np.isfinite(v)
            present |= ok.any(1)
            mu, sd = table[idx, 0].astype(np.float32), table[idx, 1].astype(np.float32)
            x_num[:, idx] = np.where(ok, (v - mu) / sd, 0.0)  # (x - mean_train) / std_train, NaN -> the mean
            jj, kk = np.nonzero(~ok)
            bad += zip(jj.tolist(), idx[kk].tolist())
    for c in names:
        if typed[c]:
            continue
        k, (m, d) = where[c], stats[c]
        v64 = to_float(part[c]).to_numpy(np.float64)
        ok = np.isfinite(v64)
        present |= ok
        x_num[:, k] = np.where(ok, (v64 - m) / d, 0.0)
        bad += [(int(j), k) for j in np.flatnonzero(~ok)]
    _numeric_issues(ctx, names, sorted(bad))
    return x_num


def _one_hot(ctx: Context, column: str, vocab: list[str], present: np.ndarray) -> np.ndarray:
    """``(N, len(vocab))`` one-hot of ``column`` (index 0 = ``<unk>``); marks non-empty rows in ``present``."""
    index = {k: i for i, k in enumerate(vocab)}
    onehot = np.zeros((len(ctx), len(vocab)), np.float64)
    for j, cell in enumerate(ctx.part[column].tolist()):
        if R.is_missing(cell):
            ctx.issue(j, column, f"no value, encoded as {UNK}", action="imputed")
            k = 0
        else:
            present[j] = True
            k = index.get(label_key(cell), 0)
            if k == 0:
                ctx.issue(j, column, f"category {cell!r} not seen in training, encoded as {UNK}", action="imputed")
        onehot[j, k] = 1.0
    return onehot


def _numeric_issues(ctx: Context, names: list[str], bad: list[tuple[int, int]]) -> None:
    """One imputed-cell issue per cell, or, for a row with more than ``MAX_CELL_ISSUES`` such cells (a sparse
    table written with empty cells), one issue counting them: the log stays readable and small."""
    per_row: dict[int, list[int]] = {}
    for j, k in bad:
        per_row.setdefault(j, []).append(k)
    for j, ks in per_row.items():
        if len(ks) > MAX_CELL_ISSUES:
            ctx.issue(
                j,
                f"{names[ks[0]]}..{names[ks[-1]]}",
                f"{len(ks):,} of {len(names):,} numeric values empty or not numbers, set to the training mean",
                action="imputed",
            )
            continue
        for k in ks:
            raw = ctx.part[names[k]].iloc[j]
            ctx.issue(j, names[k], f"{bad_number(raw)} set to the training mean", action="imputed")
