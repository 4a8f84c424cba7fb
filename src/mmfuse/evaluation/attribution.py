"""Per-modality attribution: exact Shapley values over modalities.

A missing modality is already a mask, so the value of a coalition ``S`` of modalities is the model's
output with only ``S`` present: ``v(S) = p_{S}(c)``, the probability of the class ``c`` predicted with
every modality (classification), or the first predicted value (regression). For ``M`` modalities the
Shapley value of ``m`` (Shapley 1953; for features, Lundberg & Lee, NeurIPS 2017) is::

    phi_m = sum_{S subset of M \\ {m}} |S|! (M - |S| - 1)! / M! * (v(S + {m}) - v(S))

computed exactly from the ``2^M`` masked evaluations of every row. Efficiency holds by construction:
``sum_m phi_m = v(all) - v(none)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mmfuse.tasks import task_kind

MAX_MODALITIES = 12  # 4,096 masked passes


def shapley_from_values(values: dict[frozenset[str], np.ndarray], modalities: Sequence[str]) -> np.ndarray:
    """Exact Shapley values ``(N, M)`` from ``v(S)`` ``(N,)`` of every coalition ``S`` (keys: frozensets of modality
    names)."""
    mods = list(modalities)
    n_m = len(mods)
    phi = np.zeros((len(next(iter(values.values()))), n_m))
    for j, m in enumerate(mods):
        others = [o for o in mods if o != m]
        for size in range(n_m):
            w = math.factorial(size) * math.factorial(n_m - size - 1) / math.factorial(n_m)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                phi[:, j] += w * (values[s | {m}] - values[s])
    return phi


def modality_shapley(
    model: Any, dataset: Any, task: str, batch_size: int = 256
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Shapley values of every modality for every row of ``dataset``.

    Returns:
        ``(phi (N, M), modalities, v_all (N,))``; ``phi`` sums over modalities to ``v(all) - v(none)`` per row.
        The value is the probability of the class predicted with every modality (single-label tasks) or the
        first output after the kind's activation (a value, or the first label's probability).
    """
    from mmfuse.evaluation.predict import masks_transform, predict

    mods = list(model.modalities)
    if len(mods) > MAX_MODALITIES:
        raise ValueError(
            f"Exact Shapley values need 2^M passes; {len(mods)} modalities is over the limit of {MAX_MODALITIES}."
        )

    kind = task_kind(task)

    def outputs(present: frozenset[str]) -> np.ndarray:
        pred = predict(
            model, dataset, batch_size, transform=masks_transform({m: True for m in mods if m not in present})
        )
        return kind.activate(pred.prediction)

    full = outputs(frozenset(mods))
    pick: Callable[[np.ndarray], np.ndarray]
    if kind.single_label:
        cls = full.argmax(1)
        pick = lambda out: out[np.arange(len(cls)), cls]  # noqa: E731
    else:
        pick = lambda out: out.reshape(len(out), -1)[:, 0]  # noqa: E731
    values = {frozenset(mods): pick(full)}
    for size in range(len(mods)):
        for subset in itertools.combinations(mods, size):
            values[frozenset(subset)] = pick(outputs(frozenset(subset)))
    return shapley_from_values(values, mods), mods, values[frozenset(mods)]


def shapley_summary(phi: np.ndarray, modalities: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{m: {"mean_abs": mean |phi_m|, "mean": mean phi_m}}`` over the rows."""
    return {
        m: {"mean_abs": float(np.abs(phi[:, j]).mean()), "mean": float(phi[:, j].mean())}
        for j, m in enumerate(modalities)
    }
