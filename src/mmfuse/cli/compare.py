"""``mmfuse compare TABLE --target COL``: a leaderboard of fusion methods on ONE cached encoding of a table.

The table is encoded once (frozen-encoder outputs come from the embedding cache, so a second run
re-encodes nothing), split into train / validation / test (``--val-table`` / ``--test-table``, else
seeded stratified shares), and every fusion method (default: all registered; ``--fusions`` to
choose) is trained and measured the same way by :func:`mmfuse.evaluation.leaderboard.run_leaderboard`.
Regression errors are reported in the target's units. The exit status tells the truth: 0 when every
method trained, 1 when some failed (each is named with its error), 2 when all failed or the input was
refused.
"""

from __future__ import annotations

import argparse
import time

from mmfuse.cli._common import add_train_args
from mmfuse.cli.fit import add_table_args, predictor_from_args, refuse_several_processes, table_inputs
from mmfuse.errors import MmfuseError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="train several fusion methods on one cached encoding of a table and print a leaderboard"
    )
    add_table_args(p)
    p.add_argument("--fusions", help="comma-separated fusion names (default: every registered one)")
    p.add_argument("--test-table", help="test table (default: a seeded, stratified --test-fraction of TABLE)")
    p.add_argument(
        "--test-fraction", type=float, default=0.15, help="test share carved from TABLE without --test-table"
    )
    p.add_argument("-o", "--out", help="results folder (results.json, results.csv, leaderboard.png)")
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.evaluation.classical import classical_rows
    from mmfuse.evaluation.leaderboard import Method, format_table, run_leaderboard
    from mmfuse.registry import FUSIONS
    from mmfuse.tasks import task_kind

    fusions = [f.strip() for f in args.fusions.split(",") if f.strip()] if args.fusions else FUSIONS.list()
    for f in fusions:
        FUSIONS.get(f)  # unknown names fail here with the list of valid ones
    refuse_several_processes(args, "compare")
    predictor = predictor_from_args(args, fusions[0] if fusions else "concat")  # checks the options
    if args.out:  # before any work: a refused -o must not cost the encoding and every training run
        from mmfuse.files import check_output_dir

        check_output_dir(args.out, "results", args.overwrite, table_inputs(args))
    t0 = time.perf_counter()
    splits, data = predictor.prepare(
        args.table, args.val_table, args.test_table, 0.0 if args.test_table else args.test_fraction
    )
    encode_s = time.perf_counter() - t0
    print("schema:\n" + predictor.pipeline.schema.describe())
    print(
        f"encoded {sum(len(d.rows) for d in data.values())} rows in {encode_s:.1f} "
        f"s (cache: {predictor.cache.hits} hits, {predictor.cache.misses} computed)"
    )
    overrides = dict(predictor.model_options)
    hidden = int(overrides.pop("hidden", 64))
    methods = [Method(f, f, model_overrides=overrides) for f in fusions]
    std = predictor.pipeline.target_state.get("std", 1.0)  # 1.0 unless the target is a standardised value
    rows = run_leaderboard(
        splits, methods, predictor.train_config(), None, hidden=hidden, log=lambda line: print(_in_units(line, std))
    )
    rows += classical_rows(splits, splits.spec.task)  # the bar a user would compare against, chosen the same way
    kind = task_kind(splits.spec.task)
    for r in rows:  # regression errors back in the target's units (the model is trained on the standardised target)
        for k, scale in (
            ("test_mae", std),
            ("test_mse", std**2),
            ("best_val", std if kind.target == "values" else 1.0),
        ):
            if isinstance(r.get(k), float):
                r[k] *= scale
    if args.out:
        from pathlib import Path

        from mmfuse.evaluation.leaderboard import write_results

        write_results(
            rows,
            Path(args.out),
            splits.spec.name,
            total_s=time.perf_counter() - t0,
            extra={"model_options": dict(predictor.model_options)},
        )
    print(format_table(rows, sort_by="best_val", higher_is_better=kind.higher_is_better))
    print(
        f"sorted by best_val, the validation {kind.main_metric} that chose each method's checkpoint; the test columns "
        "are reported, never used for a choice."
    )
    print(f"total {time.perf_counter() - t0:.1f} s (encoding {encode_s:.1f} s)")
    failed = [r for r in rows if "error" in r]
    for r in failed:
        print(f"failed: {r['method']}: {r['error']}")
    fusion_rows = [r for r in rows if r.get("kind") != "classical"]
    if fusion_rows and all("error" in r for r in fusion_rows):
        raise CompareFailed(
            f"every method failed ({len(fusion_rows)} of {len(fusion_rows)}); the first error: "
            f"{fusion_rows[0]['method']}: {fusion_rows[0]['error']}"
        )
    return 1 if failed else 0


class CompareFailed(MmfuseError):
    """No method of a comparison trained (the reasons are printed above)."""


def _in_units(line: str, std: float) -> str:
    """A progress line of the leaderboard with its MAE rescaled to the target's units."""
    head, sep, value = line.partition("-> test_mae=")
    if not sep or std == 1.0:
        return line
    try:
        return f"{head}{sep}{float(value) * std:.4f}"
    except ValueError:
        return line
