"""Tables vs scikit-learn: does ``mmfuse fit`` reach the bar a user would compare it with?

Protocol. Each table is built in code from the public data in ``../shared/data`` (nothing is downloaded):

* ``handwritten-{100,300,1600}``: the six Handwritten views (pixel 240, fourier 76, profile 216, zernike 47,
  kl 64, morph 6 columns; the column prefix makes each view one modality), a seeded stratified sample of the
  1,600 official training rows; test = the 400 official test rows;
* ``avmnist-2000``: AV-MNIST as flattened features: the PCA-degraded image (784 columns) and the noisy audio's
  standardised log-mel spectrogram (40 x 32 = 1,280 columns); 2,000 training / 2,000 test rows (seeded
  subsamples of the official splits);
* ``mosi``: CMU-MOSI standard folds, raw transcript (MiniLM, frozen and cached) + 73 utterance-level audio
  features, sentiment regression; train = the train fold, the valid fold is given as the validation table,
  test = the test fold (non0 Acc-2 and MAE reported);
* ``wide-sparse``: synthetic and bag-of-words-like, 2 views x 50,000 columns, about 1 % non-zero (exponential
  values): in each view 10,000 columns are class-linked (non-zero with 2 % for one class, 0.5 % for the other),
  the rest is noise; binary label; 600 training / 600 test rows.

Methods, each on the same training rows, scored once on the test rows (never used for a choice):

* ``sklearn_concat``: ``StandardScaler`` + ``LogisticRegressionCV`` (10 C values in [1e-4, 1e4], 5-fold
  stratified CV; ridge with efficient LOO for regression) on every column concatenated, the table pipeline's
  own encoding (so text is the same MiniLM vector);
* ``best_view``: the same model on each modality alone, the modality chosen by 5-fold CV on the training rows;
* ``fit``: ``MultimodalPredictor(target=...).fit(train)``, the default (preset ``medium``);
* ``fit_best``: the same with ``preset="best"``.

Mean ± std over seeds (the seed draws the training sample and seeds the models). Each run is a separate process,
so its peak RSS (``ru_maxrss``) and wall time are its own.

Usage: ``python benchmarks/tables_vs_sklearn.py [--tables handwritten-100,...] [--methods fit,fit_best,...]
[--seeds 0 1 2] [--out results/tables_vs_sklearn]``; the results file is rewritten after every run (resumable:
runs already in it are skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TABLES = ("handwritten-100", "handwritten-300", "handwritten-1600", "avmnist-2000", "mosi", "wide-sparse")
METHODS = ("sklearn_concat", "best_view", "fit", "fit_best")


def build(table: str, data_dir: str, seed: int):
    """``(train frame, validation frame or None, test frame, target, task)``."""
    import pandas as pd

    if table.startswith("handwritten"):
        from mmfuse.data.handwritten import VIEWS, read_handwritten

        d = read_handwritten(data_dir, download=False)

        def frame(part):
            cols = {f"{v}_{j}": part[v][:, j] for v in VIEWS for j in range(part[v].shape[1])}
            return pd.DataFrame({**cols, "digit": part["label"]})

        train, test = frame(d["train"]), frame(d["test"])
        n = int(table.split("-")[1])
        if n < len(train):
            from sklearn.model_selection import train_test_split

            train, _ = train_test_split(train, train_size=n, stratify=train["digit"], random_state=seed)
        return train.reset_index(drop=True), None, test, "digit", "classification"
    if table.startswith("avmnist"):
        from mmfuse.data.avmnist import load_avmnist

        n = int(table.split("-")[1])
        splits = load_avmnist(data_dir, seed=seed, n_train=n, n_val=1, n_test=n, audio_format="logmel", download=False)

        def frame(ds):
            rows = [ds[i] for i in range(len(ds))]
            img = np.stack([r["inputs"]["image"].numpy().reshape(-1) for r in rows])
            aud = np.stack([r["inputs"]["audio"].numpy().reshape(-1) for r in rows])
            cols = {**{f"img_{j}": img[:, j] for j in range(img.shape[1])}}
            cols.update({f"aud_{j}": aud[:, j] for j in range(aud.shape[1])})
            return pd.DataFrame({**cols, "digit": [int(r["target"]) for r in rows]})

        return frame(splits.train), None, frame(splits.test), "digit", "classification"
    if table == "mosi":
        from mmfuse.data.mosi import load_mosi_table

        t = load_mosi_table(data_dir, protocol="standard", features=("audio",), download=False)
        part = {f: t[t["fold"] == f].drop(columns="fold").reset_index(drop=True) for f in ("train", "val", "test")}
        return part["train"], part["val"], part["test"], "label", "regression"
    if table == "wide-sparse":
        rng = np.random.default_rng(1000 + seed)
        n, d, k = 1200, 50_000, 10_000
        y = rng.integers(0, 2, n)
        cols = {}
        for v in ("a", "b"):  # bag-of-words-like: k class-linked columns (2 % vs 0.5 %), the rest 1 % noise
            rate = np.full((n, d), 0.01, np.float32)
            rate[:, :k] = np.where(y[:, None] == (np.arange(k) % 2)[None, :], 0.02, 0.005)
            x = ((rng.random((n, d), dtype=np.float32) < rate) * rng.exponential(1.0, (n, d))).astype(np.float32)
            cols.update({f"{v}_{j}": x[:, j] for j in range(d)})
        df = pd.DataFrame({**cols, "label": y})
        return (
            df.iloc[:600].reset_index(drop=True),
            None,
            df.iloc[600:].reset_index(drop=True),
            "label",
            "classification",
        )
    raise SystemExit(f"unknown table {table!r}; choose from {', '.join(TABLES)}")


def score(pred, test, target: str, task: str) -> dict[str, float]:
    y = test[target].to_numpy()
    if task == "regression":
        from mmfuse.evaluation.sentiment import sentiment_metrics

        m = sentiment_metrics(np.asarray(pred, float), y.astype(float))
        return {"mae": m["mae"], "acc2_non0": m.get("acc2_non0", float("nan"))}
    return {"accuracy": float((np.asarray(pred).astype(str) == y.astype(str)).mean())}


def sklearn_run(method: str, train, val, test, target: str, task: str, seed: int, cache: str) -> dict:
    """The scikit-learn baselines on the table pipeline's encoding of the same rows."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mmfuse import MultimodalPredictor
    from mmfuse.evaluation.classical import _current_api, features

    full = pd.concat([train, val]) if val is not None else train
    p = MultimodalPredictor(target=target, progress=False, cache_dir=cache, seed=seed)
    splits, data = p.prepare(full, test_table=test, holdout=False)
    mods = sorted(splits.spec.encoders)
    pipe = p.pipeline

    def model():
        if task == "regression":
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 4, 10)))
        return make_pipeline(
            StandardScaler(),
            LogisticRegressionCV(Cs=np.logspace(-4, 4, 10), cv=5, max_iter=2000, scoring="accuracy", **_current_api()),
        )

    def xy(ds, m):
        x, y = features(ds, m)
        return x, (y.reshape(-1) if task == "regression" else y.astype(int))

    groups = [mods] if method == "sklearn_concat" else [[m] for m in mods]
    chosen, best = groups[0], -np.inf
    if len(groups) > 1:
        for g in groups:
            x, y = xy(splits.train, g)
            cv = cross_val_score(
                model(), x, y, cv=5, scoring="neg_mean_absolute_error" if task == "regression" else "accuracy"
            )
            if cv.mean() > best:
                chosen, best = g, cv.mean()
    x, y = xy(splits.train, chosen)
    est = model().fit(x, y)
    xt, _ = xy(splits.test, chosen)
    out = est.predict(xt)
    if task == "regression":
        pred = pipe.decode_prediction(np.asarray(out).reshape(-1, 1))[:, 0]
    else:
        classes = pipe.target_state["classes"]
        pred = np.asarray([classes[int(k)] for k in out])
    return {"view": "+".join(chosen), **score(pred, test, target, task)}


