"""``mmfuse train DATASET``: train one model on a built-in dataset and save it.

The model is described by the dataset's default encoders plus ``--fusion`` and the options, or by a
YAML/JSON run config with ``model:`` and ``train:`` sections (command-line options win).
Lightning's ``--devices/--strategy/--num-nodes/--precision`` pass straight through, so
``--devices 2 --strategy ddp`` trains with DDP.
"""

from __future__ import annotations

import argparse
import json

import yaml

from mmfuse.cli._common import (
    add_missing_modality_args,
    add_overwrite_arg,
    add_set_arg,
    add_train_args,
    load_config_file,
    missing_modality_options,
    settings_from_args,
    train_config_from_args,
)
from mmfuse.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model on a built-in dataset and save it")
    p.add_argument("dataset", help="built-in dataset name (see `mmfuse list datasets`)")
    p.add_argument("-o", "--out", required=True, help="model directory to write")
    p.add_argument("--fusion", help="registered fusion method (default: concat)")
    p.add_argument("--config", help="YAML/JSON run config with 'model', 'train' and 'data' sections")
    p.add_argument("--data-dir", help="data folder (default: $MMFUSE_DATA_DIR, else ~/.cache/mmfuse/data)")
    p.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset loader option, e.g. n_train=2000 (repeatable)",
    )
    p.add_argument("--hidden", type=int, help="fused representation size")
    add_missing_modality_args(p)
    add_set_arg(p)
    add_train_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--data-option {pair!r} must look like KEY=VALUE.")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from mmfuse.config import ModelConfig, from_dict
    from mmfuse.data.registry import load_dataset
    from mmfuse.evaluation.leaderboard import Method, model_config_for
    from mmfuse.evaluation.predict import predict, task_metrics
    from mmfuse.files import check_output_dir
    from mmfuse.training.fit import fit

    check_output_dir(args.out, "model", args.overwrite, [args.config, args.data_dir])  # before loading or training
    run_cfg = load_config_file(args.config)
    data_opts = {**run_cfg.get("data", {}), **parse_options(args.data_option)}
    splits = load_dataset(args.dataset, data_dir=args.data_dir, **data_opts)
    model_cfg = model_config_for(
        splits, Method(args.dataset, args.fusion or run_cfg.get("model", {}).get("fusion", "concat"))
    )
    sets = settings_from_args(args)
    overrides = {**dict(run_cfg.get("model", {})), **sets["model"]}
    if args.fusion:
        overrides["fusion"] = args.fusion
    overrides.update(missing_modality_options(args))
    if args.hidden:
        overrides["hidden"] = args.hidden
    model_cfg = from_dict(ModelConfig, {**model_cfg.to_dict(), **overrides})
    train_cfg = train_config_from_args(args, {**run_cfg.get("train", {}), **sets["train"]})
    result = fit(
        model_cfg,
        train_cfg,
        splits.train,
        splits.val,
        out_dir=args.out,
        extra_meta={"dataset": args.dataset, "data_options": data_opts},
        overwrite=args.overwrite,
    )
    if result.global_rank == 0:
        metrics = task_metrics(predict(result.model, splits.test), model_cfg.task)
        print(
            json.dumps(
                {
                    "best_val": result.best_score,
                    "epochs": result.epochs_run,
                    "train_time_s": round(result.train_time_s, 2),
                    **{f"test_{k}": v for k, v in metrics.items()},
                },
                indent=2,
            )
        )
        print(f"model saved to {args.out}")
    return 0
