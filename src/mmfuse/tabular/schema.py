"""Which column is which modality: inference from the values, overridable by a YAML/JSON schema.

Column kinds: ``image`` / ``audio`` (file paths), ``sequence`` (``.npy`` path of a ``(T, F)`` array),
``text`` (free text), ``vector`` (a list/array per cell, or a group of numeric columns sharing a prefix),
``numeric``, ``categorical``, ``id`` (unique per row, dropped) and ``ignore`` (dropped).

Modalities: each image / audio / text / sequence / vector column is its own modality (named after
the column, or the group); all numeric + categorical columns together form the ``tabular`` modality.

A schema file overrides any part of the inference::

    target: label                 # the column to predict (the CLI's --target wins)
    task: regression              # classification | multilabel | regression
    drop: [segment_id]            # columns to ignore
    columns: {age: numeric, zip: categorical, photo: image}
    groups: {audio: "audio_*", pose: [x, y, z]}   # columns fused into one vector modality
    modalities: {photo: {encoder: cnn, size: 32}, clip: {sample_rate: 16000, seconds: 2.0}}
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmfuse.errors import ConfigError, DataError
from mmfuse.tabular._wide import float_list_type, numeric_dtype_columns
from mmfuse.tasks import TASK_KINDS

KINDS = ("image", "audio", "sequence", "text", "vector", "numeric", "categorical", "id", "ignore")
PER_COLUMN = ("image", "audio", "sequence", "text", "vector")  # one modality per column
TABULAR = "tabular"
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
SEQUENCE_EXT = (".npy",)
MIN_GROUP = 4  # numeric columns sharing a prefix that form a vector group
NUMERIC_SHARE = 0.9  # a text column whose cells are at least this share numbers is numeric
_NUMBERED = re.compile(r"^(.*?[A-Za-z_.-])_?(\d+)$")


@dataclass
class Schema:
    """The resolved description of a table: target, task, column kinds, groups and per-modality options."""

    target: str
    task: str
    columns: dict[str, str]  # feature column -> kind (grouped columns have kind "vector")
    groups: dict[str, list[str]] = field(default_factory=dict)  # vector modality name -> its numeric columns
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # modality -> options (encoder, size, ...)
    reasons: dict[str, str] = field(default_factory=dict)  # dropped column -> why it is not used

    def modalities(self) -> dict[str, tuple[str, list[str]]]:
        """``{modality: (kind, columns)}`` in sorted order (``tabular`` = numeric + categorical columns)."""
        grouped = {c for cols in self.groups.values() for c in cols}
        out: dict[str, tuple[str, list[str]]] = {}
        for col, kind in self.columns.items():
            if kind in PER_COLUMN and col not in grouped:
                out[modality_name(col)] = (kind, [col])
        for name, cols in self.groups.items():
            out[modality_name(name)] = ("vector", list(cols))
        tab = [c for c, k in self.columns.items() if k in ("numeric", "categorical")]
        if tab:
            out[TABULAR] = ("tabular", tab)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "task": self.task,
            "columns": dict(self.columns),
            "groups": {k: list(v) for k, v in self.groups.items()},
            "options": dict(self.options),
            "reasons": dict(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        groups = {k: list(v) for k, v in data.get("groups", {}).items()}
        return cls(
            data["target"],
            data["task"],
            dict(data["columns"]),
            groups,
            dict(data.get("options", {})),
            dict(data.get("reasons", {})),
        )

    def describe(self) -> str:
        """Human-readable schema: one line per modality and the dropped columns."""
        lines = [f"target: {self.target!r} ({self.task})"]
        for name, (kind, cols) in self.modalities().items():
            shown = ", ".join(cols[:6]) + (f", ... ({len(cols)} columns)" if len(cols) > 6 else "")
            opts = self.options.get(name)
            lines.append(
                f"  {name:<20} {kind:<11} <- {shown}" + (f"  {json.dumps(opts, sort_keys=True)}" if opts else "")
            )
        for c, k in self.columns.items():
            if k in ("id", "ignore"):
                lines.append(f"  dropped: {c!r} ({self.reasons.get(c, k)})")
        return "\n".join(lines)


def modality_name(column: str) -> str:
    """A module-safe modality name for a column or group (``.`` and other symbols become ``_``)."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(column)) or "column"
    return name if not name[0].isdigit() else f"c_{name}"


def _is_listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def _json_list(v: Any) -> bool:
    if not isinstance(v, str) or not v.strip().startswith("["):
        return False
    try:
        return isinstance(json.loads(v), list)
    except ValueError:
        return False


