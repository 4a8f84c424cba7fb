"""Wide and sparse tables: time and peak memory of read, schema, encoding and training on 100k+ columns.

Protocol:

* **Table.** ``--rows`` rows x ``--cols`` float columns, ``--density`` of the cells nonzero (uniform in
  [-1, 1), seeded; the rest 0.0), plus a three-class ``label`` that depends on the first 10 columns.
  Column names are ``f0 .. fN`` (``--names numbered``: one numbered group, read as a ``vector`` modality)
  or ``f0x .. fNx`` (``--names plain``: every column numeric, the ``tabular`` modality). Written as CSV
  and as Parquet (one row group, no pandas metadata) in a temporary folder.
* **Stages**, all in one fresh process per format (``--src`` picks the source tree, to compare versions):
  ``read`` (:func:`mmfuse.tabular.read_table`), ``schema`` (:func:`mmfuse.tabular.resolve_schema`),
  ``encode`` (:class:`mmfuse.tabular.TablePipeline` fitted and applied on every row) and ``fit``
  (``MultimodalPredictor(target="label", fusion="concat").fit(frame)``, ``--epochs`` epochs, which encodes again, then
  ``predict`` on the same frame). Wall time per stage, and the process's peak RSS after each stage
  (``VmHWM``, monotone, so it is the peak so far).
* A watchdog kills a process whose RSS passes ``--max-rss-gb``; the row then says where it got to.

Usage: ``python benchmarks/wide_tables.py [--rows 1000] [--cols 100000] [--density 0.01] [--names plain]
[--formats csv parquet] [--epochs 2] [--src DIR] [--out results/wide_tables]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STAGES = ("read", "schema", "encode", "fit")

CHILD = r"""
import json, sys, time
import numpy as np
path, epochs, fusion = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def report(stage, t0, **extra):
    # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork + exec into ru_maxrss
    rss = next(int(s.split()[1]) for s in open("/proc/self/status") if s.startswith("VmHWM:")) / 2**10
    print(json.dumps({"stage": stage, "s": time.perf_counter() - t0, "peak_rss_mb": rss, **extra}), flush=True)

import mmfuse.tabular as T
from mmfuse.predictor import MultimodalPredictor
report("import", time.perf_counter())
t = time.perf_counter(); df = T.read_table(path); report("read", t, shape=list(df.shape))
t = time.perf_counter(); schema = T.resolve_schema(df, "label"); report("schema", t,
    modalities={k: [v[0], len(v[1])] for k, v in schema.modalities().items()})
t = time.perf_counter()
pipe = T.TablePipeline(schema, progress=False).fit(df)
data = pipe.transform(df)
report("encode", t, dims={k: int(v.shape[1]) for k, v in data.dataset.inputs.items()})
del data, pipe
t = time.perf_counter()
p = MultimodalPredictor(target="label", fusion=fusion, progress=False, train={"max_epochs": epochs}, use_cache=False)
p.fit(df)
out = p.predict(df)
report("fit", t, predict_rows=len(out), val=p.metrics["validation"].get("accuracy"))
"""


def make_table(rows: int, cols: int, density: float, names: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """``(x (rows, cols) float32 with ~density nonzero, label (rows,), column names)``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, cols), np.float32)
    nnz = int(round(density * rows * cols))
    flat = rng.choice(rows * cols, size=nnz, replace=False)
    x.flat[flat] = rng.uniform(-1, 1, nnz).astype(np.float32)
    x[:, :10] = rng.uniform(-1, 1, (rows, 10)).astype(np.float32)  # the columns the label reads are dense
    score = x[:, :5].sum(1) - x[:, 5:10].sum(1)
    label = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    cols_ = [f"f{i}" if names == "numbered" else f"f{i}x" for i in range(cols)]
    return x, label, cols_


def write_csv(path: Path, x: np.ndarray, label: np.ndarray, names: list[str]) -> None:
    with open(path, "w") as fh:
        fh.write(",".join(names) + ",label\n")
        for row, y in zip(x, label):
            cells = np.where(row == 0, "0", np.char.mod("%.4g", row))
            fh.write(",".join(cells.tolist()) + f",{y}\n")


def write_parquet(path: Path, x: np.ndarray, label: np.ndarray, names: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [pa.array(x[:, j]) for j in range(x.shape[1])] + [pa.array(label.astype(np.int64))]
    pq.write_table(pa.Table.from_arrays(arrays, names=[*names, "label"]), path, row_group_size=len(label))


def run_child(path: Path, epochs: int, fusion: str, src: str | None, max_rss_gb: float) -> tuple[list[dict], str]:
    """The stage reports of one process, and how it ended (``ok``, ``killed at N GB``, or the error's last line)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(epochs), fusion],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    killed: list[float] = []

    def watch() -> None:
        while proc.poll() is None:
            try:
                kb = next(
                    int(line.split()[1]) for line in open(f"/proc/{proc.pid}/status") if line.startswith("VmRSS:")
                )
            except (OSError, StopIteration):
                return
            if kb > max_rss_gb * 2**20:
                killed.append(kb / 2**20)
                proc.kill()
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    out, err = proc.communicate()
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if killed:
        return reports, f"killed at {killed[0]:.1f} GB"
    if proc.returncode != 0:
        return reports, (err.strip().splitlines() or ["exit " + str(proc.returncode)])[-1][:160]
    return reports, "ok"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=100_000)
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--names", choices=("plain", "numbered"), default="plain")
    ap.add_argument("--formats", nargs="+", choices=("csv", "parquet"), default=["csv", "parquet"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--fusion", default="concat", help="one fusion method trained for --epochs (not the selection)")
    ap.add_argument("--src", default=None, help="source tree to put first on PYTHONPATH (e.g. an older checkout's src)")
    ap.add_argument("--max-rss-gb", type=float, default=12.0)
    ap.add_argument("--out", default="results/wide_tables")
    args = ap.parse_args()
    print(__doc__.split("Usage:")[0].strip(), flush=True)
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="mmfuse-wide-") as tmp:
        x, label, names = make_table(args.rows, args.cols, args.density, args.names)
        dense_mb = x.nbytes / 2**20
        for fmt in args.formats:
            path = Path(tmp) / f"wide.{fmt}"
            (write_csv if fmt == "csv" else write_parquet)(path, x, label, names)
            file_mb = path.stat().st_size / 2**20
            reports, status = run_child(path, args.epochs, args.fusion, args.src, args.max_rss_gb)
            runs.append({"format": fmt, "file_mb": file_mb, "status": status, "stages": reports})
            print(f"\n{fmt}: {file_mb:.0f} MB on disk, {dense_mb:.0f} MB as float32; {status}", flush=True)
            print(f"  {'stage':<8}{'time s':>10}{'peak RSS MB':>14}  detail")
            for r in reports:
                detail = {k: v for k, v in r.items() if k not in ("stage", "s", "peak_rss_mb")}
                print(f"  {r['stage']:<8}{r['s']:>10.2f}{r['peak_rss_mb']:>14.0f}  {json.dumps(detail)[:90]}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "protocol": __doc__,
        "args": vars(args),
        "dense_float32_mb": dense_mb,
        "runs": runs,
        "total_time_s": time.perf_counter() - t0,
    }
    name = f"results_{args.names}_{args.rows}x{args.cols}{'_src' if args.src else ''}.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out / name}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
