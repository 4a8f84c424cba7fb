"""CMU-MOSI through the table pipeline: ``mmfuse fit`` / ``evaluate`` / ``predict`` / ``compare`` on CSV files.

Protocol (the CMU-MultimodalSDK standard folds, as in TFN / LMF / MFN / MulT / MISA):

* data: :func:`mmfuse.data.mosi.load_mosi_table` with ``protocol="standard"``: 1,284 train / 229 valid /
  686 test segments (52 / 10 / 31 videos, speaker-independent), target = sentiment score in [-3, 3];
* columns: ``text`` (the raw transcript, embedded by MiniLM, frozen and cached), ``audio_0..72``
  (utterance-level openSMILE features, grouped into one ``audio`` vector modality by prefix), and in
  the ``+video`` run ``video_0..99`` (3D-CNN features); ``segment_id`` / ``video_id`` are dropped as ids;
* the three folds are written as CSV files; ``mmfuse fit train.csv --val-table valid.csv`` trains a
  regression model with early stopping on validation MAE (the real command, in a subprocess);
  ``mmfuse evaluate`` and ``mmfuse predict`` run on ``test.csv``;
* metrics (:func:`mmfuse.evaluation.sentiment.sentiment_metrics`): Acc-2 and weighted F1 of
  negative (< 0) vs non-negative (has0) and of negative vs positive over non-zero targets (non0),
  Acc-7, MAE, Pearson correlation; mean and std over seeds.

Caveat of the data (see ``shared/data/README.md``): the bc-LSTM text and *video* features were learned on
the original split's training videos, which include standard test videos, so the ``+video`` run is
optimistic; the text+audio run uses only the raw transcripts and the audio features and is clean.

Finally ``mmfuse compare`` runs twice on the same table with a fresh cache folder: the first run
computes the MiniLM embeddings, the second reads them from the cache (both wall times reported).

Usage: ``python benchmarks/mosi_table.py [--data-dir ../shared/data] [--seeds 0 1 2] [--out results/mosi_table]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from _cli import mmfuse  # this folder's subprocess runner of the real CLI

# Published results on the standard MOSI folds (Acc-2 and F1 in percent; quoted from the papers, not re-run;
# the has0/non0 convention is the one each paper's evaluation code uses). They use word-aligned sequences
# (GloVe or BERT words, COVAREP audio, FACET video), not utterance-level vectors.
PUBLISHED = [
    ("TFN (Zadeh et al. 2017)", 73.9, 73.4, 0.970, 0.633, "has0; as reported by MFN/MulT"),
    ("LMF (Liu et al. 2018)", 76.4, 75.7, 0.912, 0.668, "has0"),
    ("MFN (Zadeh et al. 2018)", 77.4, 77.3, 0.965, 0.632, "has0"),
    ("MulT (Tsai et al. 2019), aligned", 83.0, 82.8, 0.871, 0.698, "non0"),
    ("MISA (Hazarika et al. 2020), BERT", 83.4, 83.6, 0.783, 0.761, "non0"),
]


def write_tables(data_dir: str | None, out: Path, video: bool) -> dict[str, Path]:
    """The standard folds as CSV files (one table per fold, the ``fold`` column removed)."""
    from mmfuse.data.mosi import load_mosi_table

    table = load_mosi_table(data_dir, protocol="standard", features=("audio", "video") if video else ("audio",))
    folder = out / ("tables_text_audio_video" if video else "tables_text_audio")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fold, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        part = table[table["fold"] == fold].drop(columns="fold")
        paths[fold] = folder / f"{name}.csv"
        part.to_csv(paths[fold], index=False)
    table.to_parquet(folder / "mosi_standard.parquet", index=False)
    return paths


def run_config(
    name: str, paths: dict[str, Path], seeds: list[int], fusion: str, out: Path, env: dict[str, str], epochs: int
) -> dict:
    import pandas as pd

    from mmfuse.evaluation.sentiment import sentiment_metrics

    runs = []
    for seed in seeds:
        model = out / "models" / f"{name}-{fusion}-seed{seed}"
        fit_out, fit_s = mmfuse(
            "fit",
            str(paths["train"]),
            "--target",
            "label",
            "--val-table",
            str(paths["val"]),
            "--fusion",
            fusion,
            "-o",
            str(model),
            "--seed",
            str(seed),
            "--max-epochs",
            str(epochs),
            "--patience",
            "6",
            "--no-progress",
            env=env,
        )
        eval_out, _ = mmfuse(
            "evaluate",
            str(model),
            str(paths["test"]),
            "-o",
            str(model.parent / f"{model.name}-test-report.json"),
            env=env,
        )
        pred_file = model.parent / f"{model.name}-test-predictions.csv"
        mmfuse("predict", str(model), str(paths["test"]), "-o", str(pred_file), env=env)
        pred = pd.read_csv(pred_file)["prediction"].to_numpy()
        target = pd.read_csv(paths["test"])["label"].to_numpy()
        m = sentiment_metrics(pred, target)
        m.update(
            {
                "seed": seed,
                "fit_wall_s": fit_s,
                "contribution": json.loads((model.parent / f"{model.name}-test-report.json").read_text()).get(
                    "contribution"
                ),
            }
        )
        runs.append(m)
        print(
            f"[{name}] seed {seed}: Acc-2 has0 {100 * m['acc2_has0']:.1f} non0 {100 * m['acc2_non0']:.1f} "
            f" F1 {100 * m['f1_has0']:.1f}/{100 * m['f1_non0']:.1f}  MAE {m['mae']:.3f} "
            f" Corr {m['corr']:.3f}  ({fit_s:.0f} s)"
        )
        print(eval_out)
    keys = ["acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"]
    summary = {
        k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))} for k in keys
    }
    return {"name": name, "fusion": fusion, "seeds": seeds, "runs": runs, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR"))
    ap.add_argument("--out", default="results/mosi_table")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fusion", default="concat")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument(
        "--compare-fusions", default="concat,weighted_sum,late_mean,gated,low_rank_tensor,modality_attention"
    )
    ap.add_argument("--skip-video", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MMFUSE_CACHE_DIR": str((out / "cache").resolve()),
    }
    configs = [("text+audio", write_tables(args.data_dir, out, video=False))]
    if not args.skip_video:
        configs.append(("text+audio+video (leaky video features)", write_tables(args.data_dir, out, video=True)))
    results = [run_config(name, paths, args.seeds, args.fusion, out, env, args.epochs) for name, paths in configs]

    compare_cache = (out / "compare_cache").resolve()
    shutil.rmtree(compare_cache, ignore_errors=True)
    cenv = {**env, "MMFUSE_CACHE_DIR": str(compare_cache)}
    paths = configs[0][1]
    cmd = [
        "compare",
        str(paths["train"]),
        "--target",
        "label",
        "--val-table",
        str(paths["val"]),
        "--test-table",
        str(paths["test"]),
        "--fusions",
        args.compare_fusions,
        "--max-epochs",
        "15",
        "--no-progress",
    ]
    first_out, first_s = mmfuse(*cmd, "-o", str(out / "compare_run1"), env=cenv)
    second_out, second_s = mmfuse(*cmd, "-o", str(out / "compare_run2"), env=cenv)
    print(first_out)
    print(second_out)
    compare = {
        "fusions": args.compare_fusions.split(","),
        "first_wall_s": first_s,
        "second_wall_s": second_s,
        "first_encoding_line": next((ln for ln in first_out.splitlines() if ln.startswith("encoded")), ""),
        "second_encoding_line": next((ln for ln in second_out.splitlines() if ln.startswith("encoded")), ""),
    }

    print("\nCMU-MOSI, standard folds (test: 686 segments). Acc-2 / F1 in %: has0 | non0")
    print(
        f"{'method':<58} {'Acc-2 has0':>10} {'Acc-2 non0':>10} {'F1 has0':>8} {'F1 non0':>8} "
        f"{'Acc-7':>6} {'MAE':>6} {'Corr':>6}"
    )
    for r in results:
        s = r["summary"]
        label = f"mmfuse table, {r['name']}, {r['fusion']} ({len(r['seeds'])} seeds)"

        def pm(k: str, pct: bool = True, s: dict = s) -> str:
            f = 100 if pct else 1
            return f"{f * s[k]['mean']:.1f}±{f * s[k]['std']:.1f}" if pct else f"{s[k]['mean']:.3f}"

        print(
            f"{label:<58} {pm('acc2_has0'):>10} {pm('acc2_non0'):>10} {pm('f1_has0'):>8} "
            f"{pm('f1_non0'):>8} {pm('acc7'):>6} {pm('mae', False):>6} {pm('corr', False):>6}"
        )
    for name, acc, f1, mae, corr, note in PUBLISHED:
        print(
            f"{name:<58} {acc if 'has0' in note else '':>10} {acc if 'non0' in note else '':>10} "
            f"{f1 if 'has0' in note else '':>8} {f1 if 'non0' in note else '':>8} {'':>6} "
            f"{mae:>6.3f} {corr:>6.3f}"
        )
    print(
        f"\ncompare ({len(compare['fusions'])} fusions): first run {first_s:.1f} s [{compare['first_encoding_line']}], "
        f"second run {second_s:.1f} s [{compare['second_encoding_line']}]"
    )
    payload = {
        "protocol": __doc__,
        "results": results,
        "published": [dict(zip(("method", "acc2", "f1", "mae", "corr", "note"), p)) for p in PUBLISHED],
        "compare": compare,
    }
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out / "results.json")
    print(f"results written to {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
