"""Cross-modal retrieval from a table: ``mmfuse fit --objective`` + ``mmfuse retrieve --table``, both ways.

Protocol:

* data: AV-MNIST (:func:`mmfuse.data.avmnist.load_avmnist`, the 10k / 2k / 2k subset, seeded), written as Parquet
  tables with two feature modalities stored as one array column each: ``image`` (the 784 PCA-degraded pixels) and
  ``audio`` (the 40 x 32 standardised log-mel spectrogram of the noisy recording, flattened to 1,280 values), and the
  target ``digit``; train / val / test are separate files;
* methods, each the real command in a subprocess: ``mmfuse fit train.parquet --val-table val.parquet --target digit``
  with the task loss only, and with ``--objective infonce`` (weight 1, beside the task loss); then
  ``mmfuse retrieve MODEL --table test.parquet --query audio --gallery image`` and the reverse;
* baselines: closed-form linear CCA (:class:`mmfuse.representation.cca.CCA`, 9 components) fitted on the raw training
  views, and random ranking (closed form);
* relevance: same digit; every test row is a query and the whole test table the gallery; mAP and R@1;
  seeds 0, 1, 2 (data subset, pairing, noise and training), mean ± std.

Usage: ``python benchmarks/table_retrieval.py [--data-dir ../shared/data] [--seeds 0 1 2] [--out
results/table_retrieval]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli import mmfuse as run_cli  # this folder's subprocess runner of the real CLI

SUBSET = {"n_train": 10_000, "n_val": 2_000, "n_test": 2_000}


def write_tables(root: Path, data_dir: Path, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    import pandas as pd

    from mmfuse.benchmarks.avmnist_retrieval import raw_views
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.retrieval import dataset_labels

    splits = load_avmnist(data_dir, seed=seed, audio_format="logmel", **SUBSET)
    views = {}
    for name in ("train", "val", "test"):
        ds = getattr(splits, name)
        image, audio = raw_views(ds)
        y = dataset_labels(ds)
        pd.DataFrame(
            {"image": list(image.astype(np.float32)), "audio": list(audio.astype(np.float32)), "digit": y}
        ).to_parquet(root / f"{name}.parquet")
        views[name] = (image, audio, y)
    return views


def mmfuse(*args: object) -> str:
    """The real CLI with two torch threads; its stdout."""
    return run_cli(*args, env={**os.environ, "OMP_NUM_THREADS": "2"})[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR", "../shared/data"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="results/table_retrieval")
    args = ap.parse_args()
    from mmfuse.representation.cca import CCA
    from mmfuse.retrieval import random_ranking_metrics, retrieval_metrics

    print(__doc__.split("Usage:")[0].strip())
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="mmfuse-table-retrieval-") as tmp:
            root = Path(tmp)
            views = write_tables(root, Path(args.data_dir), seed)
            (ia, aa, _), (it, at, yt) = views["train"], views["test"]
            cca = CCA(n_components=9, reg=1e-3).fit(ia, aa)
            zi, za = cca.transform(it, at)
            runs.append(
                {
                    "seed": seed,
                    "method": "linear CCA (raw views)",
                    "audio->image": retrieval_metrics(za, zi, yt, yt),
                    "image->audio": retrieval_metrics(zi, za, yt, yt),
                }
            )
            rnd = random_ranking_metrics(yt, yt)
            runs.append({"seed": seed, "method": "random", "audio->image": rnd, "image->audio": rnd})
            for method, extra in (
                ("fit (task loss only)", []),
                ("fit --objective infonce", ["--objective", "infonce=1"]),
            ):
                model = root / f"m-{len(runs)}"
                t = time.perf_counter()
                mmfuse(
                    "fit",
                    root / "train.parquet",
                    "--val-table",
                    root / "val.parquet",
                    "--target",
                    "digit",
                    "-o",
                    model,
                    "--seed",
                    seed,
                    "--no-progress",
                    "--no-cache",
                    *extra,
                )
                row = {"seed": seed, "method": method, "fit_s": time.perf_counter() - t}
                for q, g in (("audio", "image"), ("image", "audio")):
                    out = root / f"r-{q}.json"
                    mmfuse(
                        "retrieve",
                        model,
                        "--table",
                        root / "test.parquet",
                        "--query",
                        q,
                        "--gallery",
                        g,
                        "--max-queries",
                        "2000",
                        "-o",
                        out,
                        "--overwrite",
                    )
                    row[f"{q}->{g}"] = json.loads(out.read_text())["model"]
                runs.append(row)
            for r in runs[-4:]:
                print(
                    f"seed {seed} {r['method']:<26} mAP audio->image {r['audio->image']['mAP']:.4f} "
                    f" image->audio {r['image->audio']['mAP']:.4f}",
                    flush=True,
                )
    summary = []
    for method in dict.fromkeys(r["method"] for r in runs):
        rs = [r for r in runs if r["method"] == method]
        row = {"method": method}
        for d in ("audio->image", "image->audio"):
            for k in ("mAP", "R@1"):
                v = np.array([r[d][k] for r in rs])
                row[f"{d} {k}"] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
        summary.append(row)
    print(
        f"\n{'method':<28}"
        + "".join(f"{c:>24}" for c in ("audio->image mAP", "image->audio mAP", "audio->image R@1", "image->audio R@1"))
    )
    for row in summary:
        print(
            f"{row['method']:<28}"
            + "".join(
                f"{row[c][0]:>15.4f} ± {row[c][1]:.4f}"
                for c in ("audio->image mAP", "image->audio mAP", "audio->image R@1", "image->audio R@1")
            )
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "protocol": __doc__,
                "seeds": args.seeds,
                "runs": runs,
                "summary": summary,
                "total_time_s": time.perf_counter() - t0,
            },
            indent=2,
        )
    )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
