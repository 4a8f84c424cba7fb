"""``.npy`` files of ``(T, F)`` arrays, cropped/zero-padded to ``max_len`` steps -> ``gru``."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmfuse.errors import DataError
from mmfuse.tabular import readers as R
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context


@COLUMN_KINDS.register("sequence")
class SequenceKind(ColumnKind):
    """One column of ``.npy`` paths; missing files and arrays of another feature size are absent."""

    name = "sequence"
    options = frozenset({"out_dim", "max_len"})
    sizes = ("dim", "max_len")

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        lengths, dim = [], None
        for path in list(ctx.paths(columns[0]).values())[:500]:
            try:
                arr = R.decode_sequence(ctx.read(path))
            except R.ReadIssue:
                continue
            lengths.append(arr.shape[0])
            dim = dim or arr.shape[1]
        if dim is None:
            raise DataError(
                f"No readable .npy file in sequence column {columns[0]!r} of the training rows; "
                f"check the paths (relative to {str(ctx.base_dir)!r})."
            )
        max_len = int(options.get("max_len", min(512, int(np.percentile(lengths, 95)))))
        return self.new_state(columns, options, dim=int(dim), max_len=max_len)

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        col, n, T, F = state["columns"][0], len(ctx), state["max_len"], state["dim"]
        x, mask = np.zeros((n, T, F), np.float32), np.zeros(n, bool)  # (N, T, F)
        for j, path in ctx.paths(col).items():
            try:
                arr = R.decode_sequence(ctx.read(path))
                if arr.shape[1] != F:
                    raise R.ReadIssue(f"array has {arr.shape[1]} features per step, the model expects {F}")
            except R.ReadIssue as exc:
                ctx.issue(j, col, str(exc), str(path))
                continue
            x[j, : min(T, len(arr))], mask[j] = arr[:T], True
        return x, mask

    def encoder(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"name": "gru", "in_dim": state["dim"], "out_dim": state["out_dim"]}
