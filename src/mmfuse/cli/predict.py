"""``mmfuse predict MODEL_DIR TABLE -o PREDICTIONS``: predictions for every row of a table.

The output (CSV, or Parquet for a ``.parquet`` name) keeps the table's row order and has
``prediction``, one ``prob_<class>`` column per class (classification / multi-label) and ``notes``,
which names any modality that was missing or unreadable for the row (it was then predicted from the
other modalities).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict every row of a table with a model written by 'mmfuse fit'")
    p.add_argument("model", help="model directory written by 'mmfuse fit'")
    p.add_argument("table", help="CSV / Parquet table with the training columns (the target is not needed)")
    p.add_argument("-o", "--out", required=True, help="predictions file (.csv or .parquet)")
    p.add_argument("--base-dir", help="folder that relative paths start from; paths outside it are refused (default: the table's folder)")
    p.add_argument("--cache-dir", help="embedding cache folder (default: $MMFUSE_CACHE_DIR or ~/.cache/mmfuse/embeddings)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.predictor import MultimodalPredictor

    predictor = MultimodalPredictor.load(args.model, base_dir=args.base_dir, cache_dir=args.cache_dir)
    frame = predictor.predict(args.table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, out)
    flagged = int((frame["notes"] != "").sum())
    print(f"{len(frame)} predictions written to {out}" + (f"; {flagged} row(s) had a missing or unreadable modality (see the notes column)" if flagged else ""))
    return 0
