"""Robustness of a trained model to missing and noisy modalities, and MultiBench's summaries of it.

Three measurements, each a batch transform passed to :func:`mmfuse.evaluation.predict.predict`:

* **removal** - each modality removed in turn from every test sample (mask False, input zeros);
* **missing-rate sweep** - a fraction ``r`` of the samples (``r`` from 0 to 1) each lose ONE modality
  drawn uniformly among those they have (a sample never loses its last modality);
* **noise sweep** - per modality, Gaussian noise ``x + level * sigma * eps`` (``eps ~ N(0, I)``) where
  ``sigma`` is the modality's per-feature standard deviation estimated on the evaluated data, for
  increasing ``level``; noise touches present rows only (absent rows stay zero, as the contract says).

Every transform is seeded and draws the same random numbers at every level (common random numbers),
so the curves are smooth and two runs give identical numbers.

The curves are summarised as in Liang et al., "MultiBench: Multiscale Benchmarks for Multimodal
Representation Learning", NeurIPS 2021 Datasets & Benchmarks, following its reference code
(``eval_scripts/robustness.py`` of github.com/pliang279/MultiBench, commit 0f790a2):

* relative robustness ``RR(f) = integral_0^1 f(x) dx`` - the area under the performance-vs-imperfection
  curve, imperfection levels rescaled to ``[0, 1]``, trapezoid rule;
* effective robustness ``ER(f) = sum_i [f(x_i) - (f_ref(x_i) + f(x_0) - f_ref(x_0))]`` - performance
  beyond what the reference method's curve predicts once both start at the same clean performance
  (MultiBench uses late fusion as the reference; this is Taori et al. 2020's "effective robustness",
  performance beyond the baseline fit, with the baseline given by the late-fusion curve);
* both are then min-max normalised over the methods compared (``(s - min) / (max - min)``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.data.base import Splits
from mmfuse.errors import ConfigError, DataError
from mmfuse.evaluation.predict import masks_transform, predict, task_metrics
from mmfuse.tasks import task_kind

Transform = Callable[[dict[str, Any]], dict[str, Any]]
MISSING_RATES = tuple(round(0.1 * i, 1) for i in range(11))  # MultiBench's 11 imperfection levels
NOISE_LEVELS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)  # multiples of the per-feature std


def main_metric(task: str) -> tuple[str, bool]:
    """``(metric name, higher is better)`` used for the curves of ``task`` (its kind's main metric)."""
    kind = task_kind(task)
    return kind.main_metric, kind.higher_is_better


class ModalitySubset(Dataset):
    """View of a contract dataset keeping only ``modalities`` (for models built on a subset, e.g. unimodal
    baselines)."""

    def __init__(self, dataset: Dataset, modalities: Sequence[str]) -> None:
        self.dataset, self.modalities = dataset, sorted(modalities)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.dataset[i]
        keep = lambda d: {m: d[m] for m in self.modalities}  # noqa: E731
        return {**item, "inputs": keep(item["inputs"]), "masks": keep(item["masks"])}


def restrict_splits(splits: Splits, modalities: Sequence[str]) -> Splits:
    """``splits`` with every dataset restricted to ``modalities`` (the spec is kept)."""
    train, val, test = (ModalitySubset(d, modalities) for d in (splits.train, splits.val, splits.test))
    return Splits(train, val, test, splits.spec)


def for_model(dataset: Dataset, model: torch.nn.Module) -> Dataset:
    """``dataset`` restricted to ``model.modalities`` when the model uses fewer modalities than the data has."""
    mods = getattr(model, "modalities", None)
    return dataset if mods is None or sorted(dataset[0]["inputs"]) == sorted(mods) else ModalitySubset(dataset, mods)


# ----------------------------------------------------------------------------- transforms
def removal_transform(modalities: Sequence[str]) -> Transform:
    """Remove ``modalities`` from every sample (mask False, input zeroed)."""
    return masks_transform({m: True for m in modalities})


def missing_rate_transform(rate: float, seed: int = 0, modalities: Sequence[str] | None = None) -> Transform:
    """Each sample, with probability ``rate``, loses one modality drawn uniformly among those it has.

    Args:
        rate: fraction of samples that lose a modality, in ``[0, 1]``.
        seed: seeds the draws; the same draws are made at every rate, so a sample hit at rate ``r``
            is also hit at every higher rate (and loses the same modality).
        modalities: the modalities that may be dropped (default: all of the batch's).

    A fresh transform must be made for each pass over a dataset (it holds the random stream).
    """
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"Missing rate {rate} must lie in [0, 1].")
    gen = torch.Generator().manual_seed(int(seed))

    def apply(batch: dict[str, Any]) -> dict[str, Any]:
        order = sorted(batch["masks"])
        present = torch.stack([batch["masks"][m].bool() for m in order], 1)  # (B, M)
        u = torch.rand(present.shape[0], generator=gen)  # (B,) who is hit
        pick_noise = torch.rand(present.shape, generator=gen)  # (B, M) which modality
        droppable = present.clone()
        if modalities is not None:
            droppable &= torch.tensor([m in modalities for m in order])[None, :]
        hit = (u < rate) & (present.sum(1) > 1) & droppable.any(1)
        pick = pick_noise.masked_fill(~droppable, -1.0).argmax(1)  # (B,)
        drop = torch.zeros_like(present).scatter_(1, pick[:, None], True) & hit[:, None]
        masks, inputs = dict(batch["masks"]), dict(batch["inputs"])
        for i, m in enumerate(order):
            keep = present[:, i] & ~drop[:, i]
            masks[m] = keep
            x = inputs[m]
            inputs[m] = x * keep.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return {**batch, "inputs": inputs, "masks": masks}

    return apply


