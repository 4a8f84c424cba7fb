"""A table -> :class:`~mmfuse.data.base.TensorMultimodalDataset` plus a per-row issue log.

:class:`TablePipeline` is fitted on the training rows (label encoder, category vocabularies,
standardisation statistics, audio length, sequence length) and then turns any table with the same
columns into tensors. Each modality is read by its registered column kind
(:data:`~mmfuse.tabular.kinds.COLUMN_KINDS`: ``text``, ``image``, ``audio``, ``sequence``, ``vector``,
``tabular``, one file each under :mod:`mmfuse.tabular.kinds`), which owns the modality's options, fitted
state, arrays and encoder; the pipeline loops over them and owns the target.

A table is a DataFrame or a :class:`~mmfuse.tabular.source.RowGroups` (a Parquet file read one row group at a
time): :meth:`TablePipeline.transform` builds the arrays part by part, so a streamed table never sits in memory
whole, and frozen encoders run through :mod:`mmfuse.tabular.encoding` (Lightning ``predict``, several processes,
DataLoader workers) as :class:`~mmfuse.tabular.encoding.Encoding` says. The fitted state is learned from at most
:data:`FIT_ROWS` training rows (a seeded sample spread over the table when it has more, since a sorted table's first
rows are not typical of it): standardisation statistics settle long before that, and the fit's own arrays stay
bounded on a table of millions of rows. The target's classes are always read from every training row.

A cell that cannot be used makes its modality absent for that row (mask False, zero input) and adds an
:class:`~mmfuse.tabular.readers.Issue`; refusals raise :class:`~mmfuse.errors.DataError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.errors import DataError
from mmfuse.tabular import readers as R
from mmfuse.tabular._values import is_inf, is_number, label_key
from mmfuse.tabular.cache import EmbeddingCache
from mmfuse.tabular.encoding import Encoding
from mmfuse.tabular.kinds import Context, column_kind
from mmfuse.tabular.schema import Schema
from mmfuse.tabular.source import RowGroups, parts, release
from mmfuse.tasks import TaskKind, task_kind

__all__ = ["FIT_ROWS", "TableData", "TablePipeline", "label_key"]

FIT_ROWS = 50_000  # training rows the preprocessing state (statistics, vocabularies) is fitted on, at most


def _label_list(cell: Any, row: int, column: str) -> list[str]:
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            raise DataError(
                f"Row {row}: target {column!r} holds {cell!r}, not a list of labels; write "
                f'it as a JSON list such as ["a", "b"].'
            ) from None
    return [label_key(v) for v in cell]


@dataclass
class TableData:
    """A transformed table: the dataset, the issue log and the rows it covers."""

    dataset: TensorMultimodalDataset
    issues: list[R.Issue] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # table positions of the dataset's rows

    def issue_counts(self) -> dict[str, int]:
        """``{column: number of issues}``."""
        out: dict[str, int] = {}
        for it in self.issues:
            out[it.column] = out.get(it.column, 0) + 1
        return dict(sorted(out.items()))

    def notes(self, n_rows: int) -> list[str]:
        """One note per table row: ``"column: reason; ..."`` (empty when the row had no issue)."""
        notes: list[list[str]] = [[] for _ in range(n_rows)]
        for it in self.issues:
            notes[it.row].append(f"{it.column}: {it.reason}{'' if it.action == 'missing' else f' ({it.action})'}")
        return ["; ".join(n) for n in notes]


class TablePipeline:
    """Fitted table preprocessing (state learned on training rows only).

    Args:
        schema: the resolved :class:`~mmfuse.tabular.schema.Schema`.
        base_dir: folder that relative paths start from (default: the table's folder).
        restrict: paths that leave ``base_dir`` (symlinks followed) are the row's issue, not read.
        cache: embedding cache of frozen-encoder outputs and spectrograms.
        progress: show progress bars while encoding.
        limits: what one cell may cost (file size, image pixels); beyond it, the cell is that row's issue.
        encoding: where frozen encoders run (processes, DataLoader workers); default one process.
    """

    def __init__(
        self,
        schema: Schema,
        base_dir: str | Path = ".",
        restrict: bool = False,
        cache: EmbeddingCache | None = None,
        progress: bool = True,
        limits: R.Limits | None = None,
        encoding: Encoding | None = None,
    ) -> None:
        self.schema = schema
        self.limits = limits or R.LIMITS
        self.base_dir = Path(base_dir)
        self.restrict = restrict
        self.cache = cache or EmbeddingCache()
        self.progress = progress
        self.encoding = encoding or Encoding(progress=progress)
        self.target_state: dict[str, Any] = {}
        self.state: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ target
    def check_target(self, df: Any, drop_missing: bool = False) -> tuple[Any, list[R.Issue]]:
        """Rows with a target; NaN targets are refused (listing rows) unless ``drop_missing`` records them."""
        col = self.schema.target
        if col not in df.columns:
            raise DataError(
                f"Target column {col!r} is not in the table; the model was trained to predict "
                f"it, so add the column (or use 'mmfuse predict')."
            )
        missing = [
            i
            for i, v in enumerate(df[col].tolist())
            if not isinstance(v, (list, np.ndarray)) and (R.is_missing(v) or is_inf(v))
        ]
        if missing and not drop_missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise DataError(
                f"Target column {col!r} is empty (or infinite) in {len(missing)} row(s) "
                f"({shown}); fill them in or pass "
                "--drop-missing-target to leave them out (they are then listed in the report)."
            )
        issues = [R.Issue(i, col, "target is empty or infinite", action="dropped") for i in missing]
        keep = np.setdiff1d(np.arange(len(df)), missing)
        return keep, issues

    @property
    def kind(self) -> TaskKind:
        return task_kind(self.schema.task)

    def fit_target(self, values: list[Any]) -> None:
        col = self.schema.target
        if self.kind.target == "values":
            y = self._numeric_target(values, 0)
            self.target_state = {"mean": float(y.mean()), "std": float(y.std()) if y.std() > 0 else 1.0}
            return
        multi = self.kind.target == "multi_hot"
        keys = [k for i, v in enumerate(values) for k in (_label_list(v, i, col) if multi else [label_key(v)])]
        classes = sorted(set(keys), key=lambda k: (0, float(k)) if is_number(k) else (1, k))
        if len(classes) < 2:
            raise DataError(
                f"Target column {col!r} has a single class ({classes[0] if classes else 'none'!r}) "
                f"in the training rows; a classifier needs at least two."
            )
        self.target_state = {"classes": classes}

    def _numeric_target(self, values: list[Any], offset: int) -> np.ndarray:
        try:
            return np.asarray(values, np.float64)
        except (TypeError, ValueError):
            for i, v in enumerate(values):
                if not is_number(str(v)):
                    raise DataError(
                        f"Row {offset + i}: regression target {self.schema.target!r} holds {v!r}, "
                        f"not a number; fix it or declare task: classification."
                    ) from None
            raise

    def encode_target(self, values: list[Any], rows: np.ndarray) -> np.ndarray:
        """Class indices ``(N,)``, multi-hot ``(N, K)`` or standardised values ``(N, 1)``."""
        col = self.schema.target
        if self.kind.target == "values":
            y = np.asarray([float(v) for v in values], np.float64) if values else np.zeros(0)
            return ((y - self.target_state["mean"]) / self.target_state["std"]).astype(np.float32)[:, None]
        index = {c: i for i, c in enumerate(self.target_state["classes"])}
        if self.kind.target == "multi_hot":
            hot = np.zeros((len(values), len(index)), np.float32)
            for j, (v, r) in enumerate(zip(values, rows)):
                for k in _label_list(v, int(r), col):
                    if k in index:
                        hot[j, index[k]] = 1.0
            return hot
        out = np.zeros(len(values), np.int64)
        for j, (v, r) in enumerate(zip(values, rows)):
            k = label_key(v)
            if k not in index:
                raise DataError(
                    f"Row {int(r)}: target {col!r} is {v!r}, a class the model was not trained "
                    f"on (classes: {self.target_state['classes'][:10]}); remove the row or retrain."
                )
            out[j] = index[k]
        return out

    def decode_prediction(self, prediction: np.ndarray) -> np.ndarray:
        """Regression outputs back in the target's units ``(N, 1)``; other tasks unchanged."""
        if self.kind.target == "values":
            return prediction * self.target_state["std"] + self.target_state["mean"]
        return prediction

    # ------------------------------------------------------------------ fit / transform
    def context(self, part: Any, rows: np.ndarray, issues: list[R.Issue] | None = None) -> Context:
        """What a column kind sees of rows ``rows`` (their frame ``part``), with this pipeline's path policy,
        cache, limits and progress."""
        return Context(
            part,
            np.asarray(rows),
            self.schema,
            self.base_dir,
            self.restrict,
            self.cache,
            self.limits,
            self.progress,
            self.encoding,
            [] if issues is None else issues,
        )

    def fit(self, df: Any, rows: np.ndarray | None = None) -> TablePipeline:
        """Learn the target encoding (every training row) and every modality's state (at most :data:`FIT_ROWS`
        training rows, module docstring) from rows ``rows`` of ``df`` (a DataFrame or
        :class:`~mmfuse.tabular.source.RowGroups`)."""
        rows = np.arange(len(df)) if rows is None else np.asarray(rows, np.int64)
        target = df[self.schema.target]
        self.fit_target((target if len(rows) == len(df) else target.iloc[rows]).tolist())
        if len(rows) > FIT_ROWS:  # a seeded sample in table order, spread over every part of the table
            rows = rows[np.sort(np.random.default_rng(0).choice(len(rows), FIT_ROWS, replace=False))]
        if isinstance(df, RowGroups):
            part = df.read(rows, self._columns(with_target=False))
        else:
            part = next(parts(df, rows, []))[1]
        ctx = self.context(part, rows)  # cells a fit cannot use are the issues of transform, not of fit
        self.state = {}
        for name, (kind_name, cols) in self.schema.modalities().items():
            kind = column_kind(kind_name)
            opts = dict(self.schema.options.get(name, {}))
            kind.check_options(name, opts)
            self.state[name] = kind.fit(ctx, cols, opts)
        if isinstance(df, RowGroups):
            del ctx, part
            release()
        return self

    def _columns(self, with_target: bool) -> list[str]:
        """The columns a fit or transform reads (every modality's, and the target)."""
        cols = [c for _, cs in self.schema.modalities().values() for c in cs]
        return cols + [self.schema.target] if with_target else cols

    def transform(self, df: Any, rows: np.ndarray | None = None, with_target: bool = True) -> TableData:
        """Tensors of rows ``rows`` of ``df`` (default all), with the issue log (row numbers are table positions).

        A :class:`~mmfuse.tabular.source.RowGroups` table is read and encoded one row group at a time, each part
        written into the arrays of all rows.
        """
        rows = np.arange(len(df)) if rows is None else np.asarray(rows, np.int64)
        for name, st in self.state.items():
            absent = [c for c in st["columns"] if c not in df.columns]
            if absent:
                raise DataError(
                    f"Column {absent[0]!r} (modality {name!r}) is missing from the table; the "
                    f"model was trained with it, so add it (empty cells are allowed)."
                )
        issues: list[R.Issue] = []
        inputs: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        targets: list[tuple[np.ndarray, np.ndarray]] = []
        for sel, part in parts(df, rows, self._columns(with_target)):
            ctx = self.context(part, rows[sel], issues)
            whole = len(sel) == len(rows)  # one part (an in-memory table): its arrays are the result, no copy
            for name, st in self.state.items():
                x, m = column_kind(st["kind"]).transform(ctx, st)
                if whole:
                    inputs[name], masks[name] = x, m
                    continue
                if name not in inputs:
                    inputs[name] = np.zeros((len(rows), *x.shape[1:]), x.dtype)
                    masks[name] = np.zeros(len(rows), bool)
                inputs[name][sel], masks[name][sel] = x, m
            if with_target:
                targets.append((sel, self.encode_target(part[self.schema.target].tolist(), rows[sel])))
        if not with_target:
            target = np.zeros(len(rows), np.int64)
        elif len(targets) == 1:
            target = targets[0][1]
        else:
            first = targets[0][1] if targets else self.encode_target([], rows[:0])
            target = np.zeros((len(rows), *first.shape[1:]), first.dtype)
            for sel, y in targets:
                target[sel] = y
        issues = sorted(issues, key=lambda it: (it.row, it.column))
        return TableData(TensorMultimodalDataset(inputs, target, masks), issues, rows)

    def encoders_config(self) -> dict[str, dict[str, Any]]:
        """The ModelConfig ``encoders`` entry of every modality."""
        return {name: column_kind(st["kind"]).encoder(st) for name, st in self.state.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target_state, "modalities": self.state}

    def load_state(self, data: dict[str, Any]) -> TablePipeline:
        """Restore the fitted state (``labels.json``); raises ``ValueError`` naming the first field that is wrong."""
        target, modalities = dict(data["target"]), {str(k): dict(v) for k, v in dict(data["modalities"]).items()}
        if self.kind.target == "values":
            if (
                not all(isinstance(target.get(k), (int, float)) and math.isfinite(target[k]) for k in ("mean", "std"))
                or target["std"] <= 0
            ):
                raise ValueError("target needs finite 'mean' and a positive 'std'")
        elif (
            not isinstance(target.get("classes"), list)
            or len(target["classes"]) < 2
            or not all(isinstance(c, str) for c in target["classes"])
        ):
            raise ValueError("target 'classes' must be a list of at least two class names")
        expected = self.schema.modalities()
        if sorted(modalities) != sorted(expected):
            raise ValueError(f"modalities {sorted(modalities)} do not match the schema's {sorted(expected)}")
        for name, st in modalities.items():
            if st.get("kind") != expected[name][0] or sorted(st.get("columns") or []) != sorted(expected[name][1]):
                raise ValueError(f"modality {name!r} does not match the schema (kind/columns)")
            column_kind(st["kind"]).check_state(name, st)
        self.target_state, self.state = target, modalities
        return self
