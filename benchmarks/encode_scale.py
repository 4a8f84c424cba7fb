"""Encoding at scale: frozen-encoder throughput at 1 and 2 processes, and a 200k-row table fitted in bounded memory.

Protocol:

* **Throughput.** ``--images`` MNIST training digits written as 28 x 28 PNG files, and ``--recordings`` FSDD wav
  files (8 kHz, ``$MMFUSE_DATA_DIR/fsdd``), each in a table with its label. One fresh child process per run
  (:data:`ENCODE`) fits the table pipeline (:class:`mmfuse.tabular.TablePipeline`) and encodes every row into an
  empty cache: images through EfficientNet-Lite0 (1280-d), audio through GE2E (``encoder: ge2e``, 256-d; the
  log-mel spectrogram when the ``speaker`` extra is not installed). At 2 processes the child runs Lightning's
  ``ddp`` strategy on CPU (``devices=2``), and Lightning starts the second process by running the child again.
  A warm-up encode of 8 rows into another cache first starts the second process and loads the weights in
  each (``start_s``); rows/s is then rows / wall time of the timed encode on the first process (from before it
  to after the barrier that ends it); ``child_wall_s`` is the whole child, start-up included. ``cpu_s`` is each
  process's CPU time in the timed encode, and ``cpu_share`` their sum / (wall time x processes): the share of a
  core each process got (1.0 on idle cores; other jobs share the 2 cores here). Each process has
  one torch thread (``OMP_NUM_THREADS=1``), ``--workers`` DataLoader workers decode files. The cache of the
  2-process run is compared with the 1-process one file by file (SHA-256 of every entry).
* **Bounded memory.** ``--rows`` rows (default 210,000: the 70,000 MNIST digits three times, each copy shifted
  by a random pixel in x and y) with the 784 pixels in [0, 1] as one ``list<double>`` column and the digit as
  ``label``, written as Parquet with row groups of ``--row-group`` rows, and again as one row group. Each file is
  fitted by the real command line, ``mmfuse fit TABLE --target label --fusion concat --max-epochs 1``, in a
  small wrapper process whose ``RUSAGE_CHILDREN`` peak RSS is the command's (the wrapper holds no data, so
  Linux's fork + exec carry-over of the parent's peak is ~10 MB). The raw table in memory is rows x 784 x 8
  bytes; the encoded features it becomes are rows x 784 x 4 bytes.

Usage: ``python benchmarks/encode_scale.py [--images 600] [--recordings 3000] [--rows 210000] [--row-group 20000]
[--workers 0] [--skip throughput|memory] [--out results/encode_scale]``; a skipped part keeps the measurement
already in ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENCODE = r"""
import json, os, sys, time
import pandas as pd
from mmfuse.tabular import EmbeddingCache, TablePipeline, resolve_schema
from mmfuse.tabular.encoding import Encoding

table, cache, devices, workers, schema_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
df = pd.read_csv(table)
schema = resolve_schema(df, "label", json.loads(schema_json))
encoding = Encoding(devices=devices, strategy="ddp" if devices > 1 else "auto", workers=workers)
pipe = TablePipeline(schema, os.path.dirname(table), cache=EmbeddingCache(cache), progress=False, encoding=encoding)
pipe.fit(df)
warm = TablePipeline(schema, os.path.dirname(table), cache=EmbeddingCache(cache + "-warm"), progress=False,
                     encoding=encoding)
t_start = time.perf_counter()
warm.fit(df).transform(df.iloc[:8])  # starts the second process and loads the weights in each: not timed below
started = time.perf_counter() - t_start
t0, c0 = time.perf_counter(), time.process_time()
data = pipe.transform(df)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
rank = int(os.environ.get("LOCAL_RANK", "0"))
report = {"rank": rank, "cpu_s": cpu, "s": seconds, "start_s": started, "rows": len(df), "issues": len(data.issues),
          "dims": {k: list(v.shape[1:]) for k, v in data.dataset.inputs.items()}}
open(f"{cache}-rank{rank}.json", "w").write(json.dumps(report))  # a file each: the processes share one stdout
"""

PEAK = r"""
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def write_images(folder: Path, n: int, data_dir: Path) -> Path:
    """``n`` MNIST training digits as PNG files and ``table.csv`` (``image``, ``label``)."""
    import pandas as pd
    from PIL import Image

    from mmfuse.data.mnist import load_mnist

    mnist = load_mnist(data_dir, download=False)
    images, labels = mnist["train_images"][:n], mnist["train_labels"][:n]
    (folder / "img").mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / "img" / f"{i}.png")
    pd.DataFrame({"image": [f"img/{i}.png" for i in range(n)], "label": labels}).to_csv(
        folder / "table.csv", index=False
    )
    return folder / "table.csv"


