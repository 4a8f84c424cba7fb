"""One self-contained HTML page about a trained model or a whole benchmark run.

Sections: leaderboard (results dir) or model summary (model dir), robustness curves (missing-rate
sweep, noise sweeps, removal of each modality, MultiBench relative / effective robustness),
confusion matrix (classification) or predicted-vs-true scatter (regression), per-modality weights
(``model.fusion.modality_weights`` averaged over the test set, for methods that have them), and
learning curves from the ``history`` saved in each model directory's ``config.json``.

Figures are matplotlib PNGs embedded as base64 ``data:`` URIs; the page loads nothing from outside.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from mmfuse.data.base import Splits, batch_to, dataset_len
from mmfuse.errors import ConfigError, DataError
from mmfuse.evaluation import _plots
from mmfuse.evaluation.attribution import modality_shapley, shapley_summary
from mmfuse.evaluation.predict import predict, task_metrics
from mmfuse.evaluation.robustness import (
    RobustnessResult,
    evaluate_robustness,
    for_model,
    relative_robustness,
    robustness_summary,
)
from mmfuse.files import add_files, atomic_write, manifest_kind
from mmfuse.fusion.base import Fusion
from mmfuse.tasks import task_kind
from mmfuse.training.calibration import reliability_bins, softmax, trust_report

CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
margin:24px auto;max-width:1100px;color:#222;background:#fff}
h1{font-size:24px;border-bottom:2px solid #1f77b4;padding-bottom:6px}h2{font-size:19px;margin-top:32px;color:#1f4e79}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#eef3f8}td:first-child,th:first-child{text-align:left}tr.base td{color:#666;font-style:italic}
img{max-width:100%;border:1px solid #eee;margin:6px 0}.note{color:#555;font-size:12px}"""
LEADER_COLS = [
    "method",
    "kind",
    "test_accuracy",
    "test_macro_f1",
    "test_acc2_has0",
    "test_acc2_non0",
    "test_f1_has0",
    "test_f1_non0",
    "test_acc7",
    "test_mae",
    "test_corr",
    "test_pearson",
    "best_val",
    "params",
    "train_time_s",
    "epochs",
    "infer_ms_per_sample",
    "throughput_per_s",
    "peak_mem_mb",
]


@dataclass
class ModelAnalysis:
    """What the report shows about one model."""

    name: str
    task: str
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    confusion: np.ndarray | None = None  # (K, K) counts, rows = true class
    class_names: list[str] = field(default_factory=list)
    pred_target: tuple[np.ndarray, np.ndarray] | None = None  # regression scatter
    weights: dict[str, float] | None = None  # mean modality weight over the test set
    robustness: RobustnessResult | None = None
    trust: dict[str, Any] | None = (
        None  # classification: calibration raw / calibrated, selective accuracy, reliability bins
    )
    shapley: dict[str, dict[str, float]] | None = None  # mean |phi| and mean phi per modality


def _subset(ds: Dataset, max_samples: int | None) -> Dataset:
    return ds if max_samples is None or dataset_len(ds) <= max_samples else Subset(ds, range(max_samples))


@torch.no_grad()
def mean_modality_weights(model: torch.nn.Module, dataset: Dataset, batch_size: int = 256) -> dict[str, float] | None:
    """Average of ``model.fusion.modality_weights(embeddings, masks)`` ``(B, M)`` over ``dataset``; None if the method
    has none, or the model has no fusion module (an ensemble, a linear model)."""
    fusion = getattr(model, "fusion", None)
    if fusion is None:
        return None
    if not isinstance(fusion, Fusion):
        raise TypeError(f"{type(model).__name__}.fusion is not a fusion module; modality weights need one.")
    model.eval()
    total: Tensor | None = None
    n = 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        batch = batch_to(batch, "cpu")
        out = model(batch["inputs"], batch["masks"])
        w = fusion.modality_weights(out["embeddings"], out["masks"])
        if w is None:
            return None
        total = w.sum(0) if total is None else total + w.sum(0)
        n += w.shape[0]
    if total is None:
        raise DataError("The dataset is empty; modality weights need at least one sample.")
    return {m: float(v) / max(n, 1) for m, v in zip(fusion.modalities, total)}


