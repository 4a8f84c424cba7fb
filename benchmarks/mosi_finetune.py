"""CMU-MOSI through the table pipeline with the text encoder fine-tuned: ``MultimodalPredictor.fit`` on the standard
folds.

Protocol (the CMU-MultimodalSDK standard folds, as in MulT / MISA; compare ``benchmarks/mosi_table.py``, frozen):

* data: :func:`mmfuse.data.mosi.load_mosi_table` (``protocol="standard"``): 1,284 train / 229 valid / 686 test
  segments, target = sentiment in [-3, 3]; columns ``text`` (raw transcript) and ``audio_0..72``;
* model: ``MultimodalPredictor(target="label", fusion="concat", schema={"modalities": {"text": {"encoder":
  "minilm", "max_length": 40}}})``: MiniLM fine-tuned on the token ids (its backbone at ``lr x 0.05``,
  discriminative fine-tuning), the audio vector through the capacity rule's encoder, concat fusion, regression
  head; AdamW lr 1e-3, batch 32, at most 8 epochs, early stopping on the valid fold's MAE (patience 3) - the
  valid fold is the only thing chosen on;
* metrics (:func:`mmfuse.evaluation.sentiment.sentiment_metrics`) on the test fold, once per seed.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/mosi_finetune.py --seeds 0 1 2 3 4 [--out results/mosi_finetune]``;
each seed's result is appended to ``results.json`` as it finishes (resumable: seeds already there are skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

PUBLISHED = {"MulT (Tsai et al. 2019), aligned, non0": (83.0, 0.871), "MulT as quoted by the issue": (80.98, 0.880)}


def run(seed: int, data_dir: str, cache: str) -> dict:
    from mmfuse import MultimodalPredictor
    from mmfuse.data.mosi import load_mosi_table
    from mmfuse.evaluation.sentiment import sentiment_metrics

    t = load_mosi_table(data_dir, protocol="standard", features=("audio",), download=False)
    part = {f: t[t["fold"] == f].drop(columns="fold").reset_index(drop=True) for f in ("train", "val", "test")}
    t0 = time.perf_counter()
    p = MultimodalPredictor(
        target="label",
        fusion="concat",
        schema={"modalities": {"text": {"encoder": "minilm", "max_length": 40}}},
        progress=False,
        seed=seed,
        cache_dir=cache,
        train={"max_epochs": 8, "patience": 3, "batch_size": 32, "lr": 1e-3},
    )
    p.fit(part["train"], val_table=part["val"])
    pred = p.predict(part["test"])["prediction"].to_numpy()
    m = sentiment_metrics(pred, part["test"]["label"].to_numpy())
    return {"seed": seed, "seconds": round(time.perf_counter() - t0), "epochs": p.meta["epochs"], **m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR", "../shared/data"))
    ap.add_argument("--out", default="results/mosi_finetune")
    args = ap.parse_args()
    from mmfuse.files import atomic_write

    print(__doc__.split("Usage")[0])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"results_{'_'.join(map(str, args.seeds))}.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    for seed in args.seeds:
        if any(r["seed"] == seed for r in runs):
            continue
        runs.append(run(seed, args.data_dir, str(out / "cache")))
        print(json.dumps(runs[-1]), flush=True)
        atomic_write(path, json.dumps({"runs": runs}, indent=1))
    for k in ("acc2_non0", "f1_non0", "acc2_has0", "acc7", "mae", "corr"):
        v = np.array([r[k] for r in runs])
        print(f"{k}: {v.mean():.4f} ± {v.std():.4f}")
    print("published:", PUBLISHED)


if __name__ == "__main__":
    main()
