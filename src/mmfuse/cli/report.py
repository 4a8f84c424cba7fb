"""``mmfuse report PATH``: one self-contained HTML page for a model dir or a benchmark results dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmfuse.cli._common import add_overwrite_arg, add_test_data_args, test_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write a self-contained HTML report of a model directory or a benchmark results folder"
    )
    p.add_argument(
        "path",
        help="model directory (config.json + model.safetensors) or benchmark results folder (results.json + models/)",
    )
    p.add_argument("-o", "--out", help="HTML file to write (default: PATH/report.html)")
    p.add_argument(
        "--data-dir", help="data folder of the dataset named in config.json / results.json (default: $MMFUSE_DATA_DIR)"
    )
    p.add_argument(
        "--max-samples",
        type=int,
        default=2000,
        help="test samples used for the confusion matrix, weights and robustness (default 2000; 0 = all)",
    )
    add_test_data_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.evaluation.report import build_report, write_report
    from mmfuse.files import check_output_file

    if args.out:
        check_output_file(args.out, [args.path], args.overwrite)
    if (Path(args.path) / "config.json").is_file() and not (Path(args.path) / "results.json").is_file():  # one model
        from mmfuse.evaluation.report import build_model_report
        from mmfuse.training.serialization import read_config

        test, classes = test_data(args.path, read_config(args.path), args)
        text = build_model_report(args.path, test=test, class_names=classes, max_samples=args.max_samples or None)
    else:
        text = build_report(args.path, data_dir=args.data_dir, max_samples=args.max_samples or None)
    out = write_report(text, args.out or Path(args.path) / "report.html", overwrite=bool(args.out) or args.overwrite)
    print(f"report written to {out} ({len(text) / 1024:.0f} KiB)")
    return 0
