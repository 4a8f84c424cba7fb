"""``mmfuse embed`` and ``mmfuse retrieve``: cross-modal embeddings and retrieval with a trained model.

The model directory must come from ``mmfuse train`` / ``mmfuse benchmark`` on a built-in dataset
(its config records the dataset and the loader options, so the same split is rebuilt).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="write one modality's embeddings of a dataset split (.npy)")
    e.add_argument("model_dir")
    e.add_argument("--modality", required=True)
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--data-dir")
    e.add_argument("-o", "--out", required=True, help="output .npy file")
    e.set_defaults(func=run_embed)
    r = sub.add_parser("retrieve", help="query in one modality, rank another; prints mAP and R@K against random ranking")
    r.add_argument("model_dir")
    r.add_argument("--query", required=True, help="query modality")
    r.add_argument("--gallery", required=True, help="gallery modality")
    r.add_argument("--split", default="test", choices=["train", "val", "test"])
    r.add_argument("--data-dir")
    r.add_argument("--max-queries", type=int, default=2000, help="evaluate on the first N queries (the gallery is the whole split)")
    r.add_argument("--show", type=int, default=3, help="print the ranked top-5 of this many queries")
    r.add_argument("-o", "--out", help="write the metrics as JSON here")
    r.set_defaults(func=run_retrieve)


def _load(model_dir: str, data_dir: str | None, split: str):
    from mmfuse.data.registry import load_dataset
    from mmfuse.errors import DataError
    from mmfuse.training.serialization import load_model_dir, load_objectives

    model, meta = load_model_dir(model_dir)
    if "dataset" not in meta:
        raise DataError(f"{model_dir!r} does not record its dataset; embed/retrieve need a model trained by 'mmfuse train' or 'mmfuse benchmark'.")
    splits = load_dataset(meta["dataset"], data_dir=data_dir, **meta.get("data_options", {}))
    return model, load_objectives(model_dir), getattr(splits, split)


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from mmfuse.retrieval import embed

    model, objectives, ds = _load(args.model_dir, args.data_dir, args.split)
    z = embed(model, ds, args.modality, objectives)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    np.save(tmp, z)
    os.replace(tmp, out)
    print(f"{z.shape[0]} x {z.shape[1]} embeddings of {args.modality!r} ({args.split}) written to {out}")
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    from mmfuse.retrieval import dataset_labels, embed, random_ranking_metrics, rank, retrieval_metrics

    model, objectives, ds = _load(args.model_dir, args.data_dir, args.split)
    labels = dataset_labels(ds)
    q = embed(model, ds, args.query, objectives)[: args.max_queries]
    g = embed(model, ds, args.gallery, objectives)
    ql = labels[: args.max_queries]
    metrics = {"model": retrieval_metrics(q, g, ql, labels), "random": random_ranking_metrics(ql, labels)}
    print(f"{args.query} -> {args.gallery} on {args.split} ({len(q)} queries, gallery {len(g)}):")
    for name, m in metrics.items():
        print(f"  {name:6s} " + "  ".join(f"{k}={v:.4f}" for k, v in m.items() if not k.startswith("P@")))
    order, scores = rank(q[: args.show], g, top=5)
    for i in range(min(args.show, len(q))):
        hits = ", ".join(f"#{j}(label {labels[j]}, {s:.2f})" for j, s in zip(order[i], scores[i]))
        print(f"  query #{i} (label {ql[i]}): {hits}")
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=2))
    return 0
