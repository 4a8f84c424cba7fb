"""Cell values shared by the target encoding and the column kinds: label keys and numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmfuse.tabular import readers as R


def label_key(value: Any) -> str:
    """Canonical string of a label (``1``, ``1.0`` and ``"1"`` agree)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def is_inf(cell: Any) -> bool:
    return isinstance(cell, (float, np.floating)) and math.isinf(cell)


def to_float(s: Any) -> Any:
    """Numbers of a column (a Series); empty, unparsable and infinite cells become NaN (then imputed and reported)."""
    import pandas as pd

    x = pd.to_numeric(s, errors="coerce").astype(float)
    return x.where(np.isfinite(x))


def bad_number(cell: Any) -> str:
    """How a numeric cell that is not a finite number reads in the issue log."""
    if R.is_missing(cell):
        return "no value"
    try:
        if math.isinf(float(cell)):
            return f"infinite value {cell!r}"
    except (TypeError, ValueError):
        pass
    text = str(cell)
    return f"non-numeric value {text[:40]!r}"
