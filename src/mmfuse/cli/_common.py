"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmfuse.config import TrainConfig, from_dict, load_mapping
from mmfuse.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import Dataset


def add_train_args(p: argparse.ArgumentParser) -> None:
    """Training options; the hardware ones pass straight to ``lightning.Trainer``."""
    g = p.add_argument_group("training")
    g.add_argument("--max-epochs", type=int, help="upper bound on epochs (early stopping usually ends sooner)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="AdamW learning rate (the peak of a schedule)")
    g.add_argument(
        "--lr-schedule",
        choices=["constant", "onecycle", "cosine"],
        help="learning-rate schedule, stepped per batch (default: constant; onecycle: Smith & Topin 2019)",
    )
    g.add_argument("--patience", type=int, help="epochs without validation improvement before stopping")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--time-limit",
        dest="max_time",
        type=float,
        help="seconds for the run: training stops and keeps the best checkpoint (fit's selection: scoring "
        "stops adding candidates, a quarter is kept for the refit)",
    )
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    h = p.add_argument_group("hardware (passed to lightning.Trainer)")
    h.add_argument("--accelerator", help="cpu, gpu, auto ...")
    h.add_argument("--devices", help="number of devices, e.g. 2 with --strategy ddp")
    h.add_argument("--strategy", help="auto, ddp, ddp_spawn, fsdp ...")
    h.add_argument("--num-nodes", type=int)
    h.add_argument(
        "--precision",
        help="32-true, bf16-mixed, 16-mixed ..., or auto (bf16 + channels-last for CNNs on a CPU with bf16)",
    )
    h.add_argument(
        "--workers",
        type=int,
        help="DataLoader worker processes per device: they decode images and audio for the frozen encoders and "
        "load training batches (default 0: the main process)",
    )


def add_missing_modality_args(p: argparse.ArgumentParser) -> None:
    """``--modality-dropout P`` and ``--[no-]missing-token``: how a model learns to cope with absent modalities."""
    g = p.add_argument_group("missing modalities")
    g.add_argument(
        "--modality-dropout",
        type=float,
        metavar="P",
        help="training-time probability of dropping each modality of each sample, in [0, 1)",
    )
    g.add_argument(
        "--missing-token",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="learned token for an absent modality instead of zeros (--no-missing-token "
        "overrides a config file that sets it)",
    )


def missing_modality_options(args: argparse.Namespace) -> dict:
    """The ModelConfig fields (``modality_dropout``, ``missing_token``) set by :func:`add_missing_modality_args`."""
    out: dict = {}
    p = getattr(args, "modality_dropout", None)
    if p is not None:
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"--modality-dropout must be a probability in [0, 1); got {p}.")
        out["modality_dropout"] = p
    token = getattr(args, "missing_token", None)
    if token is not None:
        out["missing_token"] = bool(token)
    return out


def train_options_from_args(args: argparse.Namespace, base: dict | None = None) -> dict:
    """The TrainConfig fields of (config file section) ``base`` and of the options given on the command line (only
    those given: defaults are the caller's), checked against TrainConfig now."""
    data = dict(base or {})
    for key in (
        "max_epochs",
        "batch_size",
        "lr",
        "lr_schedule",
        "patience",
        "seed",
        "max_time",
        "accelerator",
        "strategy",
        "num_nodes",
        "precision",
    ):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    workers = getattr(args, "workers", None)
    if workers is not None:
        if workers < 0:
            raise ConfigError(f"--workers must be 0 or more (worker processes per device); got {workers}.")
        data["num_workers"] = workers
    if getattr(args, "devices", None) is not None:
        data["devices"] = int(args.devices) if str(args.devices).isdigit() else args.devices
    if getattr(args, "no_progress", False):
        data["progress_bar"] = False
    from_dict(TrainConfig, data)  # a wrong field or type is refused now
    return data


def train_config_from_args(args: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    """TrainConfig from (config file section) ``base`` overridden by the options given on the command line."""
    return from_dict(TrainConfig, train_options_from_args(args, base))


def load_config_file(path: str | None) -> dict:
    """Sections ``model`` and ``train`` (and others) of a YAML/JSON run config, or ``{}``."""
    return load_mapping(path) if path else {}


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: the one way to replace an existing output (never an input, never a file mmfuse did not
    write)."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output; in a folder, only mmfuse's own files are replaced "
        "and nothing else is deleted",
    )


