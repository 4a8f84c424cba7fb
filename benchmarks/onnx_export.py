"""ONNX export vs torch on a Handwritten table: agreement and per-sample latency.

Protocol:

* **Table.** ``handwritten-300`` of ``benchmarks/tables_vs_sklearn.py``: 300 training rows (stratified, seeded) of the
  six UCI Handwritten feature views as numeric columns (six vector modalities), the 400 official test rows.
* **Models.** ``MultimodalPredictor(target="digit", fusion=F).fit(train)`` for ``F`` in ``--fusions`` (default
  ``concat`` and ``late_mean``), ``--epochs`` epochs; exported by :func:`mmfuse.export.export_bytes` (TorchScript
  exporter, opset 17, its own check included).
* **Agreement.** The test rows encoded once by the model's pipeline; then every modality of every row removed with
  probability ``--missing`` (seeded; a row may lose all). Max absolute difference ONNX vs torch of the model's
  ``prediction`` (log-probabilities) and of the probabilities, over all test rows, with all modalities and with the
  removals.
* **Latency.** Per-sample wall time of the forward pass alone, one thread each (``torch.set_num_threads(1)``,
  onnxruntime ``intra_op_num_threads=1``): batch 1 (the median over ``--reps1`` single rows) and batch 256 (the median
  over ``--reps256`` batches, divided by 256), after 5 warm-up calls.

Usage: ``python benchmarks/onnx_export.py [--data-dir ../shared/data] [--fusions concat late_mean] [--epochs 20]
[--out results/onnx_export]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def per_sample(fn, batches: list, warmup: int = 5) -> float:
    """Median wall time of ``fn(batch)`` over ``batches``, divided by the batch size, in microseconds."""
    for b in batches[:warmup]:
        fn(b)
    times = []
    for b in batches:
        t = time.perf_counter()
        fn(b)
        times.append((time.perf_counter() - t) / len(b[0]))
    return statistics.median(times) * 1e6


def run_one(fusion: str, train, test, epochs: int, missing: float, reps1: int, reps256: int, cache: str) -> dict:
    import torch

    from mmfuse.export import export_bytes, run_onnx, session
    from mmfuse.predictor import MultimodalPredictor

    t0 = time.perf_counter()
    p = MultimodalPredictor(
        target="digit", fusion=fusion, progress=False, cache_dir=cache, train={"max_epochs": epochs}
    ).fit(train)
    fit_s = time.perf_counter() - t0
    model = p.model.eval()
    data, report = export_bytes(model, p.meta["inputs"])
    sess = session(data, threads=1)
    mods = list(model.modalities)
    ds = p.pipeline.transform(test.drop(columns="digit"), with_target=False).dataset
    x = {m: ds.inputs[m].float() for m in mods}
    rng = np.random.default_rng(0)
    full = {m: ds.masks[m].clone() for m in mods}
    dropped = {m: full[m] & torch.as_tensor(rng.random(len(ds)) >= missing) for m in mods}
    row: dict = {"fusion": fusion, "fit_s": fit_s, "export_s": report.seconds, "onnx_bytes": report.bytes}
    for name, masks in (("all", full), ("missing", dropped)):
        with torch.no_grad():
            ref = model(x, masks)["prediction"].numpy()
        feeds = {n: v for m in mods for n, v in ((f"input_{m}", x[m].numpy()), (f"mask_{m}", masks[m].numpy()))}
        got = run_onnx(sess, feeds)
        row[f"max_abs_diff_{name}"] = float(np.abs(got - ref).max())
        row[f"max_abs_diff_prob_{name}"] = float(np.abs(softmax(got) - softmax(ref)).max())
        row[f"rows_{name}_lacking_a_modality"] = int((~torch.stack(list(masks.values()), 1)).any(1).sum())
    torch.set_num_threads(1)
    flat = [t for m in mods for t in (x[m], dropped[m])]
    names = [n for m in mods for n in (f"input_{m}", f"mask_{m}")]
    for bs, reps in ((1, reps1), (256, reps256)):
        starts = [(i * bs) % (len(ds) - bs + 1) for i in range(reps)]
        batches = [[t[s : s + bs] for t in flat] for s in starts]

        def torch_fn(b: list) -> None:
            with torch.no_grad():
                model({m: b[2 * i] for i, m in enumerate(mods)}, {m: b[2 * i + 1] for i, m in enumerate(mods)})

        np_batches = [[t.numpy() for t in b] for b in batches]

        def onnx_fn(b: list) -> None:
            sess.run(["prediction"], dict(zip(names, b)))

        row[f"torch_us_per_sample_b{bs}"] = per_sample(torch_fn, batches)
        row[f"onnx_us_per_sample_b{bs}"] = per_sample(onnx_fn, np_batches)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR", "../shared/data"))
    ap.add_argument("--fusions", nargs="+", default=["concat", "late_mean"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--missing", type=float, default=0.3)
    ap.add_argument("--reps1", type=int, default=300)
    ap.add_argument("--reps256", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/onnx_export")
    args = ap.parse_args()
    import onnxruntime
    import torch
    from tables_vs_sklearn import build

    from mmfuse.files import write_into

    print(__doc__.split("Usage:")[0].strip(), flush=True)
    t0 = time.perf_counter()
    train, _, test, _, _ = build("handwritten-300", args.data_dir, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmfuse-onnx-") as cache:
        for fusion in args.fusions:
            rows.append(run_one(fusion, train, test, args.epochs, args.missing, args.reps1, args.reps256, cache))
    head = (
        f"{'fusion':<12} {'max|d| all':>11} {'max|d| miss':>11} {'max|dp|':>9} {'torch b1':>9} {'onnx b1':>9} "
        f"{'torch b256':>10} {'onnx b256':>10}  (us / sample, 1 thread)"
    )
    print(head)
    for r in rows:
        print(
            f"{r['fusion']:<12} {r['max_abs_diff_all']:>11.2e} {r['max_abs_diff_missing']:>11.2e} "
            f"{max(r['max_abs_diff_prob_all'], r['max_abs_diff_prob_missing']):>9.2e} "
            f"{r['torch_us_per_sample_b1']:>9.1f} {r['onnx_us_per_sample_b1']:>9.1f} "
            f"{r['torch_us_per_sample_b256']:>10.2f} {r['onnx_us_per_sample_b256']:>10.2f}"
        )
    total = time.perf_counter() - t0
    write_into(
        args.out,
        {
            "results.json": json.dumps(
                {
                    "protocol": __doc__,
                    "table": "handwritten-300",
                    "test_rows": len(test),
                    "options": vars(args),
                    "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
                    "exporter": "torch.onnx TorchScript (dynamo=False), opset 17",
                    "rows": rows,
                    "total_time_s": total,
                },
                indent=2,
            )
        },
    )
    print(f"total {total:.0f} s; results in {args.out}/results.json")


if __name__ == "__main__":
    main()
