"""A table -> :class:`~mmfuse.data.base.TensorMultimodalDataset` plus a per-row issue log.

:class:`TablePipeline` is fitted on the training rows (label encoder, category vocabularies,
standardisation statistics, audio length, sequence length) and then turns any table with the same
columns into tensors. Each modality is read by its registered column kind
(:data:`~mmfuse.tabular.kinds.COLUMN_KINDS`: ``text``, ``image``, ``audio``, ``sequence``, ``vector``,
``tabular``, one file each under :mod:`mmfuse.tabular.kinds`), which owns the modality's options, fitted
state, arrays and encoder; the pipeline loops over them and owns the target.

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
from mmfuse.tabular.kinds import Context, column_kind
from mmfuse.tabular.schema import Schema
from mmfuse.tasks import TaskKind, task_kind

__all__ = ["TableData", "TablePipeline", "label_key"]


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
    """

    def __init__(
        self,
        schema: Schema,
        base_dir: str | Path = ".",
        restrict: bool = False,
        cache: EmbeddingCache | None = None,
        progress: bool = True,
        limits: R.Limits | None = None,
    ) -> None:
        self.schema = schema
        self.limits = limits or R.LIMITS
        self.base_dir = Path(base_dir)
        self.restrict = restrict
        self.cache = cache or EmbeddingCache()
        self.progress = progress
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
            [] if issues is None else issues,
        )

    def fit(self, df: Any, rows: np.ndarray | None = None) -> TablePipeline:
        """Learn the target encoding and every modality's state from training rows ``rows`` of ``df``."""
        rows = np.arange(len(df)) if rows is None else rows
        every = len(rows) == len(df) and bool(np.all(np.asarray(rows) == np.arange(len(df))))
        part = df if every else df.iloc[rows]
        self.fit_target(part[self.schema.target].tolist())
        ctx = self.context(part, rows)  # cells a fit cannot use are the issues of transform, not of fit
        self.state = {}
        for name, (kind_name, cols) in self.schema.modalities().items():
            kind = column_kind(kind_name)
            opts = dict(self.schema.options.get(name, {}))
            kind.check_options(name, opts)
            self.state[name] = kind.fit(ctx, cols, opts)
        return self

    def transform(self, df: Any, rows: np.ndarray | None = None, with_target: bool = True) -> TableData:
        """Tensors of rows ``rows`` of ``df`` (default all), with the issue log (row numbers are table positions)."""
        rows = np.arange(len(df)) if rows is None else np.asarray(rows, np.int64)
        every = len(rows) == len(df) and bool(np.all(rows == np.arange(len(df))))
        part = df if every else df.iloc[rows]  # every row: no copy of a wide table
        for name, st in self.state.items():
            absent = [c for c in st["columns"] if c not in df.columns]
            if absent:
                raise DataError(
                    f"Column {absent[0]!r} (modality {name!r}) is missing from the table; the "
                    f"model was trained with it, so add it (empty cells are allowed)."
                )
        ctx = self.context(part, rows)
        inputs, masks = {}, {}
        for name, st in self.state.items():
            inputs[name], masks[name] = column_kind(st["kind"]).transform(ctx, st)
        if with_target:
            target = self.encode_target(part[self.schema.target].tolist(), rows)
        else:
            target = np.zeros(len(rows), np.int64)
        issues = sorted(ctx.issues, key=lambda it: (it.row, it.column))
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
