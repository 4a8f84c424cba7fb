"""``mmfuse evaluate MODEL_DIR TABLE``: metrics, confusion matrix, per-modality contribution and issue report.

The contribution of modality ``m`` is the change of the main metric when ``m`` is marked absent for
every row (a model-agnostic ablation), with the fusion's average modality weight when it has one.
"""

from __future__ import annotations

import argparse
import json

from mmfuse.cli._common import add_overwrite_arg, add_reading_args, load_table_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a table model on a labelled table")
    p.add_argument("model", help="model directory written by 'mmfuse fit'")
    p.add_argument("table", help="labelled CSV / Parquet table with the training columns")
    p.add_argument(
        "--drop-missing-target",
        action="store_true",
        help="leave out rows whose target is empty (they are listed) instead of refusing",
    )
    add_reading_args(p)
    p.add_argument("-o", "--out", help="write the full report (with the issue log) as JSON here")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def format_report(report: dict) -> str:
    """Plain-text rendering of :meth:`MultimodalPredictor.evaluate`'s report."""
    lines = [
        f"rows: {report['rows']['evaluated']} evaluated of {report['rows']['table']}"
        + (
            f" ({report['rows']['target_missing']} without target, left out)"
            if report["rows"]["target_missing"]
            else ""
        )
    ]
    lines.append("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in report["metrics"].items()))
    cm = report.get("confusion_matrix")
    if cm:
        labels = [str(x) for x in cm["labels"]]
        w = max(5, *(len(x) for x in labels)) + 1
        lines.append("confusion matrix (rows = true, columns = predicted):")
        lines.append(" " * w + "".join(x.rjust(w) for x in labels))
        lines += [t.rjust(w) + "".join(str(v).rjust(w) for v in row) for t, row in zip(labels, cm["matrix"])]
    if report.get("contribution"):
        lines.append("per-modality contribution (metric when the modality is masked out for every row):")
        for m, c in report["contribution"].items():
            key = next(k for k in c if k.endswith("_without"))
            weight = "" if c["fusion_weight"] is None else f", mean fusion weight {c['fusion_weight']:.3f}"
            lines.append(f"  {m:<20} {key}={c[key]:.4f}  (drop {c['drop']:+.4f}{weight})")
    cal = report.get("calibration")
    if cal:
        for name in ("raw", "calibrated"):
            c = cal[name]
            label = "calibration" if name == "raw" else f"after temperature scaling (T = {cal['temperature']:.3f})"
            lines.append(f"{label}: ECE={c['ece']:.4f}, NLL={c['nll']:.4f}, Brier={c['brier']:.4f}")
        raw = cal["raw"]
        cov = ", ".join(f"{k}: {v:.4f}" for k, v in raw["accuracy_at_coverage"].items())
        lines.append(
            f"selective prediction ({cal['uncertainty']} uncertainty): accuracy at coverage {cov}; "
            f"AUROC wrong-vs-correct {raw['auroc_wrong_vs_correct']:.4f}"
        )
    if report.get("shapley"):
        lines.append("per-modality Shapley values (exact, over modality subsets; mean |phi| and mean phi):")
        for m, v in sorted(report["shapley"].items(), key=lambda kv: -kv[1]["mean_abs"]):
            lines.append(f"  {m:<20} {v['mean_abs']:.4f}  ({v['mean']:+.4f})")
    iss = report["issues"]
    lines.append(
        f"issues: {iss['total']} in {iss['rows_affected']} row(s)"
        + (": " + ", ".join(f"{k}={v}" for k, v in iss["by_column"].items()) if iss["total"] else "")
    )
    for it in iss["log"][:10]:
        lines.append(
            f"  row {it['row']}, {it['column']}: {it['reason']}"
            + (f" [{it['file']}]" if it.get("file") else "")
            + f" -> {it['action']}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mmfuse.files import atomic_write, check_output_file

    out = None if not args.out else check_output_file(args.out, [args.table, args.model], args.overwrite)
    predictor = load_table_model(args.model, args)
    predictor.drop_missing_target = args.drop_missing_target
    report = predictor.evaluate(args.table)
    print(format_report(report))
    if out is not None:
        atomic_write(out, json.dumps(report, indent=2))
        print(f"report written to {out}")
    return 0
