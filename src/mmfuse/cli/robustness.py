"""``mmfuse robustness MODEL_DIR``: removal, missing-rate and noise sweeps of a saved model.

The removal table and the missing-rate sweep are also given for every missing-modality strategy the model has
(``zero``, ``token`` with learned tokens, ``gan`` / ``vae`` with trained imputers), side by side.
"""

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
    p.add_argument(
        "--missing",
        default="all",
        help="missing-modality strategies to compare, comma-separated among zero, token, gan, vae (those the model "
        "has; default all of them, side by side; the noise sweep uses the model's own)",
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


def _strategies(text: str, model: object) -> list[str]:
    """The strategies named by ``--missing`` (``all``: every one the model has; a model without strategies: none)."""
    from mmfuse.errors import ConfigError

    have = list(getattr(model, "missing_strategies", lambda: [])())
    if text.strip() == "all":
        return have
    asked = [s.strip() for s in text.split(",") if s.strip()]
    lacking = [s for s in asked if s not in have]
    if lacking:
        raise ConfigError(f"--missing names {lacking}, which this model lacks; it has {have or ['zero']}.")
    return asked


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
    rates, levels = _floats(args.missing_rates, "--missing-rates"), _floats(args.noise_levels, "--noise-levels")
    own = getattr(model, "missing", None)
    strategies = _strategies(args.missing, model)
    res = evaluate_robustness(model, test, task, rates, levels, seed=args.seed, missing=own)
    by_missing = {
        s: res if s == own else evaluate_robustness(model, test, task, rates, [0.0], [], seed=args.seed, missing=s)
        for s in strategies
    }
    name = meta.get("method") or Path(args.model_dir).name
    print(format_removal_table({name: res}))
    if len(by_missing) > 1 or (by_missing and own not in by_missing):
        print(f"\nmissing-modality strategies side by side (the model's own: {own}):")
        print(format_removal_table({f"missing={s}": r for s, r in by_missing.items()}))
    print(f"\nmissing-rate sweep ({res.metric}):")
    for lvl, v in zip(res.missing_rate.levels, res.missing_rate.values(res.metric)):
        print(f"  {lvl:4.2f}  {v:.4f}")
    for m, sweep in res.noise.items():
        print(
            f"noise on {m} ({res.metric}): "
            + "  ".join(f"{lvl:g}:{v:.4f}" for lvl, v in zip(sweep.levels, sweep.values(res.metric)))
        )
    payload = {"model_dir": str(args.model_dir), "seed": args.seed, "missing_strategy": own, **res.to_dict()}
    payload["by_missing"] = {s: {"clean": r.clean, "removal": r.removal} for s, r in by_missing.items()}
    text = json.dumps(payload, indent=2)
    if args.out:
        out = atomic_write(args.out, text)
    else:  # an extra file of the model folder (its manifest lists it; the model's own files are not touched)
        out = Path(args.model_dir) / "robustness.json"
        add_files(args.model_dir, {out.name: text})
    print(f"written to {out}")
    return 0