def fit_run(method: str, train, val, test, target: str, task: str, seed: int, cache: str) -> dict:
    from mmfuse import MultimodalPredictor

    p = MultimodalPredictor(
        target=target, preset="best" if method == "fit_best" else "medium", progress=False, cache_dir=cache, seed=seed
    )
    p.fit(train, val_table=val)
    sel = p.meta["selection"]
    return {
        "chosen": sel["weights"],
        "protocol": sel["protocol"],
        "cv": p.meta["best_val"],
        **score(p.predict(test)["prediction"].to_numpy(), test, target, task),
    }


def one(table: str, method: str, seed: int, data_dir: str, cache: str) -> dict:
    t0 = time.perf_counter()
    train, val, test, target, task = build(table, data_dir, seed)
    built = time.perf_counter() - t0
    run = sklearn_run if method in ("sklearn_concat", "best_view") else fit_run
    out = run(method, train, val, test, target, task, seed, cache)
    return {
        "table": table,
        "method": method,
        "seed": seed,
        "rows": [len(train), 0 if val is None else len(val), len(test)],
        "columns": int(train.shape[1] - 1),
        "build_s": round(built, 1),
        "seconds": round(time.perf_counter() - t0 - built, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **out,
    }


def summary(runs: list[dict]) -> str:
    lines = ["| table | method | test (mean ± std) | seeds | seconds | peak RSS MB |", "|---|---|---|---|---|---|"]
    keys = sorted({(r["table"], r["method"]) for r in runs}, key=lambda k: (TABLES.index(k[0]), METHODS.index(k[1])))
    for t, m in keys:
        rs = [r for r in runs if r["table"] == t and r["method"] == m and "error" not in r]
        if not rs:
            lines.append(f"| {t} | {m} | failed | - | - | - |")
            continue
        if "mae" in rs[0]:
            mae, acc = np.array([r["mae"] for r in rs]), np.array([r["acc2_non0"] for r in rs])
            cell = f"MAE {mae.mean():.3f} ± {mae.std():.3f}, non0 Acc-2 {100 * acc.mean():.1f} ± {100 * acc.std():.1f}"
        else:
            a = np.array([r["accuracy"] for r in rs])
            cell = f"{a.mean():.4f} ± {a.std():.4f}"
        secs = np.mean([r["seconds"] for r in rs])
        rss = max(r["peak_rss_mb"] for r in rs)
        lines.append(f"| {t} | {m} | {cell} | {len(rs)} | {secs:.0f} | {rss:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR", "../shared/data"))
    ap.add_argument("--out", default="results/tables_vs_sklearn")
    ap.add_argument("--one", nargs=3, metavar=("TABLE", "METHOD", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = Path(args.out)
    cache = str(out / "cache")
    if args.one:
        t, m, s = args.one
        print(json.dumps(one(t, m, int(s), args.data_dir, cache)))
        return
    from mmfuse.files import atomic_write

    print(__doc__.split("Usage")[0])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    done = {(r["table"], r["method"], r["seed"]) for r in runs}
    for t in args.tables.split(","):
        for s in args.seeds:
            for m in args.methods.split(","):
                if (t, m, s) in done:
                    continue
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", t, m, str(s), "--data-dir", args.data_dir, "--out", args.out],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode == 0:
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                else:
                    r = {"table": t, "method": m, "seed": s, "error": proc.stderr.strip().splitlines()[-1][:300]}
                runs.append(r)
                print(json.dumps(r), flush=True)
                atomic_write(path, json.dumps({"runs": runs}, indent=1))
    print(summary(runs))


if __name__ == "__main__":
    main()
