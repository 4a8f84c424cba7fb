"""``mmfuse fit TABLE --target COL -o MODEL_DIR``: train a multimodal model on a table of files, text and numbers.

Prints the inferred schema (override it with ``--schema FILE``), encodes the columns (frozen-encoder
outputs come from the embedding cache when seen before), trains with early stopping on
``--val-table`` or a carved validation part, and writes the model directory atomically. Calls
:class:`mmfuse.predictor.MultimodalPredictor`, exactly as the Python API does.
"""

from __future__ import annotations

import argparse
import json
import os

from mmfuse.cli._common import (
    add_missing_modality_args,
    add_overwrite_arg,
    add_reading_args,
    add_set_arg,
    add_train_args,
    limits_from_args,
    missing_modality_options,
    settings_from_args,
    train_options_from_args,
)
from mmfuse.errors import ConfigError


def add_table_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``fit`` and ``compare``: target, schema, paths, cache, model size and missing-modality
    handling."""
    p.add_argument("table", help="CSV / TSV / Parquet / JSON-lines table, one row per sample")
    p.add_argument("--target", help="column to predict (or 'target:' in the schema file)")
    p.add_argument(
        "--schema",
        help="YAML/JSON schema overriding the inferred one (types, groups, dropped columns, encoder options)",
    )
    p.add_argument("--val-table", help="validation table (default: a seeded, stratified share of TABLE)")
    p.add_argument(
        "--val-fraction", type=float, default=0.15, help="validation share carved from TABLE without --val-table"
    )
    p.add_argument(
        "--drop-missing-target",
        action="store_true",
        help="leave out rows whose target is empty (they are listed) instead of refusing",
    )
    add_reading_args(p)
    p.add_argument("--no-cache", action="store_true", help="recompute every frozen-encoder embedding")
    p.add_argument("--hidden", type=int, help="fused representation size")
    p.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="NAME[=WEIGHT]",
        help="an extra training term beside the task loss, e.g. infonce=0.5 or cca (see "
        "`mmfuse list objectives`); repeatable. "
        "Trains the shared embeddings that 'mmfuse retrieve' ranks",
    )
    add_missing_modality_args(p)
    add_set_arg(p)
    add_overwrite_arg(p)


def add_preset_arg(p: argparse.ArgumentParser) -> None:
    from mmfuse.evaluation.selection import DEFAULT_PRESET, PRESETS

    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=DEFAULT_PRESET,
        help="how much selection: fast (linear + concat, one validation split), medium (linear per modality, "
        "concat, late_mean, 5-fold CV under 5,000 rows), best (7 fusions, 2x5-fold CV under 2,000 rows); "
        "every preset ensembles its candidates and refits on all rows",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="score this many selection candidates at once in worker processes, the CPU cores shared out (default 1)",
    )


def table_inputs(args: argparse.Namespace) -> list:
    """The files a table command reads, which its output may never be or contain."""
    return [getattr(args, k, None) for k in ("table", "val_table", "test_table", "schema")]


def refuse_several_processes(args: argparse.Namespace, command: str) -> None:
    """``compare`` trains its methods one after another in this process: refuse DDP up front, in one sentence."""
    devices = str(getattr(args, "devices", None) or "1")
    if devices not in ("1", "auto") or (args.num_nodes or 1) > 1 or (args.strategy or "").startswith("ddp"):
        raise ConfigError(
            f"'mmfuse {command}' trains one method after another in a single process, "
            f"so --devices/--num-nodes/--strategy ddp "
            "do not apply; train the chosen method with 'mmfuse fit --devices N --strategy ddp'."
        )


def objective_terms(items: list[str], fusion: str, base: dict) -> dict:
    """``TrainConfig.objectives`` with the task's own loss (``"task"``: the fusion's default objective, else the task
    kind's, chosen when the model is built) plus one term per ``NAME[=WEIGHT]``, named after the objective."""
    from mmfuse.registry import FUSIONS, OBJECTIVES

    terms = dict(base) or {
        "task": {"objective": getattr(FUSIONS.get(fusion), "default_objective", None), "weight": 1.0}
    }
    for item in items:
        name, _, weight = item.partition("=")
        OBJECTIVES.get(name.strip())  # an unknown name fails here, with the valid ones
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(
                f"--objective {item!r}: the weight after '=' must be a number, e.g. infonce=0.5."
            ) from None
        terms[name.strip()] = {"objective": name.strip(), "weight": w}
    return terms


