"""Faults injected into whole runs: kill -9 at random moments, two runs sharing one embedding cache,
determinism of seeds. Each run is a real ``mmfuse`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mmfuse import files as F

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FAST = ["--fusion", "concat", "--max-epochs", "3", "--no-progress"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """150 rows: a 16-column numeric group, a category, a 0.25 s WAV; the label shows in the group and the audio."""
    import soundfile

    root = tmp_path_factory.mktemp("faults")
    (root / "wav").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(150):
        y = i % 3
        t = np.arange(2000) / 8000
        soundfile.write(
            root / "wav" / f"{i}.wav",
            (0.3 * np.sin(2 * np.pi * (300 + 200 * y) * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32),
            8000,
        )
        rows.append(
            {
                "clip": f"wav/{i}.wav",
                "colour": str(rng.choice(["r", "g"])),
                "label": f"k{y}",
                **{f"f{j}": float(rng.normal() + (y if j < 3 else 0)) for j in range(16)},
            }
        )
    pd.DataFrame(rows).to_csv(root / "t.csv", index=False)
    (root / "schema.json").write_text(json.dumps({"modalities": {"clip": {"sample_rate": 8000, "seconds": 0.25}}}))
    return root


def mmfuse(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "mmfuse", *map(str, args)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def fit_args(table, out, cache, *extra):
    return [
        "fit",
        table / "t.csv",
        "--target",
        "label",
        "-o",
        out,
        "--schema",
        table / "schema.json",
        "--cache-dir",
        cache,
        *FAST,
        *extra,
    ]


def loads(out) -> bool:
    from mmfuse.predictor import MultimodalPredictor

    try:
        MultimodalPredictor.load(out)
    except Exception:  # noqa: BLE001 - anything that does not load
        return False
    return True


def test_kill_9_at_random_moments_never_leaves_a_half_written_model(table, tmp_path):
    out, cache = tmp_path / "m", tmp_path / "cache"
    proc = mmfuse(*fit_args(table, out, cache))
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    rng = np.random.default_rng(1)
    outcomes = []
    for k in range(
        4
    ):  # kill a replacing fit (the model at -o must stay loadable) and a fresh one (it must not half-exist)
        target = out if k % 2 == 0 else tmp_path / f"fresh{k}"
        proc = mmfuse(*fit_args(table, target, cache, "--overwrite", "--seed", k))
        time.sleep(float(rng.uniform(0.5, 6.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        outcomes.append(proc.returncode)
        if target == out:
            assert loads(out), f"kill {k}: the model at -o no longer loads"
        else:
            assert not target.exists() or loads(target) or not (target / F.MANIFEST).exists(), (
                f"kill {k}: half a model loads"
            )
        for p in tmp_path.iterdir():  # whatever a killed run left is a temporary sibling, which never loads
            if p.name.startswith("."):
                assert F._STALE.match(p.name) or p.name.endswith(".ckpt"), p.name
                assert not loads(p)
    proc = mmfuse(*fit_args(table, out, cache, "--overwrite"))
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    assert loads(out)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.")], "the next run cleans the leftovers"
    assert -signal.SIGKILL in outcomes  # at least one run really was killed mid-way


def test_two_concurrent_compares_share_one_cache(table, tmp_path):
    cache = tmp_path / "cache"
    cmd = [
        "compare",
        table / "t.csv",
        "--target",
        "label",
        "--fusions",
        "concat,late_mean",
        "--schema",
        table / "schema.json",
        "--cache-dir",
        cache,
        *FAST[2:],
        "--preset",
        "fast",
    ]
    procs = [mmfuse(*cmd, "-o", tmp_path / f"r{i}") for i in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-2000:]
    for i in range(2):
        rows = json.loads((tmp_path / f"r{i}" / "results.json").read_text())["rows"]
        assert [r["method"] for r in rows if r["kind"] == "fusion"] == ["concat", "late_mean"]
        assert not any("error" in r for r in rows)
    entries = list(cache.rglob("*.npy"))
    assert len(entries) == 150 and not [p for p in cache.rglob("*") if p.name.startswith(".")]
    shapes = {np.load(p, allow_pickle=False).shape for p in entries}
    assert len(shapes) == 1  # no torn or mixed entry
    from mmfuse.predictor import MultimodalPredictor

    p = MultimodalPredictor(target="label", schema=str(table / "schema.json"), cache_dir=cache, progress=False)
    p.prepare(table / "t.csv")
    assert (p.cache.hits, p.cache.misses, p.cache.repaired) == (150, 0, 0)


def test_same_seed_same_predictions_other_seed_other_predictions(table, tmp_path):
    from mmfuse.predictor import MultimodalPredictor

    def probs(seed):
        p = MultimodalPredictor(
            target="label",
            fusion="concat",
            schema=str(table / "schema.json"),
            cache_dir=tmp_path / "c",
            progress=False,
            seed=seed,
            train={"max_epochs": 3},
        )
        return p.fit(table / "t.csv").predict(table / "t.csv").filter(like="prob_").to_numpy()

    a, b, c = probs(0), probs(0), probs(1)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
