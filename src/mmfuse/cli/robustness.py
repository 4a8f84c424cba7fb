"""``mmfuse robustness MODEL_DIR``: removal, missing-rate and noise sweeps of a saved model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmfuse.cli._common import add_overwrite_arg, add_test_data_args, test_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness",
        help="measure a saved model with each modality removed, under a missing-rate sweep and under Gaussian noise",
    )
    p.add_argument("model_dir", help="model directory written by 'mmfuse train' or 'mmfuse benchmark'")
    p.add_argument(
        "--data-dir", help="data folder of the dataset named in the model's config.json (default: $MMFUSE_DATA_DIR)"
    )
    p.add_argument(
        "-o",
        "--out",
        help="JSON file to write (default: MODEL_DIR/robustness.json, which 'mmfuse report MODEL_DIR' then shows)",
    )
    p.add_argument("--max-samples", type=int, default=0, help="evaluate on the first N test samples only (0 = all)")
    p.add_argument(
        "--noise-levels",
        default="0,0.25,0.5,1,1.5,2,3",
        help="comma-separated noise levels in units of the per-feature std",
    )
    p.add_argument(
        "--missing-rates",
        default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
        help="comma-separated fractions of samples that lose one modality",
    )
    p.add_argument("--seed", type=int, default=0)
    add_test_data_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def _floats(text: str, option: str) -> list[float]:
    from mmfuse.errors import ConfigError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} must be comma-separated numbers; got {text!r}.") from exc


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import Subset

    from mmfuse.data.base import dataset_len
    from mmfuse.evaluation.robustness import evaluate_robustness, format_removal_table
    from mmfuse.files import add_files, atomic_write, check_output_file
    from mmfuse.training.serialization import load_model_dir

    if args.out:
        check_output_file(args.out, [args.model_dir], args.overwrite)
    model, meta = load_model_dir(args.model_dir)
    test, _ = test_data(args.model_dir, meta, args)
    if args.max_samples and dataset_len(test) > args.max_samples:
        test = Subset(test, range(args.max_samples))
    task = meta["model"].get("task", "classification")
    res = evaluate_robustness(
        model,
        test,
        task,
        _floats(args.missing_rates, "--missing-rates"),
        _floats(args.noise_levels, "--noise-levels"),
        seed=args.seed,
    )
    name = meta.get("method") or Path(args.model_dir).name
    print(format_removal_table({name: res}))
    print(f"\nmissing-rate sweep ({res.metric}):")
    for lvl, v in zip(res.missing_rate.levels, res.missing_rate.values(res.metric)):
        print(f"  {lvl:4.2f}  {v:.4f}")
    for m, sweep in res.noise.items():
        print(
            f"noise on {m} ({res.metric}): "
            + "  ".join(f"{lvl:g}:{v:.4f}" for lvl, v in zip(sweep.levels, sweep.values(res.metric)))
        )
    text = json.dumps({"model_dir": str(args.model_dir), "seed": args.seed, **res.to_dict()}, indent=2)
    if args.out:
        out = atomic_write(args.out, text)
    else:  # an extra file of the model folder (its manifest lists it; the model's own files are not touched)
        out = Path(args.model_dir) / "robustness.json"
        add_files(args.model_dir, {out.name: text})
    print(f"written to {out}")
    return 0