def infer_task(values: Any, column: str) -> str:
    """``classification`` (strings, bools, integers, few integer-valued floats), ``multilabel`` (list cells) or
    ``regression``."""
    import pandas as pd

    s = pd.Series(values).dropna()
    if s.empty:
        raise DataError(f"Target column {column!r} has no values; fill it in or choose another --target.")
    first = s.iloc[0]
    if _is_listlike(first) or _json_list(first):
        return "multilabel"
    if (
        s.dtype == object
        or s.dtype == bool
        or isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(s)
    ):
        return "classification"
    if pd.api.types.is_integer_dtype(s):
        return "classification" if s.nunique() <= 100 else "regression"
    x = s.to_numpy(float)
    return "classification" if np.all(x == np.round(x)) and s.nunique() <= 20 else "regression"


def infer_column(values: Any, n_rows: int) -> str:
    """Kind of one feature column from (a sample of) its values."""
    import pandas as pd

    s = pd.Series(values)
    nonnull = s.dropna()
    if nonnull.empty:
        return "ignore"
    if s.dtype == bool or isinstance(s.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    if float_list_type(s.dtype):  # a Parquet list<float> column, kept in Arrow by read_table
        return "vector"
    sample = nonnull.iloc[:200]
    if all(_is_listlike(v) or _json_list(v) for v in sample):
        return "vector"
    if mostly_numeric(nonnull):  # a few stray strings must not turn a measurement into an id or a category
        return "numeric"
    text = sample.astype(str).str.strip()
    lower = text.str.lower()
    for kind, ext in (("image", IMAGE_EXT), ("audio", AUDIO_EXT), ("sequence", SEQUENCE_EXT)):
        if lower.str.endswith(ext).mean() >= 0.8:
            return kind
    words = text.str.split().str.len().mean()
    unique = nonnull.astype(str).nunique()
    if words < 2.5:  # short tokens: codes, names, ids
        if unique <= max(2, min(50, int(0.2 * n_rows))):
            return "categorical"
        return "id" if words <= 1.0 else "text"
    return "text"


def mostly_numeric(values: Any, share: float = NUMERIC_SHARE) -> bool:
    """At least ``share`` of the non-empty cells parse as numbers (the rest become per-row issues, imputed)."""
    import pandas as pd

    s = pd.Series(values)
    s = s[[not (isinstance(v, str) and not v.strip()) for v in s]] if len(s) else s
    if s.empty or any(_is_listlike(v) for v in s.iloc[:50]):
        return False
    return bool(pd.to_numeric(s, errors="coerce").notna().mean() >= share)


def _numeric_groups(columns: dict[str, str]) -> dict[str, list[str]]:
    """Numeric columns named ``<prefix><k>`` / ``<prefix>_<k>`` with at least ``MIN_GROUP`` members."""
    found: dict[str, list[tuple[int, str]]] = {}
    for col, kind in columns.items():
        m = _NUMBERED.match(col)
        if kind == "numeric" and m:
            found.setdefault(m.group(1).rstrip("_.-") or m.group(1), []).append((int(m.group(2)), col))
    return {p: [c for _, c in sorted(v)] for p, v in sorted(found.items()) if len(v) >= MIN_GROUP}


def _expand(spec: Any, available: list[str], where: str) -> list[str]:
    patterns = [spec] if isinstance(spec, str) else list(spec)
    cols: list[str] = []
    for p in patterns:
        hits = (
            [c for c in available if fnmatch.fnmatchcase(c, p)]
            if any(ch in p for ch in "*?[")
            else ([p] if p in available else [])
        )
        if not hits:
            raise ConfigError(
                f"Schema {where} names {p!r}, which matches no column of the table; columns are {available[:20]}."
            )
        seen = set(cols)  # a set: a glob over 100,000 columns must not be quadratic
        cols += [c for c in hits if c not in seen]
    return cols


def _numeric_kinds(df: Any, cols: list[str]) -> dict[str, str]:
    """``{column: "numeric" | "ignore"}`` for the columns of ``cols`` with a numeric (non-bool) dtype, found per dtype
    and per block of columns, not per column: a 100,000-column table is scanned in a second, not minutes."""
    from mmfuse.tabular._wide import CHUNK

    num = [c for c, ok in zip(cols, numeric_dtype_columns(df, cols)) if ok]
    out: dict[str, str] = {}
    pos = df.columns.get_indexer(num)
    for start in range(0, len(num), CHUNK):
        has_value = df.iloc[:, pos[start : start + CHUNK]].notna().any().to_numpy()
        for c, v in zip(num[start : start + CHUNK], has_value):
            out[c] = "numeric" if v else "ignore"
    return out


def check_kind(values: Any, column: str, kind: str) -> None:
    """Refuse a declared kind that the column's values cannot have (one sentence naming a bad row)."""
    import pandas as pd

    s = pd.Series(values)
    nonnull = s.dropna()
    if kind == "numeric" and not pd.api.types.is_numeric_dtype(s) and not mostly_numeric(nonnull):
        bad = pd.to_numeric(nonnull, errors="coerce").isna()
        row = bad.idxmax()
        raise DataError(
            f"Column {column!r} is declared numeric in the schema but only {100 * (1 - bad.mean()):.0f}% "
            f"of its cells are numbers "
            f"(row {row} holds {nonnull[row]!r}); fix the values or declare the column categorical/text."
        )
    if kind in ("image", "audio", "sequence", "text"):
        bad = nonnull[[not isinstance(v, str) for v in nonnull]]
        if len(bad):
            row = bad.index[0]
            what = "a file path" if kind != "text" else "text"
            raise DataError(
                f"Column {column!r} is declared {kind} in the schema but row {row} holds "
                f"{bad.iloc[0]!r}, not {what}; fix the schema's columns entry."
            )


def resolve_schema(df: Any, target: str | None, override: dict[str, Any] | None = None) -> Schema:
    """Infer the schema of ``df`` (a DataFrame) and apply ``override`` (a schema file's mapping).

    Raises:
        DataError: absent target column or a declared kind the values cannot have.
        ConfigError: unknown keys, kinds, tasks, or columns in ``override``.
    """
    override = dict(override or {})
    unknown = sorted(set(override) - {"target", "task", "drop", "columns", "groups", "modalities"})
    if unknown:
        raise ConfigError(
            f"Unknown schema key(s) {unknown}; valid keys: target, task, drop, columns, groups, modalities."
        )
    target = target or override.get("target")
    if not target:
        raise ConfigError("No target column given; pass --target COLUMN (or 'target:' in the schema file).")
    cols = [str(c) for c in df.columns]
    if target not in cols:
        raise DataError(
            f"Target column {target!r} is not in the table; "
            f"its columns are {cols[:20]}{' ...' if len(cols) > 20 else ''}."
        )
    task = override.get("task") or infer_task(df[target], target)
    if task not in TASK_KINDS:
        raise ConfigError(f"Schema task {task!r} is not one of {list(TASK_KINDS)}.")
    features = [c for c in cols if c != target]
    dropped = set(_expand(override.get("drop", []), features, "drop"))
    declared = {}
    for spec, kind in dict(override.get("columns", {})).items():
        if kind not in KINDS:
            raise ConfigError(f"Schema gives column {spec!r} the kind {kind!r}; valid kinds: {', '.join(KINDS)}.")
        for c in _expand(spec, features, "columns"):
            declared[c] = kind
    columns: dict[str, str] = {}
    reasons: dict[str, str] = {}
    numeric = _numeric_kinds(df, [c for c in features if c not in dropped and c not in declared])
    for c in features:
        if c in numeric:  # numeric dtype: "numeric", or "ignore" when every cell is empty (as infer_column says)
            columns[c] = numeric[c]
            if numeric[c] == "ignore":
                reasons[c] = "every cell is empty"
        elif c in dropped:
            columns[c], reasons[c] = "ignore", "listed under 'drop' in the schema"
        elif c in declared:
            check_kind(df[c], c, declared[c])
            columns[c] = declared[c]
            if declared[c] in ("id", "ignore"):
                reasons[c] = f"declared {declared[c]} in the schema"
        else:
            columns[c] = infer_column(df[c], len(df))
            if columns[c] == "ignore":
                reasons[c] = "every cell is empty"
            elif columns[c] == "id":
                reasons[c] = (
                    "a different short value in almost every row, read as an identifier; declare "
                    "its kind under 'columns' in a schema to use it"
                )
    groups = {} if "groups" in override else _numeric_groups({c: k for c, k in columns.items() if c not in declared})
    for name, spec in dict(override.get("groups", {})).items():
        members = _expand(spec, [c for c in features if c not in dropped], f"group {name!r}")
        for c, is_num in zip(members, numeric_dtype_columns(df, members)):
            if not is_num:  # a numeric dtype needs no check; text columns must hold numbers
                check_kind(df[c], c, "numeric")
        groups[str(name)] = members
    for members in groups.values():
        for c in members:
            columns[c] = "vector"
    schema = Schema(
        target, task, columns, groups, reasons={c: r for c, r in reasons.items() if columns[c] in ("id", "ignore")}
    )
    options = dict(override.get("modalities", {}))
    names = schema.modalities()
    for name, opts in options.items():
        if name not in names:
            raise ConfigError(
                f"Schema 'modalities' names {name!r}, which is not a modality of this table; "
                f"modalities are {sorted(names)}."
            )
        if not isinstance(opts, dict):
            raise ConfigError(f"Schema options of modality {name!r} must be a mapping such as {{encoder: cnn}}.")
    schema.options = {k: dict(v) for k, v in options.items()}
    if not names:
        raise DataError(
            "The table has no usable feature column besides the target; check the schema's drop/columns entries."
        )
    return schema