def add_reading_args(p: argparse.ArgumentParser) -> None:
    """How the cells of a table are read: base folder and path policy, embedding cache, per-cell limits."""
    p.add_argument(
        "--base-dir",
        help="folder that relative paths start from (default: the table's folder); a path leaving it is "
        "the row's issue",
    )
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="read paths that leave the base folder (absolute paths, .., symlinks); "
        "off by default, so a table cannot make mmfuse read any file you can",
    )
    p.add_argument(
        "--cache-dir", help="embedding cache folder (default: $MMFUSE_CACHE_DIR or ~/.cache/mmfuse/embeddings)"
    )
    add_limit_args(p)


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """Per-cell read limits; a file beyond them is that row's issue (see :class:`mmfuse.tabular.readers.Limits`)."""
    g = p.add_argument_group("read limits (a file beyond them becomes that row's issue)")
    g.add_argument("--max-file-mb", type=float, help="largest file read from a cell, in MB (default 512)")
    g.add_argument(
        "--max-image-pixels", type=int, help="largest image, width x height, checked from its header (default 89478485)"
    )


def limits_from_args(args: argparse.Namespace) -> dict:
    return {
        "max_file_mb": getattr(args, "max_file_mb", None),
        "max_image_pixels": getattr(args, "max_image_pixels", None),
    }


def add_set_arg(p: argparse.ArgumentParser) -> None:
    """``--set model.KEY=VALUE`` / ``--set train.KEY=VALUE``: any field of the config types, nested with dots."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any ModelConfig / TrainConfig field, e.g. model.fusion_params.rank=8, "
        "model.head=mlp, train.weight_decay=0.01 "
        "(values read as YAML; repeatable; the options above win)",
    )


def settings_from_args(args: argparse.Namespace) -> dict[str, dict]:
    """``{"model": {...}, "train": {...}}`` from ``--set``; the first key after the section must be a field of
    :class:`~mmfuse.config.ModelConfig` / :class:`~mmfuse.config.TrainConfig` (checked against the dataclass, so a
    new config field is settable with no edit here); deeper keys go into that field's mapping."""
    import dataclasses

    import yaml

    from mmfuse.config import ModelConfig

    sections = {"model": ModelConfig, "train": TrainConfig}
    out: dict[str, dict] = {"model": {}, "train": {}}
    for item in getattr(args, "set", None) or []:
        key, sep, raw = item.partition("=")
        parts = [k.strip() for k in key.split(".")]
        if not sep or len(parts) < 2 or parts[0] not in sections or not all(parts):
            raise ConfigError(
                f"--set {item!r} must look like model.KEY=VALUE or train.KEY=VALUE (e.g. model.fusion_params.rank=8)."
            )
        fields = {f.name for f in dataclasses.fields(sections[parts[0]])}
        if parts[1] not in fields:
            raise ConfigError(
                f"--set {item!r}: {parts[1]!r} is not a {sections[parts[0]].__name__} field; "
                f"valid fields: {sorted(fields)}."
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({str(exc).splitlines()[0]}).") from None
        node = out[parts[0]]
        for k in parts[1:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r} nests under {k!r}, which an earlier --set gave a plain value.")
        node[parts[-1]] = value
    return out


def load_table_model(model_dir: str, args: argparse.Namespace):  # -> MultimodalPredictor
    """A model from ``fit``, reading tables as the options of :func:`add_reading_args` say."""
    from mmfuse.predictor import MultimodalPredictor

    return MultimodalPredictor.load(
        model_dir,
        base_dir=args.base_dir,
        cache_dir=args.cache_dir,
        limits=limits_from_args(args),
        allow_outside=args.allow_outside,
    )


def add_test_data_args(p: argparse.ArgumentParser) -> None:
    """Where a saved model's test rows come from: its built-in dataset, or ``--table`` for a model from ``fit``."""
    p.add_argument("--table", help="labelled table (CSV / Parquet) to measure a model written by 'mmfuse fit' on")
    add_reading_args(p)


def test_data(model_dir: str, meta: dict, args: argparse.Namespace) -> tuple[Dataset, list[str]]:
    """``(test dataset, class names)`` of a saved model: the labelled rows of ``--table`` for a table model (encoded by
    its own saved preprocessing), else the test split of the built-in dataset its config names."""
    from mmfuse.errors import DataError

    if meta.get("kind") == "mmfuse-table-predictor":
        if not getattr(args, "table", None):
            raise DataError(
                f"{model_dir!r} was written by 'mmfuse fit'; pass --table TABLE, a labelled "
                f"table with its columns, to measure it on."
            )
        predictor = load_table_model(model_dir, args)
        data, _, _ = predictor.labelled(args.table)
        return data.dataset, [str(c) for c in predictor.pipeline.target_state.get("classes", [])]
    if not meta.get("dataset"):
        raise DataError(
            f"{model_dir}/config.json names no dataset; measure it from Python with "
            f"mmfuse.evaluation.robustness.evaluate_robustness."
        )
    from mmfuse.data.registry import load_dataset

    splits = load_dataset(meta["dataset"], data_dir=getattr(args, "data_dir", None), **meta.get("data_options", {}))
    return splits.test, list(splits.spec.class_names)
