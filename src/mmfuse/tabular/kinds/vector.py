"""Vectors: a list/array per cell, or a group of numeric columns; standardised with training statistics
``(x - mean_train) / std_train`` (an empty value -> the training mean) -> ``mlp``."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmfuse.errors import DataError
from mmfuse.tabular import _wide as W
from mmfuse.tabular import readers as R
from mmfuse.tabular._values import to_float
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context


@COLUMN_KINDS.register("vector")
class VectorKind(ColumnKind):
    """A list column (one modality), or grouped numeric columns (absent when all of them are empty)."""

    name = "vector"
    options = frozenset({"out_dim"})
    sizes = ("dim",)

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        grouped = any(columns == list(g) for g in ctx.schema.groups.values())
        x, mask = _vectors(ctx, columns, grouped, None)
        if not mask.any():
            raise DataError(
                f"Vector column(s) {columns[0]!r}{'..' + repr(columns[-1]) if grouped else ''} "
                f"hold no usable value in the training rows; drop them in the schema."
            )
        mean, std = np.nan_to_num(np.nanmean(x[mask], 0)), np.nan_to_num(np.nanstd(x[mask], 0))
        return self.new_state(
            columns,
            options,
            grouped=grouped,
            dim=int(x.shape[1]),
            mean=mean.tolist(),
            std=np.where(std > 0, std, 1.0).tolist(),
        )

    def check_state(self, modality: str, state: dict[str, Any]) -> None:
        super().check_state(modality, state)
        for key in ("mean", "std"):
            if not isinstance(state.get(key), list) or len(state[key]) != state.get("dim"):
                raise ValueError(f"modality {modality!r} needs a list of 'dim' numbers as {key!r}")

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        cols = state["columns"]
        x, mask = _vectors(ctx, cols, state["grouped"], state["dim"])
        z = (x - np.asarray(state["mean"], np.float32)) / np.asarray(state["std"], np.float32)  # (N, D) standardised
        for j in np.flatnonzero(mask & np.isnan(z).any(1)):
            ctx.issue(
                j,
                f"{cols[0]}..{cols[-1]}",
                f"{int(np.isnan(z[j]).sum())} empty value(s) set to the training mean",
                action="imputed",
            )
        z = np.nan_to_num(z, nan=0.0)
        z[~mask] = 0.0
        return z.astype(np.float32), mask


def _vectors(ctx: Context, cols: list[str], grouped: bool, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw vectors ``(N, D)`` (NaN where empty) and the rows that have one."""
    n, part = len(ctx), ctx.part
    if grouped:  # numeric columns: a row is absent when all of them are empty
        if all(W.numeric_dtype_columns(part, cols)):
            x = np.empty((n, len(cols)), np.float32)
            with ctx.stage(f"reading {len(cols):,} columns {cols[0]}..{cols[-1]} of {n:,} rows", len(cols)):
                for sl, v in W.numeric_chunks(part, cols, np.float32):
                    x[:, sl] = v
        else:
            x = part[cols].apply(to_float).to_numpy(np.float32)
        mask = np.asarray(~np.isnan(x).all(1))
        for j in np.flatnonzero(~mask):
            ctx.issue(j, f"{cols[0]}..{cols[-1]}", "all values empty")
        return x, mask
    fast, reasons, dim = W.vectors(part[cols[0]], dim)  # Arrow lists, JSON strings, arrays: no per-cell parsing
    if fast is not None:
        mask = np.ones(n, bool)
        for k, reason in sorted(reasons.items()):
            mask[k] = False
            ctx.issue(k, cols[0], reason)
        return fast, mask
    vecs: dict[int, np.ndarray] = {}
    mask = np.zeros(n, bool)
    for k, cell in enumerate(part[cols[0]].tolist()):
        try:
            if not isinstance(cell, (list, tuple, np.ndarray)) and R.is_missing(cell):
                raise R.ReadIssue("no value")
            v = R.parse_vector(cell)
            if dim is not None and v.size != dim:
                raise R.ReadIssue(f"vector has {v.size} values, expected {dim}")
            dim = v.size if dim is None else dim
            vecs[k], mask[k] = v, True
        except R.ReadIssue as exc:
            ctx.issue(k, cols[0], str(exc))
    x = np.full((n, dim or 1), np.nan, np.float32)
    for k, v in vecs.items():
        x[k] = v
    return x, mask
