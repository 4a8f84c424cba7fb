"""AV-MNIST robustness: every fusion method trained without and with modality dropout, then stressed.

Protocol: the encoders and training settings of :mod:`mmfuse.benchmarks.avmnist` on a seeded subset of
AV-MNIST (10,000 train / 2,000 validation / 2,000 test pairs, at most 10 epochs, patience 3; ``--quick``: 5
and 2); each fusion method is trained twice with the same seed and settings, once plain (``<fusion>``) and once with
modality
dropout ``p`` per modality (``<fusion>+moddrop``; Neverova et al., ModDrop, TPAMI 2016, see
:mod:`mmfuse.models.missing`), plus the image-only and audio-only baselines. Every model is then
measured on the same test samples (:mod:`mmfuse.evaluation.robustness`):

* each modality removed in turn (mask False, input zero);
* the missing-rate sweep: a fraction ``r`` of the samples lose one random modality, ``r`` in 0..1;
* Gaussian noise on the pixels and on the audio features (the log-mel spectrogram by default), std = level x
  the per-feature std of the test data;

and summarised with MultiBench's relative and effective robustness (reference: ``late_mean``
trained plainly, MultiBench's late-fusion baseline). Written to ``out_dir``: ``results.json/.csv``
(leaderboard with cost columns), ``robustness.json`` (every curve), ``missing_rate.png``,
``noise_<modality>.png`` and ``report.html``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mmfuse.config import TrainConfig
from mmfuse.data.base import Splits
from mmfuse.evaluation.leaderboard import Method, format_table, run_leaderboard, write_results
from mmfuse.evaluation.robustness import (
    RobustnessResult,
    evaluate_robustness,
    format_removal_table,
    restrict_splits,
    robustness_summary,
)
from mmfuse.files import write_into
from mmfuse.registry import FUSIONS

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 1000}  # --quick subset: ~25 passes over the test set per model
# the default run trains 26 models and sweeps each over ~30 passes of the test set: a seeded 10k / 2k / 2k
# subset of AV-MNIST with audio as precomputed log-mel spectrograms keeps it near 40 minutes on 2 CPU cores
DATA = {"audio_format": "logmel"}
FULL = {"n_train": 10000, "n_val": 2000, "n_test": 2000}
DROPOUT = 0.5  # per-modality modality-dropout probability of the "+moddrop" variants
# 0.5 and a 10-epoch budget: at 0.3 / 5 epochs the moddrop models stay ~7 points below audio-only with the
# image removed; the dropout models need the longer budget (BENCHMARKS.md, AV-MNIST robustness)
SUFFIX = "+moddrop"
REFERENCE = "late_mean"  # MultiBench's late-fusion reference of effective robustness
SWEEPS = {
    "quick": {"missing_rates": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "noise_levels": [0.0, 0.5, 1.0, 2.0, 4.0]},
    "full": {
        "missing_rates": [round(0.1 * i, 1) for i in range(11)],
        "noise_levels": [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
    },
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"max_epochs": 5, "batch_size": 128, "patience": 2, "progress_bar": False},
    "full": {"max_epochs": 10, "batch_size": 128, "patience": 3, "progress_bar": False},
}


def robustness_methods(fusions: list[str], dropout: float = DROPOUT) -> list[Method]:
    """Unimodal baselines, then each fusion plain and with modality dropout."""
    methods = [
        Method("image_only", "concat", ["image"], kind="unimodal"),
        Method("audio_only", "concat", ["audio"], kind="unimodal"),
    ]
    for f in fusions:
        methods += [Method(f, f), Method(f"{f}{SUFFIX}", f, model_overrides={"modality_dropout": dropout})]
    return methods


def train_all(
    splits: Splits, methods: list[Method], cfg: TrainConfig, out: Path, log: Any = print
) -> list[dict[str, Any]]:
    """Train every method (unimodal ones on their modalities only) and write the joint leaderboard."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, ...], list[Method]] = {}
    for m in methods:
        groups.setdefault(tuple(m.modalities or ()), []).append(m)
    for mods, group in groups.items():
        rows += run_leaderboard(restrict_splits(splits, mods) if mods else splits, group, cfg, out, log=log)
    order = {m.name: i for i, m in enumerate(methods)}
    rows.sort(key=lambda r: order[r["method"]])
    write_results(rows, out, splits.spec.name, total_s=time.perf_counter() - t0)
    return rows


