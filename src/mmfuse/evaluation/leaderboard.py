"""Train a list of methods on the same splits and measure each the same way.

For each method: test accuracy / macro-F1 (or regression metrics), trainable parameters, training
wall time, inference time per sample, peak extra memory during training, epochs run. Results are
printed as a table and written as ``results.json``, ``results.csv`` and ``leaderboard.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.data.base import Splits
from mmfuse.evaluation.efficiency import PeakMemory, count_parameters, measure_latency, peak_rss_mb
from mmfuse.evaluation.predict import predict, task_metrics
from mmfuse.files import figure_png, write_into
from mmfuse.training.fit import fit


@dataclass
class Method:
    """One leaderboard entry: a fusion method (or a unimodal baseline) and its options."""

    name: str  # row label
    fusion: str  # registered fusion name
    modalities: list[str] | None = None  # subset of the dataset's modalities (None: all)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # extra ModelConfig fields
    train_overrides: dict[str, Any] = field(default_factory=dict)  # extra TrainConfig fields
    kind: str = "fusion"  # "fusion" | "unimodal"


def model_config_for(splits: Splits, method: Method, hidden: int = 64) -> ModelConfig:
    """ModelConfig of ``method`` on the dataset described by ``splits.spec``."""
    spec = splits.spec
    mods = method.modalities or sorted(spec.encoders)
    enc = {m: dict(spec.encoders[m]) for m in mods}
    cfg = ModelConfig(encoders=enc, num_outputs=spec.num_outputs, task=spec.task, fusion=method.fusion, hidden=hidden)
    return dataclasses.replace(cfg, **method.model_overrides)


def run_method(
    splits: Splits, method: Method, train_cfg: TrainConfig, out_dir: Path | None, hidden: int = 64
) -> dict[str, Any]:
    """Train and measure one method; returns its leaderboard row."""
    cfg = model_config_for(splits, method, hidden)
    tcfg = dataclasses.replace(train_cfg, **method.train_overrides)
    model_dir = None if out_dir is None else out_dir / "models" / method.name
    with PeakMemory() as mem:
        extra = {"dataset": splits.spec.name, "data_options": splits.spec.options, "method": method.name}
        # the results folder is this run's (claimed by the CLI, or by write_into): its models are replaced
        result = fit(cfg, tcfg, splits.train, splits.val, out_dir=model_dir, extra_meta=extra, overwrite=True)
    preds = predict(result.model, splits.test, batch_size=1024)
    latency = measure_latency(result.model, splits.test, batch_size=256, max_batches=8)
    row: dict[str, Any] = {
        "method": method.name,
        "kind": method.kind,
        "fusion": method.fusion,
        "modalities": "+".join(cfg.encoders),
    }
    row.update({f"test_{k}": v for k, v in task_metrics(preds, splits.spec.task).items()})
    row.update(
        {
            "best_val": result.best_score,
            "params": count_parameters(result.model),
            "train_time_s": result.train_time_s,
            "epochs": result.epochs_run,
            "infer_ms_per_sample": latency.ms_per_sample,
            "infer_ms_single": latency.ms_per_single,
            "throughput_per_s": latency.samples_per_s,
            "peak_mem_mb": mem.peak_bytes / 2**20,
            "peak_mem_source": mem.source,
            "peak_rss_mb": peak_rss_mb(),
            "precision": result.precision,
            "seed": tcfg.seed,
        }
    )
    return row


def run_leaderboard(
    splits: Splits,
    methods: list[Method],
    train_cfg: TrainConfig,
    out_dir: str | Path | None = None,
    hidden: int = 64,
    log: Callable[[str], None] = print,
    extra: dict[str, Any] | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run every method; a method that fails is recorded with its error, not silently skipped.

    ``jobs > 1`` trains that many methods at once in worker processes (:mod:`mmfuse.evaluation.jobs`, the cores
    shared out between them); rows keep the order of ``methods``. ``extra`` (e.g. ``data_options``, ``seed``,
    ``protocol``) is stored in results.json beside the rows.
    """
    from mmfuse.evaluation.jobs import run_jobs

    out = None if out_dir is None else Path(out_dir)
    t0 = time.perf_counter()

    def done(i: int, row: dict[str, Any]) -> None:
        metric = main_test_metric([row])
        result = f"{metric}={row[metric]:.4f}" if metric else str(row.get("error"))
        log(f"[{i + 1}/{len(methods)}] {row['method']} ({row['kind']}: {row['fusion']}) -> {result}")

    rows = run_jobs(_method_row, methods, jobs, (splits, train_cfg, out, hidden), done)
    if out is not None:
        write_results(
            rows, out, splits.spec.name, total_s=time.perf_counter() - t0, extra={**(extra or {}), "jobs": jobs}
        )
    return rows