def write_audio(folder: Path, n: int, data_dir: Path) -> Path:
    """``table.csv`` of ``n`` FSDD recordings, evenly spaced in name order (absolute paths), and their digits."""
    import pandas as pd

    every = sorted((data_dir / "fsdd").rglob("*.wav"))
    files = every[:: max(1, len(every) // n)][:n]  # spread over digits and speakers
    folder.mkdir(parents=True)
    pd.DataFrame({"audio": [str(f) for f in files], "label": [f.name.split("_")[0] for f in files]}).to_csv(
        folder / "table.csv", index=False
    )
    return folder / "table.csv"


def cache_digest(cache: Path) -> dict[str, str]:
    return {str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(cache.rglob("*.npy"))}


def encode_run(table: Path, cache: Path, devices: int, workers: int, schema: dict) -> dict:
    """One fresh child encoding ``table`` into ``cache``; the first process's JSON line plus the wall time."""
    script = table.parent / "encode.py"  # a file, not -c: Lightning starts the second process by running it again
    script.write_text(ENCODE)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script), str(table), str(cache), str(devices), str(workers), json.dumps(schema)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=table.parent,
    )
    if proc.returncode != 0:
        raise SystemExit(f"encode child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [json.loads(f.read_text()) for f in sorted(cache.parent.glob(f"{cache.name}-rank*.json"))]
    first = next(r for r in lines if r["rank"] == 0)
    cpu = [round(r["cpu_s"], 1) for r in sorted(lines, key=lambda r: r["rank"])]
    return {**first, "cpu_s": cpu, "child_wall_s": time.perf_counter() - t0}


def throughput(args: argparse.Namespace, tmp: Path) -> list[dict]:
    data_dir = Path(os.environ.get("MMFUSE_DATA_DIR", ROOT.parent / "shared" / "data"))
    try:
        import resemblyzer  # noqa: F401

        audio_encoder = "ge2e"
    except ImportError:
        audio_encoder = "spectrogram_cnn"
    cases = [
        ("image", "EfficientNet-Lite0", write_images(tmp / "images", args.images, data_dir), {}),
        (
            "audio",
            "GE2E" if audio_encoder == "ge2e" else "log-mel",
            write_audio(tmp / "audio", args.recordings, data_dir),
            {"modalities": {"audio": {"encoder": audio_encoder}}} if audio_encoder == "ge2e" else {},
        ),
    ]
    rows = []
    for modality, encoder, table, schema in cases:
        digests = {}
        for devices in (1, 2):
            cache = tmp / f"cache-{modality}-{devices}"
            load = os.getloadavg()[0]  # runnable processes on the machine (2 cores) just before the run
            r = encode_run(table, cache, devices, args.workers, schema)
            digests[devices] = cache_digest(cache)
            rows.append(
                {
                    "modality": modality,
                    "encoder": encoder,
                    "processes": devices,
                    "workers": args.workers,
                    "rows": r["rows"],
                    "encode_s": round(r["s"], 1),
                    "rows_per_s": round(r["rows"] / r["s"], 1),
                    "cpu_s_per_process": "+".join(map(str, r["cpu_s"])),
                    "cpu_share": round(sum(r["cpu_s"]) / (r["s"] * devices), 2),
                    "start_s": round(r["start_s"], 1),
                    "child_wall_s": round(r["child_wall_s"], 1),
                    "cache_entries": len(digests[devices]),
                    "load_avg_before": round(load, 1),
                }
            )
            print(rows[-1], flush=True)
        rows[-1]["cache_equal_to_1_process"] = digests[1] == digests[2] and len(digests[1]) > 0
    return rows


def write_big_table(tmp: Path, n: int, row_group: int) -> tuple[Path, Path, float]:
    """The shifted-MNIST table as Parquet of ``row_group``-row groups and as one row group (written row group by
    row group, so this process never holds the table either); returns both paths and the raw size in GB."""
    code = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
from pathlib import Path
from mmfuse.data.mnist import load_mnist
d, n, rg, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
m = load_mnist(d, download=False)
x = np.concatenate([m["train_images"], m["test_images"]])
y = np.concatenate([m["train_labels"], m["test_labels"]])
rng = np.random.default_rng(0)
schema = pa.schema([("pixels", pa.list_(pa.float64())), ("label", pa.int64())])
writers = {name: pq.ParquetWriter(out / f"{name}.parquet", schema) for name in ("groups", "whole")}
parts = []
for s in range(0, n, rg):
    idx = np.arange(s, min(n, s + rg))
    dx, dy = rng.integers(-1, 2, len(idx)), rng.integers(-1, 2, len(idx))
    img = np.stack([np.roll(x[i % len(x)], (a, b), (0, 1)) for i, a, b in zip(idx, dy, dx)])
    flat = pa.array((img.reshape(len(idx), 784) / 255.0).ravel(), pa.float64())
    offsets = pa.array(np.arange(0, 784 * len(idx) + 1, 784, dtype=np.int32))
    pixels = pa.ListArray.from_arrays(offsets, flat)
    t = pa.table({"pixels": pixels, "label": pa.array(y[idx % len(x)].astype(np.int64))}, schema=schema)
    writers["groups"].write_table(t)
    parts.append(t)
writers["whole"].write_table(pa.concat_tables(parts).combine_chunks(), row_group_size=n)
for w in writers.values():
    w.close()
"""
    data_dir = Path(os.environ.get("MMFUSE_DATA_DIR", ROOT.parent / "shared" / "data"))
    subprocess.run(
        [sys.executable, "-c", code, str(data_dir), str(n), str(row_group), str(tmp)], check=True, env=_env()
    )
    return tmp / "groups.parquet", tmp / "whole.parquet", n * 784 * 8 / 1e9


def memory(args: argparse.Namespace, tmp: Path) -> list[dict]:
    import pyarrow.parquet as pq

    groups, whole, raw_gb = write_big_table(tmp, args.rows, args.row_group)
    rows = []
    for path in (groups, whole):
        out = tmp / f"model-{path.stem}"
        cmd = [sys.executable, "-m", "mmfuse", "fit", str(path), "--target", "label", "--fusion", "concat"]
        cmd += ["--max-epochs", "1", "--batch-size", "512", "--no-progress", "--cache-dir", str(tmp / "cache")]
        cmd += ["--workers", str(args.workers), "-o", str(out)]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True, env=_env())
        wall = time.perf_counter() - t0
        code, peak_kb = map(int, proc.stdout.split()[-2:])
        if code != 0:
            raise SystemExit(f"mmfuse fit {path.name} failed ({code}):\n{proc.stderr[-3000:]}")
        meta = json.loads((out / "config.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        rows.append(
            {
                "file": path.name,
                "rows": args.rows,
                "row_groups": pq.ParquetFile(path).metadata.num_row_groups,
                "file_mb": round(path.stat().st_size / 1e6),
                "raw_table_gb": round(raw_gb, 2),
                "features_gb": round(args.rows * 784 * 4 / 1e9, 2),
                "peak_rss_gb": round(peak_kb / 2**20, 2),
                "encode_s": round(meta.get("encode_time_s", float("nan")), 1),
                "train_s": round(meta.get("train_time_s", float("nan")), 1),
                "wall_s": round(wall, 1),
                "val_accuracy": round(metrics["validation"].get("accuracy", float("nan")), 4),
                "load_avg_before": round(load, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = [" | ".join(keys), " | ".join("---" for _ in keys)]
    lines += [" | ".join(str(r.get(k, "")) for k in keys) for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=600)
    p.add_argument("--recordings", type=int, default=3000)
    p.add_argument("--rows", type=int, default=210_000)
    p.add_argument("--row-group", type=int, default=20_000)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--skip", choices=["throughput", "memory"], action="append", default=[])
    p.add_argument("--out", default="results/encode_scale")
    args = p.parse_args()
    t0 = time.perf_counter()
    results: dict = {"args": vars(args), "cpus": os.cpu_count(), "load_average_at_start": list(os.getloadavg())}
    walls = {}
    with tempfile.TemporaryDirectory(prefix="mmfuse-encode-scale-") as tmp:
        for part, run in (("throughput", throughput), ("memory", memory)):
            if part not in args.skip:
                t = time.perf_counter()
                results[part] = run(args, Path(tmp))
                walls[part] = round(time.perf_counter() - t, 1)
                print(table(results[part]))
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    for part in args.skip:  # a part skipped now keeps its earlier measurement and wall time
        if part in earlier:
            results[part] = earlier[part]
            walls[part] = earlier.get("part_wall_s", {}).get(part)
    results["part_wall_s"] = walls
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wall time {results['wall_s']} s; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