def analyse_model(
    model: torch.nn.Module,
    meta: Mapping[str, Any],
    test: Dataset,
    name: str,
    class_names: Sequence[str] = (),
    robustness: bool | RobustnessResult | None = True,
    max_samples: int | None = 2000,
) -> ModelAnalysis:
    """Test metrics, confusion matrix or scatter, mean modality weights and (optionally) robustness of one model."""
    task = meta["model"].get("task", "classification")
    kind = task_kind(task)
    ds = for_model(_subset(test, max_samples), model)
    pred = predict(model, ds)
    a = ModelAnalysis(
        name, task, task_metrics(pred, task), list(meta.get("history", [])), class_names=list(class_names)
    )
    if kind.single_label:
        k = pred.prediction.shape[1]
        a.confusion = np.zeros((k, k), dtype=int)
        np.add.at(a.confusion, (pred.require_target().astype(int), pred.labels), 1)
        a.trust = trust_section_data(pred, float(meta.get("calibration", {}).get("temperature", 1.0)))
    elif kind.target == "values":
        y = pred.require_target()
        a.pred_target = (pred.prediction[:, 0], y.reshape(len(y), -1)[:, 0])
    phi, mods, _ = modality_shapley(model, ds, task)
    a.shapley = shapley_summary(phi, mods)
    a.weights = mean_modality_weights(model, ds)
    if isinstance(robustness, RobustnessResult):
        a.robustness = robustness
    elif robustness:
        a.robustness = evaluate_robustness(model, ds, task)
    return a


def trust_section_data(pred: Any, temperature: float) -> dict[str, Any]:
    """Calibration before / after the saved temperature, selective accuracy and reliability bins of a classifier."""
    y = pred.target.astype(int)
    raw, cal = pred.probabilities, softmax(pred.prediction, temperature)
    return {
        "temperature": temperature,
        "uncertainty": "evidential" if pred.evidential_uncertainty is not None else "entropy",
        "raw": trust_report(raw, y, pred.uncertainty),
        "calibrated": trust_report(cal, y, pred.uncertainty),
        "bins": {"raw": reliability_bins(raw, y), f"T = {temperature:.2f}": reliability_bins(cal, y)},
    }


# ----------------------------------------------------------------------------- HTML pieces
def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if v != v else (f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}")
    return html.escape(str(v))


