"""``mmfuse embed`` and ``mmfuse retrieve``: cross-modal embeddings and retrieval with a trained model.

A model from ``mmfuse train`` / ``mmfuse benchmark`` is measured on its built-in dataset (its config records the
dataset and the loader options, so the same split is rebuilt); a model from ``mmfuse fit`` on the labelled rows of
``--table`` (relevance = same target value), encoded by the model's own saved preprocessing.
"""

from __future__ import annotations

import argparse
import json

from mmfuse.cli._common import add_overwrite_arg, add_test_data_args, test_data
from mmfuse.errors import DataError
from mmfuse.files import atomic_open, atomic_write, check_output_file


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="write one modality's embeddings of a dataset split (.npy)")
    e.add_argument("model_dir")
    e.add_argument("--modality", required=True)
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--data-dir")
    e.add_argument("-o", "--out", required=True, help="output .npy file")
    add_test_data_args(e)
    add_overwrite_arg(e)
    e.set_defaults(func=run_embed)
    r = sub.add_parser(
        "retrieve", help="query in one modality, rank another; prints mAP and R@K against random ranking"
    )
    r.add_argument("model_dir")
    r.add_argument("--query", required=True, help="query modality")
    r.add_argument("--gallery", required=True, help="gallery modality")
    r.add_argument("--split", default="test", choices=["train", "val", "test"])
    r.add_argument("--data-dir")
    r.add_argument(
        "--max-queries", type=int, default=2000, help="evaluate on the first N queries (the gallery is the whole split)"
    )
    r.add_argument(
        "--post-cca",
        type=int,
        metavar="K",
        help="compare in a K-component linear CCA space fitted on the training embeddings "
        "(default: on for deep-CCA models, K = classes - 1; 0 = off)",
    )
    r.add_argument("--show", type=int, default=3, help="print the ranked top-5 of this many queries")
    r.add_argument("-o", "--out", help="write the metrics as JSON here")
    add_test_data_args(r)
    r.add_argument(
        "--fit-table", help="with --table: the training table the post-hoc CCA of a deep-CCA model is fitted on"
    )
    add_overwrite_arg(r)
    r.set_defaults(func=run_retrieve)


def _post_cca_components(requested: int | None, objectives, classes: int, q_dim: int, g_dim: int) -> int:
    """Components of the post-hoc CCA: as requested, or by default ``classes - 1`` for a deep-CCA model."""
    from mmfuse.retrieval import uses_deep_cca

    if requested is not None:
        return requested
    if not uses_deep_cca(objectives):
        return 0
    return max(1, min(q_dim, g_dim, classes - 1 if classes > 1 else q_dim))


def _load(args: argparse.Namespace, with_train: bool = False):
    """``(model, objectives, rows to embed[, training rows for the post-hoc CCA])``: a built-in dataset's split, or for
    a
    model from ``fit`` the labelled rows of ``--table`` (and of ``--fit-table`` for the post-hoc CCA)."""
    from mmfuse.data.registry import load_dataset
    from mmfuse.errors import DataError
    from mmfuse.training.serialization import load_model_dir, load_objectives

    model, meta = load_model_dir(args.model_dir)
    objectives = load_objectives(args.model_dir)
    if meta.get("kind") == "mmfuse-table-predictor":
        rows, _ = test_data(args.model_dir, meta, args)
        train = None
        if with_train and getattr(args, "fit_table", None):
            train, _ = test_data(args.model_dir, meta, argparse.Namespace(**{**vars(args), "table": args.fit_table}))
        return (model, objectives, rows, train) if with_train else (model, objectives, rows)
    if "dataset" not in meta:
        raise DataError(
            f"{args.model_dir!r} records no dataset and is not a table model; embed/retrieve "
            f"need a model from 'fit', 'train' or 'benchmark'."
        )
    splits = load_dataset(meta["dataset"], data_dir=args.data_dir, **meta.get("data_options", {}))
    out = (model, objectives, getattr(splits, args.split))
    return (*out, splits.train) if with_train else out


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from mmfuse.retrieval import embed

    out = check_output_file(args.out, [args.model_dir], args.overwrite)
    model, objectives, ds = _load(args)
    z = embed(model, ds, args.modality, objectives)
    with atomic_open(out) as f:
        np.save(f, z, allow_pickle=False)
    print(f"{z.shape[0]} x {z.shape[1]} embeddings of {args.modality!r} ({args.split}) written to {out}")
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    import numpy as np

    from mmfuse.retrieval import dataset_labels, embed, post_hoc_cca, random_ranking_metrics, rank, retrieval_metrics

    if args.out:
        check_output_file(args.out, [args.model_dir], args.overwrite)
    model, objectives, ds, train = _load(args, with_train=True)
    labels = dataset_labels(ds)
    q = embed(model, ds, args.query, objectives)[: args.max_queries]
    g = embed(model, ds, args.gallery, objectives)
    n_cca = _post_cca_components(args.post_cca, objectives, len(np.unique(labels)), q.shape[1], g.shape[1])
    if n_cca and train is None:
        raise DataError(
            "The post-hoc CCA is fitted on training rows: pass --fit-table TRAIN_TABLE "
            "(never the table being ranked), or --post-cca 0."
        )
    if n_cca:
        q, g = post_hoc_cca(model, train, args.query, args.gallery, n_cca, objectives).transform(q, g)
        print(
            f"embeddings compared in a {n_cca}-component linear CCA space fitted on "
            f"the training split (--post-cca 0 to switch off)"
        )
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
        atomic_write(args.out, json.dumps({**metrics, "post_cca_components": n_cca}, indent=2))
    return 0
