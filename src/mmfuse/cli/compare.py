"""``mmfuse compare TABLE --target COL``: a leaderboard of fusion methods and linear baselines on ONE cached
encoding of a table, chosen honestly.

The table is encoded once (frozen-encoder outputs come from the embedding cache, so a second run
re-encodes nothing). Every candidate (the fusion methods, default all registered, ``--fusions`` to choose,
beside scikit-learn's linear models on all columns and on each modality) is scored by the selection of
``mmfuse fit`` (:mod:`mmfuse.evaluation.selection`: out-of-fold predictions by k-fold cross-validation on tables
under 5,000 rows, else one validation split; ``--preset`` sets folds and repeats), with its spread over folds; the
selected model (the best candidate or a greedy ensemble of them) is refitted on every training row. Test columns
appear only with ``--test-table`` (or an explicit ``--test-fraction`` kept out before anything is fitted): each
candidate is then refitted on every training row and scored on it, never chosen on it. ``-o`` writes
``results.json``, ``results.csv``, ``leaderboard.png`` and the selected model in ``model/``. Regression errors are
in the target's units. The exit status tells the truth: 0 when every method trained, 1 when some failed (each is
named with its error), 2 when all fusion methods failed or the input was refused.
"""

from __future__ import annotations

import argparse
import time

from mmfuse.cli._common import add_train_args
from mmfuse.cli.fit import add_preset_arg, add_table_args, predictor_from_args, refuse_several_processes, table_inputs
from mmfuse.errors import MmfuseError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="score fusion methods and linear baselines on one cached encoding of a table (a leaderboard)"
    )
    add_table_args(p)
    p.add_argument("--fusions", help="comma-separated fusion names (default: every registered one)")
    add_preset_arg(p)
    p.add_argument("--test-table", help="test table: each candidate is refitted and scored on it, never chosen on it")
    p.add_argument(
        "--test-fraction", type=float, default=0.0, help="test share carved from TABLE without --test-table (default 0)"
    )
    p.add_argument(
        "--seeds",
        help="comma-separated seeds, e.g. 0,1,2: the whole comparison per seed (folds, models), reported as the mean "
        "with its spread over seeds (cv_std, test_*_std); default: --seed alone",
    )
    p.add_argument("-o", "--out", help="results folder (results.json, results.csv, leaderboard.png, model/)")
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmfuse.evaluation.leaderboard import format_table, over_seeds, parse_seeds, write_results
    from mmfuse.registry import FUSIONS
    from mmfuse.tasks import task_kind

    fusions = [f.strip() for f in args.fusions.split(",") if f.strip()] if args.fusions else FUSIONS.list()
    for f in fusions:
        FUSIONS.get(f)  # unknown names fail here with the list of valid ones
    refuse_several_processes(args, "compare")
    predictor = predictor_from_args(args, None)  # checks the options
    predictor.fusions = fusions
    if args.out:  # before any work: a refused -o must not cost the encoding and every training run
        from mmfuse.files import check_output_dir

        check_output_dir(args.out, "results", args.overwrite, table_inputs(args))
    t0 = time.perf_counter()
    seeds = parse_seeds(args.seeds, args.seed)
    per_seed = []
    for seed in seeds:
        predictor.seed = predictor.train_options["seed"] = seed
        rows = predictor.leaderboard(
            args.table, args.val_table, args.test_table, 0.0 if args.test_table else args.test_fraction
        )
        per_seed.append([{**r, "seed": seed} for r in rows])
    rows = per_seed[0] if len(seeds) == 1 else over_seeds(per_seed)
    pipe = predictor.pipeline
    assert pipe is not None
    print("schema:\n" + pipe.schema.describe())
    print("\n".join(predictor.plan))
    m = predictor.metrics
    cache = m["cache"]
    print(
        f"encoded in {predictor.meta['encode_time_s']:.1f} s (cache: {cache['hits']} hits, {cache['misses']} computed)"
    )
    kind = task_kind(pipe.schema.task)
    std = pipe.target_state.get("std", 1.0) if kind.target == "values" else 1.0
    sel = predictor.meta["selection"]
    score = f"cv_{kind.main_metric}"
    if args.out:
        write_results(
            rows,
            Path(args.out),
            pipe.schema.target,
            total_s=time.perf_counter() - t0,
            extra={
                "model_options": dict(predictor.model_options),
                "protocol": sel["protocol"],
                "target_std": std,
                "seeds": seeds,
                **({"per_seed": per_seed} if len(seeds) > 1 else {}),
                "model_seed": seeds[-1],
            },
        )
        predictor.save(Path(args.out) / "model", overwrite=True, inputs=table_inputs(args))
    print(format_table(rows, sort_by=score, higher_is_better=kind.higher_is_better))
    spread = "folds" if len(seeds) == 1 else f"the {len(seeds)} seeds {','.join(map(str, seeds))} (means shown)"
    print(
        f"sorted by {score}: the out-of-fold {kind.main_metric} of {sel['protocol']} (cv_std: its spread over "
        f"{spread}); test columns, when shown, are reported, never used for a choice."
    )
    print(f"selected: {sel['reason']}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    failed = [r for r in rows if "error" in r]
    for r in failed:
        print(f"failed: {r['method']}: {r['error']}")
    fusion_rows = [r for r in rows if r.get("kind") == "fusion"]
    if fusion_rows and all("error" in r for r in fusion_rows):
        raise CompareFailed(
            f"every method failed ({len(fusion_rows)} of {len(fusion_rows)}); the first error: "
            f"{fusion_rows[0]['method']}: {fusion_rows[0]['error']}"
        )
    return 1 if failed else 0


class CompareFailed(MmfuseError):
    """No method of a comparison trained (the reasons are printed above)."""