def predictor_from_args(args: argparse.Namespace, fusion: str | None = None):
    """A :class:`MultimodalPredictor` configured from the shared options (only the options given: the predictor
    applies its defaults and the capacity rule under them)."""
    from mmfuse.predictor import MultimodalPredictor

    sets = settings_from_args(args)
    if args.objective and fusion is None:
        fusion = "concat"  # an extra objective shapes one fusion model's shared embeddings: no selection
    if args.objective:
        sets["train"]["objectives"] = objective_terms(
            args.objective, fusion or "concat", sets["train"].get("objectives", {})
        )
    train = train_options_from_args(args, sets["train"])
    model = {**sets["model"], **missing_modality_options(args)}
    if args.hidden:
        model["hidden"] = args.hidden
    from mmfuse.config import ModelConfig, from_dict

    from_dict(ModelConfig, {"encoders": {}, **model})  # a wrong field or type is refused now, before any work
    return MultimodalPredictor(
        target=args.target,
        fusion=fusion,
        preset=getattr(args, "preset", "medium"),
        schema=args.schema,
        base_dir=args.base_dir,
        allow_outside=args.allow_outside,
        time_limit=args.max_time,
        val_fraction=args.val_fraction,
        drop_missing_target=args.drop_missing_target,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
        seed=args.seed,
        train=train,
        model=model,
        limits=limits_from_args(args),
        jobs=getattr(args, "jobs", 1),
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="train a model on a table (image/audio paths, text, numbers, categories) and save it"
    )
    add_table_args(p)
    p.add_argument("-o", "--out", required=True, help="model directory to write")
    p.add_argument(
        "--fusion",
        help="train this one registered fusion method (see `mmfuse list`) with early stopping on a validation "
        "part, instead of selecting among the preset's candidates",
    )
    add_preset_arg(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print the inferred schema and stop (a starting point for --schema)"
    )
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.files import check_output_dir

    if not args.dry_run:  # before any work: a refused -o must not cost a training run
        check_output_dir(args.out, "model", args.overwrite, table_inputs(args))
    predictor = predictor_from_args(args, args.fusion)
    schema = predictor.infer_schema(args.table)
    if os.environ.get("LOCAL_RANK", "0") == "0":  # the processes a distributed run launches stay quiet
        print("schema:\n" + schema.describe(), flush=True)
    if args.dry_run:
        print(json.dumps({k: v for k, v in schema.to_dict().items() if k != "options"}, indent=2))
        return 0
    predictor.fit(args.table, val_table=args.val_table, checkpoint_dir=args.out)
    if predictor.meta.get("global_rank", 0) != 0:
        return 0  # another process of a distributed run: the first one saves and reports
    predictor.save(args.out, overwrite=args.overwrite, inputs=table_inputs(args))
    m = predictor.metrics
    sel = predictor.meta.get("selection")
    for it in m.get("issue_log", [])[:10]:
        print(
            f"  row {it['row']}, {it['column']}: {it['reason']}"
            + (f" [{it['file']}]" if it.get("file") else "")
            + f" -> {it['action']}"
        )
    issues = {k: v for k, v in m["issues"].items() if v}
    print(
        json.dumps(
            {
                ("out_of_fold" if sel else "validation"): m["validation"],
                "rows": m["rows"],
                "epochs": predictor.meta["epochs"],
                "train_time_s": round(predictor.meta["train_time_s"], 2),
                "encode_time_s": round(predictor.meta["encode_time_s"], 2),
                "cache": m["cache"],
                "issues": issues,
            },
            indent=2,
        )
    )
    if sel:
        from mmfuse.predictor import selection_table

        print(f"selection ({sel['preset']}): {sel['protocol']}")
        print(selection_table(sel["candidates"], schema.task))
        print(f"chosen: {sel['reason']}")
    else:
        print("\n".join(predictor.plan))
    print(f"model saved to {args.out}")
    return 0