def html_table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], base_rows: Sequence[bool] | None = None) -> str:
    """A plain HTML table of ``rows`` restricted to ``cols`` (absent cells blank)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for i, r in enumerate(rows):
        cls = ' class="base"' if base_rows is not None and base_rows[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def leaderboard_section(rows: Sequence[Mapping[str, Any]]) -> str:
    """Leaderboard table sorted by the main metric, and its bar chart."""
    ok = [r for r in rows if "error" not in r]
    key, higher = ("test_accuracy", True) if any("test_accuracy" in r for r in ok) else ("test_mae", False)
    ok.sort(key=lambda r: r.get(key, float("nan")), reverse=higher)
    cols = [c for c in LEADER_COLS if any(c in r for r in ok)]
    out = ["<h2>Leaderboard</h2>", html_table(ok, cols, [r.get("kind") == "unimodal" for r in ok])]
    failed = [r for r in rows if "error" in r]
    if failed:
        out.append(
            "<p class='note'>Failed: " + "; ".join(html.escape(f"{r['method']}: {r['error']}") for r in failed) + "</p>"
        )
    if ok and key in ok[0]:
        png = _plots.bar_chart(
            [r["method"] for r in ok],
            [float(r[key]) for r in ok],
            key.replace("_", " "),
            f"test {key[5:]} (grey = unimodal)",
            [r.get("kind") == "unimodal" for r in ok],
        )
        out.append(_img(png, "leaderboard"))
    return "\n".join(out)


def robustness_section(results: Mapping[str, RobustnessResult], reference: str | None = None) -> str:
    """Missing-rate and noise curves of every method, the removal table and MultiBench summaries."""
    if not results:
        return ""
    first = next(iter(results.values()))
    metric, higher = first.metric, first.higher_is_better
    out = [
        "<h2>Robustness</h2>",
        f"<p class='note'>Metric: test {metric}. Missing rate: fraction of samples that lose one random modality. "
        "Noise: Gaussian, std = level x the modality's per-feature std on the test "
        "data. Seeded, same draws at every level.</p>",
    ]
    mods = sorted({m for r in results.values() for m in r.removal})
    rows = []
    for name, r in results.items():
        row: dict[str, Any] = {"method": name, "all modalities": r.clean[metric]}
        row.update({f"without {m}": r.removal[m][metric] for m in mods if m in r.removal})
        rows.append(row)
    out.append(
        "<h3>Each modality removed</h3>"
        + html_table(rows, ["method", "all modalities", *[f"without {m}" for m in mods]])
    )
    out.append(dropout_comparison(results, metric))
    if mods:
        out.append(
            _img(
                _plots.grouped_bars(
                    list(results),
                    {
                        c: [r.get(c, float("nan")) for r in rows]
                        for c in ["all modalities", *[f"without {m}" for m in mods]]
                    },
                    metric,
                    f"test {metric} with each modality removed",
                ),
                "removal",
            )
        )
    series = {n: (r.missing_rate.levels, r.missing_rate.values(metric)) for n, r in results.items()}
    out.append(
        _img(
            _plots.curves(series, "fraction of samples missing one modality", metric, "missing-rate sweep"),
            "missing-rate sweep",
        )
    )
    for m in sorted({m for r in results.values() for m in r.noise}):
        s = {n: (r.noise[m].levels, r.noise[m].values(metric)) for n, r in results.items() if m in r.noise}
        out.append(
            _img(
                _plots.curves(s, f"noise level (x per-feature std of {m})", metric, f"Gaussian noise on {m}"),
                f"noise {m}",
            )
        )
    axes = {"missing rate": {n: r.missing_rate for n, r in results.items()}}
    for m in sorted({m for r in results.values() for m in r.noise}):
        axes[f"noise on {m}"] = {n: r.noise[m] for n, r in results.items() if m in r.noise}
    if len(results) > 1:
        ref = reference if reference is not None and reference in results else next(iter(results))
        srows: dict[str, dict[str, Any]] = {n: {"method": n} for n in results}
        cols = ["method"]
        for axis, curves in axes.items():
            if ref not in curves:
                continue
            summ = robustness_summary(curves, metric, ref, higher)
            for n, sm in summ.items():
                srows[n][f"RR {axis}"], srows[n][f"ER {axis}"] = sm["relative_norm"], sm["effective_norm"]
            cols += [f"RR {axis}", f"ER {axis}"]
        out.append(
            f"<h3>MultiBench summaries</h3><p class='note'>RR = relative robustness "
            f"(area under the curve), ER = effective robustness "
            f"(performance beyond the reference <b>{html.escape(ref)}</b> shifted to "
            f"the same clean performance); both min-max normalised over "
            "the methods shown (Liang et al., MultiBench, NeurIPS 2021).</p>" + html_table(list(srows.values()), cols)
        )
    else:
        rr = relative_robustness(first.missing_rate.levels, first.missing_rate.values(metric))
        out.append(f"<p>Relative robustness (area under the missing-rate curve, unnormalised): {rr:.4f}</p>")
    return "\n".join(out)


def dropout_comparison(results: Mapping[str, RobustnessResult], metric: str, suffix: str = "+moddrop") -> str:
    """Side by side: each method trained without and with modality dropout (``name`` vs ``name+moddrop``), and unimodal
    baselines."""
    pairs = [(n, f"{n}{suffix}") for n in results if f"{n}{suffix}" in results]
    if not pairs:
        return ""
    mods = sorted({m for r in results.values() for m in r.removal})
    rows = []
    for plain, drop in pairs:
        row: dict[str, Any] = {"method": plain}
        for tag, r in (("plain", results[plain]), ("moddrop", results[drop])):
            row[f"{tag}: all"] = r.clean[metric]
            row.update({f"{tag}: without {m}": r.removal[m][metric] for m in mods if m in r.removal})
        rows.append(row)
    cols = ["method"] + [f"{t}: {c}" for t in ("plain", "moddrop") for c in ["all", *[f"without {m}" for m in mods]]]
    uni = [f"{n} ({'+'.join(r.noise) or '?'}): {r.clean[metric]:.4f}" for n, r in results.items() if not r.removal]
    note = f"<p class='note'>Unimodal baselines: {html.escape('; '.join(uni))}.</p>" if uni else ""
    return (
        f"<h3>Training without vs with modality dropout ({html.escape(suffix[1:])})</h3>"
        + html_table(rows, cols)
        + note
    )


def model_section(a: ModelAnalysis, heading: str | None = None) -> str:
    """Metrics, confusion matrix or scatter, and modality weights of one model."""
    out = [
        f"<h2>{html.escape(heading or a.name)}</h2>",
        html_table([{"metric": k, "value": v} for k, v in a.metrics.items()], ["metric", "value"]),
    ]
    if a.confusion is not None:
        out.append(
            _img(
                _plots.confusion_matrix(a.confusion, a.class_names, f"{a.name}: confusion matrix (test)"),
                "confusion matrix",
            )
        )
    if a.pred_target is not None:
        out.append(_img(_plots.scatter(*a.pred_target, f"{a.name}: predicted vs true (test)"), "scatter"))
    if a.trust:
        t = a.trust
        rows = [
            {
                "probabilities": name,
                "ECE": t[key]["ece"],
                "NLL": t[key]["nll"],
                "Brier": t[key]["brier"],
                **{f"acc @ {c} coverage": v for c, v in t[key]["accuracy_at_coverage"].items()},
                "AUROC wrong vs correct": t[key]["auroc_wrong_vs_correct"],
            }
            for name, key in (
                ("as trained", "raw"),
                (f"temperature-scaled (T = {t['temperature']:.3f}, fitted on validation)", "calibrated"),
            )
        ]
        out.append(
            f"<h3>Calibration and uncertainty</h3><p class='note'>ECE with 15 bins; uncertainty = {t['uncertainty']} "
            "(accuracy on the most certain rows at each coverage).</p>" + html_table(rows, list(rows[0]))
        )
        out.append(
            _img(_plots.reliability_diagram(t["bins"], f"{a.name}: reliability diagram (test)"), "reliability diagram")
        )
    shapley = a.shapley
    if shapley:
        mods = sorted(shapley, key=lambda m: -shapley[m]["mean_abs"])
        out.append(
            "<h3>Per-modality Shapley values</h3><p class='note'>Exact Shapley values "
            "over modality subsets (a missing modality is a mask) "
            "of the predicted class's probability; per row they sum to the prediction "
            "with every modality minus with none.</p>"
            + html_table(
                [{"modality": m, "mean |phi|": shapley[m]["mean_abs"], "mean phi": shapley[m]["mean"]} for m in mods],
                ["modality", "mean |phi|", "mean phi"],
            )
        )
    return "\n".join(out)


def weights_section(analyses: Sequence[ModelAnalysis]) -> str:
    """Mean per-modality weight of every method that exposes one."""
    rows = [(a.name, a.weights) for a in analyses if a.weights]
    if not rows:
        return (
            "<h2>Per-modality weights</h2><p class='note'>None of the methods shown exposes per-modality weights.</p>"
        )
    mods = sorted({m for _, w in rows for m in w})
    table = html_table([{"method": name, **w} for name, w in rows], ["method", *mods])
    png = _plots.grouped_bars(
        [name for name, _ in rows],
        {m: [w.get(m, 0.0) for _, w in rows] for m in mods},
        "mean weight",
        "per-modality weight averaged over the test set",
    )
    return (
        "<h2>Per-modality weights</h2><p class='note'>model.fusion.modality_weights averaged over the test samples.</p>"
        + table
        + _img(png, "modality weights")
    )


def learning_section(histories: Mapping[str, list[dict[str, float]]]) -> str:
    """Train loss, validation loss and the validation metric per epoch."""
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return "<h2>Learning curves</h2><p class='note'>No training history was saved.</p>"
    present = {k for h in histories.values() for row in h for k in row}
    keys = [k for k in ("train/loss", "val/loss", "val/accuracy", "val/mae", "val/macro_f1") if k in present][:3]
    return "<h2>Learning curves</h2>" + _img(
        _plots.learning_curves(histories, keys, "per-epoch metrics"), "learning curves"
    )


def render_page(title: str, sections: Sequence[str], notes: Sequence[str] = ()) -> str:
    """Assemble the page."""
    note = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    body = "\n".join(s for s in sections if s)
    head = f"<head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head>"
    return f"<!DOCTYPE html><html>{head}<body><h1>{html.escape(title)}</h1>{note}\n{body}\n</body></html>"


# ----------------------------------------------------------------------------- entry points
def _load_splits(
    meta: Mapping[str, Any], data_dir: str | Path | None, options: Mapping[str, Any] | None = None
) -> Splits:
    from mmfuse.data.registry import load_dataset

    name = meta.get("dataset")
    if not name:
        raise DataError(
            "The model directory's config.json names no dataset; pass the test data "
            "from Python with build_model_report(..., test=...)."
        )
    return load_dataset(
        name, data_dir=data_dir, **dict(options if options is not None else meta.get("data_options", {}))
    )


def build_model_report(
    model_dir: str | Path,
    data_dir: str | Path | None = None,
    test: Dataset | None = None,
    class_names: Sequence[str] = (),
    robustness: bool = True,
    max_samples: int | None = 2000,
) -> str:
    """HTML report of one saved model; the test set comes from ``test`` or from the dataset named in its config.json."""
    from mmfuse.training.serialization import load_model_dir

    model, meta = load_model_dir(model_dir)
    name = meta.get("method") or Path(model_dir).name
    if test is None:
        splits = _load_splits(meta, data_dir)
        test, class_names = splits.test, class_names or splits.spec.class_names
    saved = Path(model_dir) / "robustness.json"
    rob: bool | RobustnessResult = (
        RobustnessResult.from_dict(json.loads(saved.read_text())) if saved.is_file() else robustness
    )
    a = analyse_model(model, meta, test, name, class_names, rob, max_samples)
    cfg = meta["model"]
    summary = {
        "fusion": cfg.get("fusion"),
        "modalities": "+".join(sorted(cfg.get("encoders", {}))),
        "task": cfg.get("task"),
        "modality_dropout": cfg.get("modality_dropout"),
        "missing_token": cfg.get("missing_token"),
        "params": sum(p.numel() for p in model.parameters()),
        "best_val": meta.get("best_val"),
        "train_time_s": meta.get("train_time_s"),
        "dataset": meta.get("dataset"),
    }
    sections = [
        "<h2>Model</h2>" + html_table([{"field": k, "value": v} for k, v in summary.items()], ["field", "value"]),
        model_section(a, "Test results"),
        robustness_section({name: a.robustness}) if a.robustness else "",
        weights_section([a]),
        learning_section({name: a.history}),
    ]
    notes = [
        f"Test metrics on the first {max_samples} test samples."
        if max_samples and dataset_len(test) > max_samples
        else f"Test metrics on all {dataset_len(test)} test samples."
    ]
    return render_page(f"mmfuse model report: {name}", sections, notes)


def build_results_report(
    results_dir: str | Path,
    data_dir: str | Path | None = None,
    splits: Splits | None = None,
    max_samples: int | None = 2000,
) -> str:
    """HTML report of a benchmark results dir (``results.json`` + ``models/<method>/``; ``robustness.json`` if
    present)."""
    from mmfuse.training.serialization import load_model_dir

    root = Path(results_dir)
    if not (root / "results.json").is_file():
        raise DataError(
            f"{str(root)!r} has no results.json; pass a folder written by 'mmfuse benchmark' or a model directory."
        )
    payload = json.loads((root / "results.json").read_text())
    rows = payload.get("rows", [])
    notes = [
        f"Dataset: {payload.get('dataset')}; total benchmark time {payload.get('total_time_s', float('nan')):.0f} s."
    ]
    rob_file = root / "robustness.json"
    rob = json.loads(rob_file.read_text()) if rob_file.is_file() else {}
    rob_results = {n: RobustnessResult.from_dict(d) for n, d in rob.get("methods", {}).items()}
    model_dirs = {
        r["method"]: root / "models" / r["method"]
        for r in rows
        if (root / "models" / r["method"] / "config.json").is_file()
    }
    histories = {n: json.loads((d / "config.json").read_text()).get("history", []) for n, d in model_dirs.items()}
    if splits is None and model_dirs:
        try:
            splits = _load_splits({"dataset": payload.get("dataset")}, data_dir, payload.get("data_options", {}))
        except Exception as exc:  # noqa: BLE001 - the data-free sections are still worth writing
            notes.append(f"Confusion matrix and modality weights skipped: the dataset could not be loaded ({exc}).")
    analyses: list[ModelAnalysis] = []
    if splits is not None:
        for n, d in model_dirs.items():
            model, meta = load_model_dir(d)
            analyses.append(
                analyse_model(
                    model, meta, splits.test, n, splits.spec.class_names, robustness=False, max_samples=max_samples
                )
            )
    ok = [r for r in rows if "error" not in r and r.get("method") in {a.name for a in analyses}]
    key, higher = ("test_accuracy", True) if any("test_accuracy" in r for r in ok) else ("test_mae", False)
    pool = [
        r for r in ok if r.get("kind") != "unimodal"
    ] or ok  # the best fusion method, baselines only if nothing else
    best = max(pool, key=lambda r: r[key] if higher else -r[key]) if pool else None
    sections = [leaderboard_section(rows)]
    if payload.get("protocol"):
        sections.append(f"<h2>Protocol</h2><p>{html.escape(payload['protocol'])}</p>")
    if payload.get("reference_rows"):
        ref_rows = payload["reference_rows"]
        cols = [c for c in LEADER_COLS if any(c in r for r in ref_rows)]
        sections.append("<h2>Published results (for comparison)</h2>" + html_table(ref_rows, cols))
    sections.append(robustness_section(rob_results, rob.get("reference")))
    if best is not None:
        sections.append(
            model_section(next(a for a in analyses if a.name == best["method"]), f"Best method: {best['method']}")
        )
    sections += [weights_section(analyses) if analyses else "", learning_section(histories)]
    return render_page(f"mmfuse benchmark report: {payload.get('dataset')}", sections, notes)


def write_report(text: str, path: str | Path, overwrite: bool = False) -> Path:
    """Write the page atomically; inside an mmfuse folder it becomes one of the folder's listed extra files
    (refreshed on every run). Elsewhere an existing file is replaced only with ``overwrite``."""
    path = Path(path)
    if manifest_kind(path.parent) is not None:
        add_files(path.parent, {path.name: text})
    elif path.exists() and not overwrite:
        raise ConfigError(
            f"{str(path)!r} already exists; pass --overwrite to replace it, or -o to choose another file."
        )
    else:
        atomic_write(path, text)
    return path


def build_report(path: str | Path, data_dir: str | Path | None = None, max_samples: int | None = 2000) -> str:
    """Report of ``path``: a benchmark results dir (has results.json) or a model dir (has config.json)."""
    p = Path(path)
    if (p / "results.json").is_file():
        return build_results_report(p, data_dir, max_samples=max_samples)
    if (p / "config.json").is_file():
        return build_model_report(p, data_dir, max_samples=max_samples)
    raise DataError(
        f"{str(p)!r} is neither a benchmark results folder (results.json) nor a "
        f"model directory (config.json); check the path."
    )
