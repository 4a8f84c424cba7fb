"""``mmfuse fit TABLE --target COL -o MODEL_DIR``: train a multimodal model on a table of files, text and numbers.

Prints the inferred schema (override it with ``--schema FILE``), encodes the columns (frozen-encoder
outputs come from the embedding cache when seen before), trains with early stopping on
``--val-table`` or a carved validation part, and writes the model directory atomically. Calls
:class:`mmfuse.predictor.MultimodalPredictor`, exactly as the Python API does.
"""

from __future__ import annotations

import argparse
import json

from mmfuse.cli._common import add_missing_modality_args, add_train_args, missing_modality_options, train_config_from_args


def add_table_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``fit`` and ``compare``: target, schema, paths, cache, model size and missing-modality handling."""
    p.add_argument("table", help="CSV / TSV / Parquet / JSON-lines table, one row per sample")
    p.add_argument("--target", help="column to predict (or 'target:' in the schema file)")
    p.add_argument("--schema", help="YAML/JSON schema overriding the inferred one (types, groups, dropped columns, encoder options)")
    p.add_argument("--val-table", help="validation table (default: a seeded, stratified share of TABLE)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="validation share carved from TABLE without --val-table")
    p.add_argument("--base-dir", help="folder that relative paths start from; paths outside it are refused (default: the table's folder)")
    p.add_argument("--drop-missing-target", action="store_true", help="leave out rows whose target is empty (they are listed) instead of refusing")
    p.add_argument("--cache-dir", help="embedding cache folder (default: $MMFUSE_CACHE_DIR or ~/.cache/mmfuse/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="recompute every frozen-encoder embedding")
    p.add_argument("--hidden", type=int, help="fused representation size")
    add_missing_modality_args(p)


def predictor_from_args(args: argparse.Namespace, fusion: str = "concat"):
    """A :class:`MultimodalPredictor` configured from the shared options."""
    from mmfuse.predictor import MultimodalPredictor

    from mmfuse.predictor import TRAIN_DEFAULTS

    train = train_config_from_args(args, {**TRAIN_DEFAULTS, "progress_bar": not args.no_progress})
    model = missing_modality_options(args)
    if args.hidden:
        model["hidden"] = args.hidden
    return MultimodalPredictor(
        target=args.target, fusion=fusion, schema=args.schema, base_dir=args.base_dir, time_limit=args.max_time,
        val_fraction=args.val_fraction, drop_missing_target=args.drop_missing_target, cache_dir=args.cache_dir,
        use_cache=not args.no_cache, progress=not args.no_progress, seed=args.seed, train=train, model=model,
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="train a model on a table (image/audio paths, text, numbers, categories) and save it")
    add_table_args(p)
    p.add_argument("-o", "--out", required=True, help="model directory to write")
    p.add_argument("--fusion", default="concat", help="registered fusion method (see `mmfuse list`)")
    p.add_argument("--dry-run", action="store_true", help="print the inferred schema and stop (a starting point for --schema)")
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    predictor = predictor_from_args(args, args.fusion)
    schema = predictor.infer_schema(args.table)
    print("schema:\n" + schema.describe(), flush=True)
    if args.dry_run:
        print(json.dumps({k: v for k, v in schema.to_dict().items() if k != "options"}, indent=2))
        return 0
    predictor.fit(args.table, val_table=args.val_table)
    predictor.save(args.out)
    m = predictor.metrics
    issues = {k: v for k, v in m["issues"].items() if v}
    print(json.dumps({"validation": m["validation"], "rows": m["rows"], "epochs": predictor.meta["epochs"], "train_time_s": round(predictor.meta["train_time_s"], 2),
                      "encode_time_s": round(predictor.meta["encode_time_s"], 2), "cache": m["cache"], "issues": issues}, indent=2))
    print(f"model saved to {args.out}")
    return 0