def _method_row(state: tuple[Splits, TrainConfig, Path | None, int], method: Method) -> dict[str, Any]:
    """:func:`run_method`, with a failure turned into a row holding its error."""
    splits, train_cfg, out, hidden = state
    try:
        return run_method(splits, method, train_cfg, out, hidden)
    except Exception as exc:  # noqa: BLE001 - recorded in the leaderboard and reported by the caller
        return {
            "method": method.name,
            "kind": method.kind,
            "fusion": method.fusion,
            "error": f"{type(exc).__name__}: {exc}",
        }


def main_test_metric(rows: list[dict[str, Any]]) -> str | None:
    """The leaderboard's main test metric: ``test_accuracy`` (classification) or ``test_mae`` (regression), the
    first that some row has; ``None`` when no row has either (every method failed)."""
    return next((k for k in ("test_accuracy", "test_mae") if any(k in r for r in rows)), None)


def parse_seeds(text: str | None, default: int, option: str = "--seeds") -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``None`` or empty -> ``[default]``; anything else a one-line ConfigError."""
    from mmfuse.errors import ConfigError

    if not text:
        return [default]
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r} must be comma-separated whole numbers, e.g. 0,1,2.") from None
    if not seeds:
        raise ConfigError(f"{option} names no seed; give e.g. 0,1,2.")
    return seeds


def over_seeds(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per method: the mean over seeds of every number, ``cv_std`` and ``test_*_std`` the spread over seeds
    (population std), ``error`` when a method failed for any seed."""
    import numpy as np

    out = []
    for first in per_seed[0]:
        same = [r for rows in per_seed for r in rows if r["method"] == first["method"]]
        row = {k: v for k, v in first.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
        row.pop("seed", None)
        errors = [r["error"] for r in same if "error" in r]
        if errors:
            row["error"] = errors[0]
        ok = [r for r in same if "error" not in r]
        for k in {k for r in ok for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}:
            if k in ("seed", "cv_std"):
                continue
            vals = [float(r[k]) for r in ok if isinstance(r.get(k), (int, float))]
            row[k] = float(np.mean(vals))
            if k.startswith("cv_"):
                row["cv_std"] = float(np.std(vals))
            elif k.startswith("test_"):
                row[f"{k}_std"] = float(np.std(vals))
        row["seeds"] = len(ok)
        out.append(row)
    return out


def rank_rows(rows: list[dict[str, Any]], key: str, higher_is_better: bool = True) -> list[dict[str, Any]]:
    """Sort by ``key`` and give each row a ``rank`` that is claimed only where the gap exceeds the spread.

    Walking down the sorted rows, a row starts a new rank only when its gap to the row above is larger than the
    larger of the two rows' ``<key>_std`` (their spread over seeds); otherwise it shares the rank above, and a
    shared rank is shown as ``=k``. Rows without the score or with an error come last, ranked ``-``.
    """
    sign = -1.0 if higher_is_better else 1.0
    scored = sorted(
        (r for r in rows if isinstance(r.get(key), (int, float)) and "error" not in r), key=lambda r: sign * r[key]
    )
    ranks: list[int] = []
    for i, r in enumerate(scored):
        prev = scored[i - 1] if i else None
        spread = 0.0 if prev is None else max(prev.get(f"{key}_std") or 0.0, r.get(f"{key}_std") or 0.0)
        ranks.append(ranks[-1] if prev is not None and abs(prev[key] - r[key]) <= spread else i + 1)
    shared = {k for k in ranks if ranks.count(k) > 1}
    out = [{**r, "rank": f"={k}" if k in shared else str(k)} for r, k in zip(scored, ranks)]
    return out + [{**r, "rank": "-"} for r in rows if r not in scored]


COLUMNS = [
    "method",
    "rank",
    "kind",
    "cv_std",
    "weight",
    "test_accuracy",
    "test_accuracy_std",
    "test_macro_f1",
    "test_mae",
    "test_mae_std",
    "test_pearson",
    "seeds",
    "params",
    "train_time_s",
    "epochs",
    "infer_ms_per_sample",
    "peak_mem_mb",
    "peak_rss_mb",
]


def format_table(rows: list[dict[str, Any]], sort_by: str | None = None, higher_is_better: bool = True) -> str:
    """Plain-text leaderboard sorted by ``sort_by`` (shown first; e.g. ``"best_val"``, the selection score), else by
    the main test metric."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)] + (["error"] if any("error" in r for r in rows) else [])
    if sort_by is not None:
        cols = ["method", sort_by, *[c for c in cols if c not in ("method", sort_by)]]
        key, sign = sort_by, -1 if higher_is_better else 1
    else:
        key = main_test_metric(rows) or "test_mae"
        sign = -1 if key == "test_accuracy" else 1
    rows = sorted(  # errors and missing scores last
        rows, key=lambda r: sign * r[key] if isinstance(r.get(key), (int, float)) and "error" not in r else float("inf")
    )

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    cells = [[fmt(r.get(c, ""))[:60] for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    return "\n".join([line, "-" * len(line)] + ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in cells])


def write_results(
    rows: list[dict[str, Any]], out_dir: Path, dataset: str, total_s: float, extra: dict[str, Any] | None = None
) -> None:
    """results.json, results.csv and leaderboard.png in ``out_dir`` (each written atomically)."""
    import csv
    import io

    payload = {"dataset": dataset, "total_time_s": total_s, **(extra or {}), "rows": rows}
    keys = sorted({k for r in rows for k in r}, key=lambda k: (COLUMNS.index(k) if k in COLUMNS else 99, k))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    write_into(out_dir, {"results.json": json.dumps(payload, indent=2), "results.csv": buf.getvalue()})
    plot_leaderboard(rows, out_dir / "leaderboard.png", dataset)


def plot_leaderboard(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Horizontal bar chart of the main test metric (unimodal baselines in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("test_accuracy", "test_mae", "test_macro_f1", "cv_accuracy", "cv_mae", "cv_macro_f1")
    key = next((k for k in names if any(isinstance(r.get(k), float) for r in rows)), "test_accuracy")
    ok = [r for r in rows if "error" not in r and isinstance(r.get(key), float)]
    ok.sort(key=lambda r: r[key], reverse=not key.endswith("_mae"))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ok) + 1.2))
    colors = ["#9e9e9e" if r["kind"] == "unimodal" else "#1f77b4" for r in ok]
    ax.barh([r["method"] for r in ok], [r[key] for r in ok], color=colors)
    for i, r in enumerate(ok):
        ax.text(r[key], i, f" {r[key]:.3f}", va="center", fontsize=8)
    ax.set_xlabel(key.replace("_", " "))
    ax.set_title(f"{title}: {key.replace('_', ' ')} (grey = unimodal)")
    lo = min(r[key] for r in ok) if ok else 0
    ax.set_xlim(max(0.0, lo - 0.1) if not key.endswith("_mae") else 0, (max(r[key] for r in ok) * 1.08) if ok else 1)
    fig.tight_layout()
    png = figure_png(fig, dpi=120)
    plt.close(fig)
    write_into(path.parent, {path.name: png})
