"""Hostile input and faults under load: every failure is one sentence or a counted per-row issue.

Protocol:

* **Table.** ``--rows`` rows built from the real data in ``--data-dir``: an MNIST digit as PNG, an FSDD
  recording of the same digit as WAV, a sentence naming it, a number and a category; 80 % train / 20 % test
  CSV files in one folder, with the files beside them. The default encoders run (EfficientNet-Lite0 on the
  images, MiniLM on the text, log-mel CNN on the audio).
* **Bad input.** Each class below is injected into ``--per-class`` training rows and as many test rows.
  ``mmfuse fit`` and ``mmfuse predict`` run as real processes; a class passes when both exit 0 with no
  traceback, ``predict`` returns every row in order (its ``row`` column), every injected test row's note
  names the problem, and no other row has a note.
* **Faults.** ``kill -9`` at random moments of ``fit --overwrite`` (the model at ``-o`` must load after every
  kill) and of a fresh ``fit`` (its folder must never load half-written); two ``compare`` runs at once on one
  new embedding cache (both succeed; every cache entry valid; a third run reads everything from the cache);
  output-policy probes (``-o`` the data folder, ``-o`` the input table, symlinks planted at temporary names);
  damaged model folders (each must be one sentence, exit 2).
* Peak RSS per process (``wait4``) and wall time are reported.

Usage: ``python benchmarks/reliability.py [--data-dir ../shared/data] [--rows 1000] [--out results/reliability]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmfuse.data.tables import digits_table, png_claiming


def inject(
    df: pd.DataFrame, root: Path, rows: list[int], tag: str, outside: Path
) -> dict[str, tuple[str, list[int], str]]:
    """Damage ``rows`` of ``df`` in place, ``len(rows) // CLASSES`` per class; returns ``{class: (column, rows, expected
    note)}``."""
    from PIL import Image

    bad = root / f"bad-{tag}"
    bad.mkdir(exist_ok=True)
    classes: dict[str, tuple[str, str, object]] = {
        "missing image file": ("image", "file not found", lambda i: f"img/none-{i}.png"),
        "zero-length image": ("image", "not a readable image", lambda i: _write(bad / f"empty{i}.png", b"")),
        "random bytes as PNG": (
            "image",
            "not a readable image",
            lambda i: _write(bad / f"rnd{i}.png", np.random.default_rng(i).bytes(700)),
        ),
        "truncated PNG": (
            "image",
            "corrupt image",
            lambda i: _write(bad / f"trunc{i}.png", (root / "img" / f"{i}.png").read_bytes()[:120]),
        ),
        "WAV in the image column": (
            "image",
            "not a readable image",
            lambda i: _write(bad / f"wav{i}.png", (root / df.loc[i, "audio"]).read_bytes()),
        ),
        "bomb header (10^10 px)": (
            "image",
            "Mpixel limit",
            lambda i: _write(bad / f"bomb{i}.png", png_claiming(100_000, 100_000)),
        ),
        "/dev/zero (outside the folder)": ("image", "path leaves the folder", lambda i: "/dev/zero"),
        "named pipe": ("image", "named pipe", lambda i: _fifo(bad / f"pipe{i}.png")),
        "a directory": ("image", "directory", lambda i: _mkdir(bad / f"dir{i}.png")),
        "absolute path outside": ("image", "path leaves the folder", lambda i: str(outside)),
        "symlink to outside": ("image", "path leaves the folder", lambda i: _link(bad / f"link{i}.png", outside)),
        "truncated WAV": (
            "audio",
            "truncated WAV",
            lambda i: _write(bad / f"t{i}.wav", (root / df.loc[i, "audio"]).read_bytes()[:2000]),
        ),
        "corrupt WAV": (
            "audio",
            "corrupt or unsupported audio",
            lambda i: _write(bad / f"c{i}.wav", b"RIFF" + np.random.default_rng(i).bytes(300)),
        ),
        "empty text": ("text", "empty text", lambda i: "   "),
        "NaN number": ("noise", "no value set to the training mean", lambda i: np.nan),
        "inf number": ("noise", "infinite value", lambda i: "inf"),
        "stray string in a number": ("noise", "non-numeric value 'abc'", lambda i: "abc"),
    }
    if tag == "test":
        classes["unseen category"] = ("colour", "not seen in training", lambda i: "purple")
    large = bad / "large.png"
    if not large.exists():  # a real 6000 x 6000 photo-sized image: read, downscaled, no issue
        Image.new("L", (6000, 6000), 128).save(large)
    per = len(rows) // (len(classes) + 1)
    out, k = {}, 0
    df["noise"] = df["noise"].astype(object)
    for name, (col, note, make) in classes.items():
        picked = rows[k : k + per]
        k += per
        for i in picked:
            value = make(i)
            df.loc[i, col] = (
                str(Path(value).relative_to(root)) if isinstance(value, Path) and value.is_relative_to(root) else value
            )
        out[name] = (col, picked, note)
    for i in rows[k : k + per]:
        df.loc[i, "image"] = str(large.relative_to(root))
    out["6000 x 6000 image (valid)"] = ("image", rows[k : k + per], "")
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _fifo(path: Path) -> Path:
    if not path.exists():
        os.mkfifo(path)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _link(path: Path, target: Path) -> Path:
    if not path.is_symlink():
        path.symlink_to(target)
    return path


def run(*args: object) -> dict:
    """One ``mmfuse`` process: exit code, output, wall time and its own peak RSS (from ``wait4``)."""
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmfuse", *map(str, args)],
            stdout=fo,
            stderr=fe,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "2"},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    return {
        "rc": proc.returncode,
        "out": out,
        "err": err,
        "s": time.perf_counter() - t0,
        "rss_mb": usage.ru_maxrss / 1024,
        "traceback": "Traceback" in err,
    }


def loads(path: Path) -> bool:
    from mmfuse.predictor import MultimodalPredictor

    try:
        MultimodalPredictor.load(path)
        return True
    except Exception:  # noqa: BLE001
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("MMFUSE_DATA_DIR", "../shared/data"))
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--out", default="results/reliability")
    ap.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    args = ap.parse_args()
    import tempfile

    data_dir = Path(args.data_dir).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="mmfuse-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "data"
    outside = work / "secret.txt"
    outside.write_text("not for mmfuse")
    t_all = time.perf_counter()
    df = digits_table(root, data_dir, args.rows)
    n_train = int(0.8 * len(df))
    classes_n = 19
    rng = np.random.default_rng(1)
    train_rows = sorted(rng.choice(n_train, args.per_class * classes_n, replace=False).tolist())
    test_rows = sorted((n_train + rng.choice(len(df) - n_train, args.per_class * classes_n, replace=False)).tolist())
    injected_train = inject(df, root, train_rows, "train", outside)
    injected_test = inject(df, root, test_rows, "test", outside)
    df.iloc[:n_train].to_csv(root / "train.csv", index=False)
    df.iloc[n_train:].reset_index(drop=True).to_csv(root / "test.csv", index=False)
    cache = work / "cache"
    report: dict = {"rows": args.rows, "per_class": args.per_class, "classes": {}, "faults": {}}

    print(
        f"table: {len(df)} rows in {root} ({len(train_rows)} damaged training rows, "
        f"{len(test_rows)} damaged test rows)",
        flush=True,
    )
    fit = run(
        "fit",
        root / "train.csv",
        "--target",
        "digit",
        "-o",
        work / "model",
        "--cache-dir",
        cache,
        "--max-epochs",
        "6",
        "--no-progress",
    )
    pred = run("predict", work / "model", root / "test.csv", "-o", work / "pred.csv")
    ok_runs = fit["rc"] == 0 and pred["rc"] == 0 and not fit["traceback"] and not pred["traceback"]
    print(
        f"fit: rc {fit['rc']}, {fit['s']:.0f} s, peak RSS {fit['rss_mb']:.0f} MB; "
        f"predict: rc {pred['rc']}, {pred['s']:.0f} s, peak RSS {pred['rss_mb']:.0f} "
        f"MB"
    )
    if not ok_runs:
        print(fit["err"][-3000:], pred["err"][-3000:])
    report["fit"] = {k: fit[k] for k in ("rc", "s", "rss_mb", "traceback")}
    report["predict"] = {k: pred[k] for k in ("rc", "s", "rss_mb", "traceback")}
    issues = json.loads((work / "model" / "metrics.json").read_text()) if ok_runs else {}
    out = pd.read_csv(work / "pred.csv") if ok_runs else pd.DataFrame()
    test = pd.read_csv(root / "test.csv")
    order_ok = ok_runs and out["sample"].tolist() == test["sample"].tolist()
    notes = out["notes"].fillna("").tolist() if ok_runs else []
    flagged_expected = set()
    for name, (col, rows, note) in injected_test.items():
        local = [r - n_train for r in rows]
        flagged_expected |= set(local) if note else set()
        hit = (
            ok_runs and all(f"{col}: " in notes[r] and note in notes[r] for r in local)
            if note
            else ok_runs and all(notes[r] == "" for r in local)
        )
        train_col = injected_train.get(name, (col, [], note))
        report["classes"][name] = {
            "column": col,
            "train_rows": len(train_col[1]),
            "test_rows": len(local),
            "expected_note": note,
            "ok": bool(hit),
            "example": notes[local[0]] if ok_runs and local else "",
        }
    stray = [r for r in range(len(notes)) if notes[r] and r not in flagged_expected]
    report["rows_lost"] = len(test) - len(out)
    report["order_kept"] = bool(order_ok)
    report["unexpected_notes"] = len(stray)
    report["fit_issue_counts"] = issues.get("issues", {})

    # ---------------------------------------------------------------- kill -9
    numeric = root / "numeric.csv"
    df.iloc[:n_train][["sample", "noise", "colour", "digit", "text"]].to_csv(numeric, index=False)
    base = ["fit", numeric, "--target", "digit", "--cache-dir", cache, "--max-epochs", "4", "--no-progress"]
    assert run(*base, "-o", work / "k")["rc"] == 0
    loadable, half, killed = 0, 0, 0
    for k in range(args.kills):
        target = work / "k" if k % 2 == 0 else work / f"fresh{k}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmfuse", *map(str, base), "-o", str(target), "--overwrite", "--seed", str(k)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        time.sleep(float(rng.uniform(1.0, 12.0)))
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        if target == work / "k":
            loadable += loads(target)
        elif target.exists() and (target / "mmfuse.json").exists() and not loads(target):
            half += 1
        half += sum(1 for p in work.iterdir() if p.name.startswith(".") and (p / "mmfuse.json").exists() and loads(p))
    after = run(*base, "-o", work / "k", "--overwrite")
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".k.")]
    report["faults"]["kill -9 during fit"] = {
        "kills": args.kills,
        "killed_mid_run": killed,
        "replaced_model_loadable": f"{loadable}/{(args.kills + 1) // 2}",
        "half_written_loadable": half,
        "next_run_rc": after["rc"],
        "leftovers_after_next_run": len(leftovers),
    }
    print("kill -9:", report["faults"]["kill -9 during fit"], flush=True)

    # ---------------------------------------------------------------- two compares, one new cache
    shared = work / "shared-cache"
    cmd = [
        "compare",
        root / "train.csv",
        "--target",
        "digit",
        "--fusions",
        "concat,late_mean",
        "--cache-dir",
        shared,
        "--max-epochs",
        "2",
        "--no-progress",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mmfuse", *map(str, cmd), "-o", str(work / f"cmp{i}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for i in range(2)
    ]
    rcs = [p.wait() for p in procs]
    errs = [p.stderr.read() for p in procs]
    entries = list(shared.rglob("*.npy"))
    bad_entries = 0
    for e in entries:
        try:
            np.load(e, allow_pickle=False)
        except Exception:  # noqa: BLE001
            bad_entries += 1
    from mmfuse.predictor import MultimodalPredictor

    third = MultimodalPredictor(target="digit", cache_dir=shared, progress=False)
    third.prepare(root / "train.csv")
    report["faults"]["two concurrent compares, one cache"] = {
        "exit_codes": rcs,
        "tracebacks": sum("Traceback" in e for e in errs),
        "entries": len(entries),
        "unreadable_entries": bad_entries,
        "third_run_hits": third.cache.hits,
        "third_run_misses": third.cache.misses,
        "third_run_repaired": third.cache.repaired,
    }
    print("concurrent:", report["faults"]["two concurrent compares, one cache"], flush=True)

    # ---------------------------------------------------------------- output policy
    before = sorted(p.name for p in root.iterdir())
    probes = {
        "fit -o <the data folder>": run("fit", root / "train.csv", "--target", "digit", "-o", root, "--overwrite"),
        "predict -o <the input table>": run(
            "predict", work / "model", root / "test.csv", "-o", root / "test.csv", "--overwrite"
        ),
        "fit -o <an earlier model>": run("fit", numeric, "--target", "digit", "-o", work / "k"),
    }
    victim = work / "victim.txt"
    victim.write_text("precious")
    for name in (".p.csv.tmp", f".p.csv.mmfuse-{os.getpid()}-x.tmp"):
        (work / name).symlink_to(victim)
    planted = run("predict", work / "model", root / "test.csv", "-o", work / "p.csv")
    report["faults"]["output policy"] = {
        name: {"rc": r["rc"], "one_line": len(r["err"].strip().splitlines()) == 1, "message": r["err"].strip()[:160]}
        for name, r in probes.items()
    }
    report["faults"]["output policy"]["data folder unchanged"] = sorted(p.name for p in root.iterdir()) == before
    report["faults"]["output policy"]["planted symlinks followed"] = (
        victim.read_text() != "precious" or planted["rc"] != 0
    )

    # ---------------------------------------------------------------- damaged model folders
    damaged = {}
    for name, change in {
        "manifest removed": lambda d: (d / "mmfuse.json").unlink(),
        "weights truncated": lambda d: (d / "model.safetensors").write_bytes(
            (d / "model.safetensors").read_bytes()[:1000]
        ),
        "labels.json malformed": lambda d: (d / "labels.json").write_text("[1, 2"),
        "config.json {}": lambda d: (d / "config.json").write_text("{}"),
        "newer folder format": lambda d: (d / "mmfuse.json").write_text(
            json.dumps({**json.loads((d / "mmfuse.json").read_text()), "format_version": 99})
        ),
        "not a folder": lambda d: (shutil.rmtree(d), d.write_text("x")),
    }.items():
        d = work / f"damaged-{len(damaged)}"
        shutil.copytree(work / "model", d)
        change(d)
        r = run("predict", d, root / "test.csv", "-o", work / f"dp{len(damaged)}.csv")
        damaged[name] = {
            "rc": r["rc"],
            "one_line": len(r["err"].strip().splitlines()) == 1,
            "traceback": r["traceback"],
            "message": r["err"].strip()[:200],
        }
    report["faults"]["damaged model folders"] = damaged
    report["total_s"] = time.perf_counter() - t_all

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\n| bad input ({args.per_class} train + {args.per_class} test rows each) | column | outcome | example note |"
    )
    print("|---|---|---|---|")
    for name, c in report["classes"].items():
        print(
            f"| {name} | {c['column']} | {'row issue, kept' if c['expected_note'] else 'read, no issue'} "
            f"{'✔' if c['ok'] else '✘'} | {c['example'][:70]} |"
        )
    print(
        f"\nrows lost: {report['rows_lost']}; order kept: {report['order_kept']}; "
        f"unexpected notes: {report['unexpected_notes']}; "
        f"tracebacks: {int(fit['traceback']) + int(pred['traceback'])}; fit issues: {report['fit_issue_counts']}"
    )
    print(json.dumps(report["faults"], indent=1, default=str))
    print(f"total {report['total_s']:.0f} s; work folder {work}")


if __name__ == "__main__":
    main()