def comparison_rows(results: dict[str, RobustnessResult], metric: str) -> list[dict[str, Any]]:
    """Per fusion: clean and modality-removed scores, plain vs moddrop, and the gap to the unimodal model left."""
    uni = {"image": results.get("image_only"), "audio": results.get("audio_only")}
    rows = []
    for name, r in results.items():
        if name.endswith(SUFFIX) or f"{name}{SUFFIX}" not in results:
            continue
        d = results[f"{name}{SUFFIX}"]
        row: dict[str, Any] = {"fusion": name, "plain_all": r.clean[metric], "moddrop_all": d.clean[metric]}
        for removed, left in (("image", "audio"), ("audio", "image")):
            row[f"plain_no_{removed}"] = r.removal[removed][metric]
            row[f"moddrop_no_{removed}"] = d.removal[removed][metric]
            only = uni[left]
            if only is not None:
                row[f"moddrop_no_{removed}_minus_{left}_only"] = d.removal[removed][metric] - only.clean[metric]
        rows.append(row)
    return rows


def _write_figures(results: dict[str, RobustnessResult], out: Path, metric: str) -> None:
    from mmfuse.evaluation import _plots

    figs = {
        "missing_rate.png": _plots.curves(
            {n: (r.missing_rate.levels, r.missing_rate.values(metric)) for n, r in results.items()},
            "fraction of samples missing one modality",
            metric,
            "AV-MNIST: missing-rate sweep (dashed = plain, solid = moddrop)",
        )
    }
    for m in ("image", "audio"):
        figs[f"noise_{m}.png"] = _plots.curves(
            {n: (r.noise[m].levels, r.noise[m].values(metric)) for n, r in results.items() if m in r.noise},
            f"noise level (x per-feature std of {m})",
            metric,
            f"AV-MNIST: Gaussian noise on {m}",
        )
    write_into(out, figs)


def benchmark(
    out_dir: str | Path | None = "results/avmnist_robustness",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
    dropout: float = DROPOUT,
) -> list[dict[str, Any]]:
    """Train, stress and report; returns the leaderboard rows (each with its robustness summary)."""
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.evaluation.report import build_results_report, write_report
    from mmfuse.training.serialization import load_model_dir

    out = Path(out_dir or "results/avmnist_robustness")
    options = {**DATA, **(QUICK if quick else FULL), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    fusions = fusions or FUSIONS.list()
    rows = train_all(splits, robustness_methods(fusions, dropout), cfg, out)
    print(format_table(rows))
    sweep = SWEEPS["quick" if quick else "full"]
    results: dict[str, RobustnessResult] = {}
    t0 = time.perf_counter()
    for row in rows:
        if "error" in row:
            continue
        model, _ = load_model_dir(out / "models" / row["method"])
        results[row["method"]] = evaluate_robustness(
            model, splits.test, "classification", sweep["missing_rates"], sweep["noise_levels"], seed=seed
        )
        print(f"robustness of {row['method']}: done ({time.perf_counter() - t0:.0f} s)")
    metric = "accuracy"
    reference = (
        REFERENCE
        if REFERENCE in results
        else next((n for n in results if not n.endswith(SUFFIX) and results[n].removal), next(iter(results)))
    )
    summary = {"missing_rate": robustness_summary({n: r.missing_rate for n, r in results.items()}, metric, reference)}
    for m in ("image", "audio"):
        summary[f"noise_{m}"] = robustness_summary(
            {n: r.noise[m] for n, r in results.items() if m in r.noise},
            metric,
            reference if m in results[reference].noise else next(n for n, r in results.items() if m in r.noise),
        )
    comparison = comparison_rows(results, metric)
    payload = {
        "dataset": "avmnist",
        "data_options": options,
        "dropout": dropout,
        "reference": reference,
        "sweeps": sweep,
        "seed": seed,
        "robustness_time_s": time.perf_counter() - t0,
        "comparison": comparison,
        "summary": summary,
        "methods": {n: r.to_dict() for n, r in results.items()},
    }
    results_json = json.loads((out / "results.json").read_text())
    results_json["data_options"] = options  # lets `mmfuse report` reload the same test subset
    write_into(
        out, {"robustness.json": json.dumps(payload, indent=1), "results.json": json.dumps(results_json, indent=2)}
    )
    _write_figures(results, out, metric)
    print()
    print(format_removal_table(results))
    print(f"\nmodality dropout p={dropout}: accuracy with all / without image / without audio (plain -> moddrop)")
    for c in comparison:
        print(
            f"  {c['fusion']:<20} all {c['plain_all']:.3f}->{c['moddrop_all']:.3f}  "
            f" no image {c['plain_no_image']:.3f}->{c['moddrop_no_image']:.3f}"
            f"   no audio {c['plain_no_audio']:.3f}->{c['moddrop_no_audio']:.3f}"
        )
    for n in ("image_only", "audio_only"):
        if n in results:
            print(f"  {n:<20} {results[n].clean[metric]:.3f}")
    write_report(build_results_report(out, splits=splits), out / "report.html")
    for row in rows:
        if row["method"] in results:
            row["relative_robustness_missing"] = summary["missing_rate"][row["method"]]["relative"]
    return rows