def feature_std(dataset: Dataset, modality: str, batch_size: int = 512) -> torch.Tensor:
    """Per-feature standard deviation of ``modality`` over the samples that have it.

    Returns:
        ``(...)`` float32 tensor with the shape of one sample's input.
    """
    total: torch.Tensor | None = None
    sq: torch.Tensor | None = None
    n = 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        if modality not in batch["inputs"]:
            raise DataError(f"The dataset has no modality {modality!r}; it has {sorted(batch['inputs'])}.")
        x = batch["inputs"][modality]
        if not (x.is_floating_point() or x.dtype == torch.uint8):
            raise ConfigError(
                f"Modality {modality!r} holds {x.dtype} values (e.g. token ids); Gaussian "
                f"noise applies to float or uint8 inputs only."
            )
        x = x[batch["masks"][modality].bool()].double()
        total = x.sum(0) if total is None else total + x.sum(0)
        sq = (x * x).sum(0) if sq is None else sq + (x * x).sum(0)
        n += x.shape[0]
    if n < 2:
        raise DataError(
            f"Modality {modality!r} is present in {n} sample(s); at least 2 are needed to estimate its spread."
        )
    assert total is not None and sq is not None  # set by the batches counted in n
    mean = total / n
    return ((sq / n - mean * mean).clamp_min(0.0) * n / (n - 1)).sqrt().float()


def noise_transform(modality: str, level: float, std: torch.Tensor, seed: int = 0) -> Transform:
    """Add ``level * std * eps`` (``eps ~ N(0, 1)`` per entry) to the present rows of ``modality``.

    Args:
        modality: the modality to corrupt.
        level: noise size in units of the per-feature standard deviation.
        std: per-feature standard deviation from :func:`feature_std`.
        seed: seeds ``eps``; the same ``eps`` is drawn at every level.
    """
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + zlib.crc32(modality.encode()))

    def apply(batch: dict[str, Any]) -> dict[str, Any]:
        x = batch["inputs"][modality]
        eps = torch.randn(x.shape, generator=gen)
        keep = batch["masks"][modality].bool().reshape(-1, *([1] * (x.dim() - 1))).float()
        noisy = x.float() + float(level) * std * eps * keep
        return {**batch, "inputs": {**batch["inputs"], modality: noisy}}

    return apply


# ----------------------------------------------------------------------------- sweeps
@dataclass
class Sweep:
    """Metrics of one model along one imperfection axis."""

    kind: str  # "missing_rate" | "noise"
    modality: str | None  # the corrupted modality (noise), None for the missing-rate sweep
    levels: list[float]
    metrics: list[dict[str, float]]

    def values(self, metric: str) -> list[float]:
        """The curve of ``metric`` along ``levels``."""
        return [m[metric] for m in self.metrics]


@dataclass
class RobustnessResult:
    """Removal table, missing-rate curve and per-modality noise curves of one model."""

    task: str
    metric: str  # main metric of the curves
    higher_is_better: bool
    clean: dict[str, float]
    removal: dict[str, dict[str, float]]  # {removed modality: metrics}
    missing_rate: Sweep
    noise: dict[str, Sweep] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RobustnessResult:
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}  # saved files may carry extra keys (seed, model_dir)
        d["missing_rate"] = Sweep(**d["missing_rate"])
        d["noise"] = {m: Sweep(**s) for m, s in d.get("noise", {}).items()}
        return cls(**d)


def _modalities_of(dataset: Dataset) -> list[str]:
    return sorted(dataset[0]["inputs"])


