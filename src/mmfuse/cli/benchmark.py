"""``mmfuse benchmark NAME``: leaderboards on real benchmarks.

The choices are the benchmarks declared in :data:`mmfuse.benchmarks.BENCHMARKS` (each module defines
``benchmark(out_dir, data_dir, quick, fusions, train_cfg, seed, **options)`` and ``DEFAULTS``, its default
TrainConfig fields, quick and full).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import time
from pathlib import Path

from mmfuse.benchmarks import BENCHMARKS
from mmfuse.cli._common import add_overwrite_arg, add_train_args, missing_modality_options, train_config_from_args
from mmfuse.errors import ConfigError
from mmfuse.evaluation.jobs import check_jobs


def available() -> dict[str, str]:
    """``{benchmark name: module}`` of the declared benchmarks (:data:`mmfuse.benchmarks.BENCHMARKS`)."""
    return {name: info.module for name, info in sorted(BENCHMARKS.items())}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="train fusion methods + unimodal baselines on a real benchmark and print a leaderboard"
    )
    p.add_argument(
        "dataset",
        choices=list(available()),
        help="benchmark to run: " + "; ".join(f"{n} ({i.summary})" for n, i in sorted(BENCHMARKS.items())),
    )
    p.add_argument(
        "--data-dir", help="data folder (default: $MMFUSE_DATA_DIR, else ~/.cache/mmfuse/data, downloaded if absent)"
    )
    p.add_argument("-o", "--out", default=None, help="results folder (default: results/<dataset>[-quick])")
    p.add_argument("--quick", action="store_true", help="small subset and few epochs (minutes on 2 CPU cores)")
    p.add_argument(
        "--fusions",
        help="comma-separated fusion names (default: every registered one); avmnist_retrieval: "
        "its methods (deep_cca, infonce, contrastive_margin, subspace)",
    )
    p.add_argument(
        "--modality-dropout",
        type=float,
        metavar="P",
        help="avmnist_robustness: modality-dropout rate of the +moddrop variants (default 0.5)",
    )
    p.add_argument(
        "--seeds",
        help="comma-separated seeds, e.g. 0,1,2: the whole benchmark per seed (data pairing and noise, training), "
        "each written to OUT/seed-K, and OUT/results.json with every row's mean and std over the seeds; the rank "
        "column claims an order only where the gap exceeds the spread (default: --seed alone)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many methods at once in worker processes, the CPU cores shared out (default 1; "
        "leaderboards: " + ", ".join(sorted(n for n, i in BENCHMARKS.items() if "jobs" in i.options)) + ")",
    )
    add_train_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.evaluation.leaderboard import parse_seeds
    from mmfuse.files import check_output_dir
    from mmfuse.registry import FUSIONS

    mod = importlib.import_module(available()[args.dataset])
    cfg = train_config_from_args(args, dict(mod.DEFAULTS["quick" if args.quick else "full"]))
    out = args.out or f"results/{args.dataset}{'-quick' if args.quick else ''}"
    fusions = [f.strip() for f in args.fusions.split(",")] if args.fusions else None
    if not hasattr(
        mod, "METHODS"
    ):  # a benchmark with its own METHODS (e.g. retrieval objectives) checks the names itself
        for f in fusions or []:
            FUSIONS.get(f)  # unknown names fail here with the list of valid ones
    extra: dict[str, object] = {}
    seeds = parse_seeds(args.seeds, cfg.seed)
    if check_jobs(args.jobs) > 1:
        if "jobs" not in BENCHMARKS[args.dataset].options:
            with_it = sorted(name for name, info in BENCHMARKS.items() if "jobs" in info.options)
            raise ConfigError(
                f"--jobs does not apply to benchmark {args.dataset!r}; it runs the methods of: {', '.join(with_it)}."
            )
        extra["jobs"] = args.jobs
    if getattr(args, "modality_dropout", None) is not None:
        if "dropout" not in BENCHMARKS[args.dataset].options:
            with_it = sorted(name for name, info in BENCHMARKS.items() if "dropout" in info.options)
            raise ConfigError(
                f"--modality-dropout does not apply to benchmark {args.dataset!r}; it sets "
                f"the +moddrop variants of: {', '.join(with_it)}."
            )
        extra["dropout"] = missing_modality_options(args)["modality_dropout"]  # refuses rates outside [0, 1)
    check_output_dir(out, "results", args.overwrite, [args.data_dir])  # before any training: a refused -o costs nothing
    t0 = time.perf_counter()
    per_seed = []
    for seed in seeds:
        per_seed.append(
            mod.benchmark(
                out_dir=out if len(seeds) == 1 else Path(out) / f"seed-{seed}",
                data_dir=args.data_dir,
                quick=args.quick,
                fusions=fusions,
                train_cfg=dataclasses.replace(cfg, seed=seed),
                seed=seed,
                **extra,
            )
        )
    if len(seeds) > 1:
        summarise_seeds(per_seed, seeds, Path(out), args.dataset, time.perf_counter() - t0)
    print(f"results written to {out}/")
    return 0


def summarise_seeds(per_seed: list[list[dict]], seeds: list[int], out: Path, name: str, seconds: float) -> None:
    """Mean and std over seeds of every row, ranked where the gap exceeds the spread; printed and written to ``out``
    (results.json with every seed's rows, results.csv, leaderboard.png)."""
    from mmfuse.evaluation.leaderboard import format_table, main_test_metric, over_seeds, rank_rows, write_results

    rows = over_seeds(per_seed)
    key = main_test_metric(rows)
    if key is not None:
        rows = rank_rows(rows, key, higher_is_better=key != "test_mae")
    write_results(rows, out, name, total_s=seconds, extra={"seeds": seeds, "per_seed": per_seed})
    print(
        f"\nover seeds {','.join(map(str, seeds))}: mean and std (population) of each row; a rank is shared (=k) "
        "where the gap to the row above is within the larger std"
    )
    print(format_table(rows))
