"""FSDD: a frozen pretrained speaker encoder (GE2E) vs the trainable log-mel CNN, on speaker and digit recognition.

Protocol:

* data: the Free Spoken Digit Dataset (:mod:`mmfuse.data.fsdd`; 3,000 8 kHz recordings, 6 speakers x 10 digits x
  50 takes) with its conventional split: takes 0-4 are the test set (300), takes 5-9 validation (300, early
  stopping / choice of C), takes 10-49 training (2,400); every split holds every speaker and digit;
* tasks: ``speaker`` (6 classes) and ``digit`` (10 classes), each a table of one audio column ``clip`` and the
  label (the other label is left out of the table);
* methods:

  - ``ge2e + logistic``: the GE2E embeddings (256-d, frozen, computed once and cached by the table pipeline at
    16 kHz) -> scikit-learn logistic regression, ``C`` chosen on validation from {0.1, 1, 10, 100};
  - ``ge2e + mlp (mmfuse fit)``: ``mmfuse fit`` with the schema ``clip: {encoder: ge2e}`` (an ``mlp`` on the
    cached embeddings), ``--fusion concat``;
  - ``log-mel CNN (mmfuse fit)``: ``mmfuse fit`` with the default audio encoder (standardised log-mel spectrogram
    -> trainable ``spectrogram_cnn``), ``--fusion concat``;

  ``mmfuse fit`` runs in a subprocess (the real command) with ``--val-table``, ``--seed`` and default training
  settings otherwise; ``mmfuse evaluate`` scores the test table;
* metric: test accuracy, mean and std over seeds (the logistic regression is deterministic: one run), and wall
  time (embedding, training), one thread (``OMP_NUM_THREADS=1``).

Usage: ``python benchmarks/fsdd_audio_encoders.py [--data-dir ../shared/data] [--seeds 0 1 2]
[--out results/fsdd_audio_encoders]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from _cli import mmfuse  # this folder's subprocess runner of the real CLI

TASKS = ("speaker", "digit")
SPLITS = ("train", "val", "test")


def write_tables(data_dir: str | None, out: Path) -> dict[str, dict[str, Path]]:
    """``{task: {split: csv}}``: tables of ``clip`` (a path relative to the recordings folder) and ``label``."""
    import pandas as pd

    from mmfuse.data.fsdd import all_recordings, recordings_folder, split_of

    folder = recordings_folder(data_dir, download=False)
    recs = all_recordings()
    paths: dict[str, dict[str, Path]] = {}
    for task in TASKS:
        paths[task] = {}
        for split in SPLITS:
            rows = [
                {"clip": r.name, "label": r.speaker if task == "speaker" else f"d{r.digit}"}
                for r in recs
                if split_of(r.index) == split
            ]
            paths[task][split] = out / "tables" / f"{task}_{split}.csv"
            paths[task][split].parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(paths[task][split], index=False)
    return paths | {"folder": {"recordings": folder}}


def ge2e_logistic(paths: dict[str, Path], folder: Path, cache_dir: Path) -> dict:
    """GE2E embeddings through the table pipeline (computed once, cached), logistic regression on top."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mmfuse.tabular import EmbeddingCache, TablePipeline, resolve_schema

    frames = {s: pd.read_csv(paths[s]) for s in SPLITS}
    schema = resolve_schema(frames["train"], "label", {"modalities": {"clip": {"encoder": "ge2e"}}})
    cache = EmbeddingCache(cache_dir)
    t0 = time.perf_counter()
    pipe = TablePipeline(schema, folder, restrict=True, cache=cache, progress=False).fit(frames["train"])
    x = {s: pipe.transform(frames[s]).dataset.inputs["clip"].numpy() for s in SPLITS}
    embed_s = time.perf_counter() - t0
    y = {s: frames[s]["label"].to_numpy() for s in SPLITS}
    t0 = time.perf_counter()
    best = max(
        (LogisticRegression(C=c, max_iter=2000).fit(x["train"], y["train"]) for c in (0.1, 1.0, 10.0, 100.0)),
        key=lambda m: m.score(x["val"], y["val"]),
    )
    fit_s = time.perf_counter() - t0
    return {
        "accuracy": float(best.score(x["test"], y["test"])),
        "C": float(best.C),
        "embed_wall_s": embed_s,
        "cache_misses": cache.misses,
        "fit_wall_s": fit_s,
    }