def evaluate_robustness(
    model: torch.nn.Module,
    dataset: Dataset,
    task: str,
    missing_rates: Sequence[float] = MISSING_RATES,
    noise_levels: Sequence[float] = NOISE_LEVELS,
    noise_modalities: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
    missing: str | None = None,
) -> RobustnessResult:
    """Removal of each modality, the missing-rate sweep and a noise sweep per modality.

    Inputs:
        model: a trained model (``(inputs, masks) -> {"prediction": (B, K), ...}``).
        dataset: the evaluation set (contract items).
        missing: the model's missing-modality strategy for every pass (``None``: its own; see
            :func:`mmfuse.evaluation.predict.predict`).

    Returns:
        :class:`RobustnessResult`; every metric dict is :func:`task_metrics` of the predictions.
    """
    metric, higher = main_metric(task)
    dataset = for_model(dataset, model)
    mods = _modalities_of(dataset)

    def run(transform: Transform | None) -> dict[str, float]:
        pred = predict(model, dataset, batch_size=batch_size, transform=transform, device=device, missing=missing)
        return task_metrics(pred, task)

    clean = run(None)
    removal = {m: run(removal_transform([m])) for m in mods} if len(mods) > 1 else {}
    rates = [float(r) for r in missing_rates]
    by_rate = Sweep(
        "missing_rate", None, rates, [clean if r == 0 else run(missing_rate_transform(r, seed)) for r in rates]
    )
    noise = {}
    for m in noise_modalities if noise_modalities is not None else mods:
        std = feature_std(dataset, m)
        levels = [float(v) for v in noise_levels]
        noise[m] = Sweep(
            "noise", m, levels, [clean if v == 0 else run(noise_transform(m, v, std, seed)) for v in levels]
        )
    return RobustnessResult(task, metric, higher, clean, removal, by_rate, noise)


# ----------------------------------------------------------------------------- MultiBench summaries
def relative_robustness(levels: Sequence[float], values: Sequence[float]) -> float:
    """Area under the performance-vs-imperfection curve, levels rescaled to ``[0, 1]`` (MultiBench).

    ``RR = sum_i (x_{i+1} - x_i) (f_i + f_{i+1}) / 2`` with ``x = levels / max(levels)``; with
    MultiBench's 11 levels 0, 0.1, ..., 1 this is exactly its ``relative_robustness_helper``.
    """
    x = np.asarray(levels, dtype=float)
    f = np.asarray(values, dtype=float)
    if x.shape != f.shape or x.size < 2:
        raise ConfigError(
            f"A robustness curve needs >= 2 levels and one value per level; got {x.size} levels and {f.size} values."
        )
    x = (x - x[0]) / (x[-1] - x[0]) if x[-1] != x[0] else x
    return float(np.sum(np.diff(x) * (f[1:] + f[:-1]) / 2))


def effective_robustness(values: Sequence[float], reference: Sequence[float]) -> float:
    """Performance beyond the reference curve shifted to the same clean performance (MultiBench).

    ``ER = sum_i [f_i - (r_i + f_0 - r_0)]`` where ``f`` is the method's curve and ``r`` the reference
    (late fusion in MultiBench) along the same levels; this is MultiBench's
    ``effective_robustness_helper``. Positive: the method degrades more slowly than the reference.
    """
    f, r = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if f.shape != r.shape:
        raise ConfigError(f"Effective robustness compares curves on the same levels; got {f.size} and {r.size} values.")
    return float(np.sum(f - (r + f[0] - r[0])))


def maxmin_normalize(scores: Mapping[str, float], higher_is_better: bool = True) -> dict[str, float]:
    """``(s - min) / (max - min)`` over the methods (scores negated first when lower is better)."""
    s = {k: (v if higher_is_better else -v) for k, v in scores.items()}
    lo, hi = min(s.values()), max(s.values())
    return {k: (v - lo) / (hi - lo) if hi > lo else 1.0 for k, v in s.items()}


def robustness_summary(
    curves: Mapping[str, Sweep], metric: str, reference: str, higher_is_better: bool = True
) -> dict[str, dict[str, float]]:
    """Raw and normalised relative / effective robustness of every method along one axis.

    Args:
        curves: ``{method: Sweep}`` on the same levels.
        metric: the metric to summarise.
        reference: the method whose curve defines effective robustness (late fusion in MultiBench).

    Returns:
        ``{method: {"relative", "relative_norm", "effective", "effective_norm"}}``.
    """
    if reference not in curves:
        raise ConfigError(f"Reference method {reference!r} is not among the methods {sorted(curves)}.")
    ref = curves[reference].values(metric)
    rel = {k: relative_robustness(c.levels, c.values(metric)) for k, c in curves.items()}
    eff = {k: effective_robustness(c.values(metric), ref) for k, c in curves.items()}
    rel_n, eff_n = maxmin_normalize(rel, higher_is_better), maxmin_normalize(eff, higher_is_better)
    return {
        k: {"relative": rel[k], "relative_norm": rel_n[k], "effective": eff[k], "effective_norm": eff_n[k]}
        for k in curves
    }


def format_removal_table(results: Mapping[str, RobustnessResult]) -> str:
    """Plain-text table: the main metric with all modalities and with each one removed, per method."""
    first = next(iter(results.values()))
    mods = sorted({m for r in results.values() for m in r.removal})
    cols = ["method", "all", *[f"no {m}" for m in mods], "missing RR"]
    rows = []
    for name, r in results.items():
        cells = [name, f"{r.clean[r.metric]:.4f}"] + [
            f"{r.removal[m][r.metric]:.4f}" if m in r.removal else "-" for m in mods
        ]
        cells.append(f"{relative_robustness(r.missing_rate.levels, r.missing_rate.values(r.metric)):.4f}")
        rows.append(cells)
    widths = [max(len(c), *(len(x[i]) for x in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    body = ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in rows]
    return "\n".join([f"{first.metric} (test)", line, "-" * len(line), *body])
