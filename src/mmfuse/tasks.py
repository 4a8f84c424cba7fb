"""Task kinds: one object per kind of prediction, holding every fact the rest of mmfuse needs about it.

Code asks the kind instead of comparing strings (compare AutoGluon's ``ProblemTypeProperty``)::

    kind = task_kind(cfg.task)
    kind.default_objective      # "cross_entropy" | "mse" | "bce"
    kind.main_metric, kind.mode # ("accuracy", "max") | ("mae", "min") | ("macro_f1", "max")
    kind.activate(outputs)      # probabilities (softmax / sigmoid) or values

======================  ==================  ================  ==============  =========================
kind                    target              model output      activation      main metric
======================  ==================  ================  ==============  =========================
``classification``      class index (N,)    logits or log-p   softmax         accuracy (higher)
``regression``          values (N, T)       values            identity        MAE (lower)
``multilabel``          multi-hot (N, L)    logits            sigmoid         macro-F1 (higher)
======================  ==================  ================  ==============  =========================
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmfuse.errors import ConfigError


@dataclass(frozen=True)
class TaskKind:
    """The facts of one task kind (see the module table)."""

    name: str
    default_objective: str  # registered objective trained by default
    metrics: tuple[str, ...]  # metrics reported for it (the first is the main one)
    higher_is_better: bool  # of the main metric
    activation: str  # "softmax" | "sigmoid" | "identity": model output -> probabilities / values
    target: str  # "class_index" | "multi_hot" | "values": how a target is encoded
    single_label: bool = False  # one class per row: stratified splits, confusion matrix, calibration, argmax

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: how the main metric selects a checkpoint."""
        return "max" if self.higher_is_better else "min"

    @property
    def probabilistic(self) -> bool:
        """Outputs become probabilities (softmax or sigmoid)."""
        return self.activation != "identity"

    def activate(self, outputs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Model outputs ``(N, C)`` -> probabilities (``softmax(z / T)``, ``sigmoid(z)``) or the values unchanged."""
        z = np.asarray(outputs, np.float64)
        if self.activation == "softmax":
            z = z / temperature
            e = np.exp(z - z.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-z))
        return z

    def improvement(self, new: float, old: float) -> float:
        """``new - old`` signed so that positive is better (``old - new`` for a lower-is-better metric)."""
        return (new - old) if self.higher_is_better else (old - new)


CLASSIFICATION = TaskKind(
    "classification", "cross_entropy", ("accuracy", "macro_f1"), True, "softmax", "class_index", single_label=True
)
REGRESSION = TaskKind("regression", "mse", ("mae", "mse", "pearson"), False, "identity", "values")
MULTILABEL = TaskKind("multilabel", "bce", ("macro_f1", "subset_accuracy"), True, "sigmoid", "multi_hot")
TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in (CLASSIFICATION, REGRESSION, MULTILABEL)}


def task_kind(task: Any) -> TaskKind:
    """The :class:`TaskKind` of a name (a kind passes through); an unknown name is one sentence with the valid ones."""
    if isinstance(task, TaskKind):
        return task
    kind = TASK_KINDS.get(str(task))
    if kind is None:
        near = difflib.get_close_matches(str(task), TASK_KINDS, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"Unknown task {task!r}; valid tasks: {', '.join(TASK_KINDS)}.{hint}")
    return kind