def fit_table(
    task: str, method: str, paths: dict[str, Path], folder: Path, seed: int, out: Path, env: dict[str, str]
) -> dict:
    model = out / "models" / f"{task}-{method}-seed{seed}"
    args = [str(paths["train"]), "--target", "label", "--val-table", str(paths["val"]), "--base-dir", str(folder)]
    if method == "ge2e_mlp":
        schema = out / "tables" / "schema_ge2e.json"
        schema.write_text(json.dumps({"modalities": {"clip": {"encoder": "ge2e"}}}))
        args += ["--schema", str(schema)]
    _, fit_s = mmfuse(
        "fit",
        *args,
        "--fusion",
        "concat",
        "--seed",
        str(seed),
        "-o",
        str(model),
        "--no-progress",
        "--overwrite",
        env=env,
    )
    report = model.parent / f"{model.name}-test-report.json"
    mmfuse(
        "evaluate", str(model), str(paths["test"]), "--base-dir", str(folder), "-o", str(report), "--overwrite", env=env
    )
    metrics = json.loads(report.read_text())
    return {"seed": seed, "accuracy": float(_accuracy(metrics)), "fit_wall_s": fit_s}


def _accuracy(report: dict) -> float:
    """The test accuracy of an ``mmfuse evaluate`` report."""
    for key in ("accuracy", "acc"):
        if key in report.get("metrics", {}):
            return float(report["metrics"][key])
        if key in report:
            return float(report[key])
    raise SystemExit(f"no accuracy in the evaluation report (keys: {sorted(report)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None, help="folder holding fsdd/recordings (default: $MMFUSE_DATA_DIR)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="results/fsdd_audio_encoders")
    args = ap.parse_args(argv)
    out = Path(args.out)
    cache_dir = out / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # the first GE2E pass is timed from scratch
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MMFUSE_CACHE_DIR": str(cache_dir)}
    os.environ.update({k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    import torch

    torch.set_num_threads(1)
    tables = write_tables(args.data_dir, out)
    folder = tables.pop("folder")["recordings"]
    results: dict = {"protocol": "FSDD takes 10-49 train, 5-9 val, 0-4 test", "seeds": args.seeds, "tasks": {}}
    for task in TASKS:
        res: dict = {"ge2e_logistic": ge2e_logistic(tables[task], folder, cache_dir)}
        print(f"[{task}] ge2e + logistic: {res['ge2e_logistic']}", flush=True)
        for method in ("ge2e_mlp", "logmel_cnn"):
            runs = [fit_table(task, method, tables[task], folder, s, out, env) for s in args.seeds]
            acc = [r["accuracy"] for r in runs]
            res[method] = {"runs": runs, "accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc))}
            print(f"[{task}] {method}: {runs}", flush=True)
        results["tasks"][task] = res
    shutil.rmtree(cache_dir, ignore_errors=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\nFSDD test accuracy (300 recordings), mean +- std over seeds {args.seeds}; wall seconds, one thread")
    print(f"{'task':<8} {'method':<28} {'accuracy':>16} {'time (s)':>22}")
    for task, res in results["tasks"].items():
        lr = res["ge2e_logistic"]
        cached = " (cached)" if lr["cache_misses"] == 0 else ""
        timing = f"embed {lr['embed_wall_s']:.0f}{cached} + fit {lr['fit_wall_s']:.1f}"
        print(f"{task:<8} {'ge2e + logistic':<28} {100 * lr['accuracy']:>15.1f}% {timing:>22}")
        for method, label in (("ge2e_mlp", "ge2e + mlp (mmfuse fit)"), ("logmel_cnn", "log-mel CNN (mmfuse fit)")):
            r = res[method]
            acc = f"{100 * r['accuracy_mean']:.1f} +- {100 * r['accuracy_std']:.1f}%"
            fit = f"fit {np.mean([x['fit_wall_s'] for x in r['runs']]):.0f} / seed"
            print(f"{task:<8} {label:<28} {acc:>16} {fit:>22}")
    print(f"\nwrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
