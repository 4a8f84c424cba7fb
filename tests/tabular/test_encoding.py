"""Frozen encoders as a Lightning predict: workers, several processes, progress, refusals."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mmfuse.errors import ConfigError
from mmfuse.tabular.cache import EmbeddingCache
from mmfuse.tabular.encoding import Encoding, encode
from mmfuse.tabular.readers import ReadIssue

# A tiny frozen encoder over .npy files: load reads a file (in a worker), embed is a fixed random linear map.
# Run as a script so that Lightning's "ddp" launcher can start the second process by running it again.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import numpy as np
    import torch

    from mmfuse.tabular.cache import EmbeddingCache
    from mmfuse.tabular.encoding import Encoding, encode
    from mmfuse.tabular.readers import ReadIssue

    files, cache_dir, devices, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    paths = sorted(files.iterdir())
    weight = torch.from_numpy(np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32))

    def load(i):
        if paths[i].stat().st_size == 0:
            raise ReadIssue("empty file")
        return np.load(paths[i])

    def embed(items, device):
        return (torch.tanh(torch.from_numpy(np.stack(items)) @ weight)).numpy()

    encoding = Encoding(devices=devices, strategy="ddp" if devices > 1 else "auto", workers=1)
    hashes = [p.name for p in paths]
    values, reasons = encode(EmbeddingCache(cache_dir), "tiny/v1", hashes, load, embed, (8,), encoding, batch_size=3)
    if int(__import__("os").environ.get("LOCAL_RANK", "0")) == 0:
        np.save(out / "values.npy", values)
        (out / "reasons.json").write_text(json.dumps({str(k): v for k, v in reasons.items()}))
    """
)


def _files(root: Path, n: int = 13) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir()
    for i in range(n):
        if i == 5:
            (root / f"{i:02d}.npy").write_bytes(b"")  # a cell that cannot be read
        else:
            np.save(root / f"{i:02d}.npy", rng.normal(size=16).astype(np.float32))
    return root


def _hashes(cache: Path) -> dict[str, str]:
    return {str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(cache.rglob("*.npy"))}


def test_two_process_encode_writes_the_cache_of_one_process_byte_for_byte(tmp_path):
    files = _files(tmp_path / "files")
    script = tmp_path / "encode.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"out{devices}"
        out.mkdir()
        cache = tmp_path / f"cache{devices}"
        cmd = [sys.executable, str(script), str(files), str(cache), str(devices), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        results[devices] = (_hashes(cache), np.load(out / "values.npy"), json.loads((out / "reasons.json").read_text()))
    (one, v1, r1), (two, v2, r2) = results[1], results[2]
    assert len(one) == 12 and one == two  # every readable file once, the same bytes
    assert np.array_equal(v1, v2, equal_nan=True) and np.isnan(v1[5]).all() and np.isfinite(np.delete(v1, 5, 0)).all()
    assert r1 == r2 == {"5": "empty file"}  # the reason of a cell another process failed on is found again


def _encode(tmp_path, hashes, workers=0, **kw):
    def load(i):
        if hashes[i] == "bad":
            raise ReadIssue("not readable")
        return np.full(3, float(i), np.float32)

    def embed(items, device):
        return np.stack(items) * 2.0

    return encode(EmbeddingCache(tmp_path), "enc", hashes, load, embed, (3,), Encoding(workers=workers, **kw), "test")


def test_workers_decode_and_give_the_same_values(tmp_path):
    hashes = [f"h{i}" for i in range(40)] + ["bad", "h3"]
    serial, reasons = _encode(tmp_path / "a", hashes)
    parallel, again = _encode(tmp_path / "b", hashes, workers=2)
    assert np.array_equal(serial, parallel, equal_nan=True) and reasons == again == {40: "not readable"}
    assert serial[41].tolist() == serial[3].tolist() == [6.0, 6.0, 6.0]  # equal content: encoded once


def test_progress_is_one_line_per_n_rows_off_a_terminal(tmp_path, capsys):
    _encode(tmp_path, [f"h{i}" for i in range(100)], progress=True, log_every=40)  # batches of 32 rows
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mmfuse: test:")]
    assert [ln.split(" rows")[0] for ln in lines] == ["mmfuse: test: 64/100", "mmfuse: test: 100/100"]
    assert all("rows/s, ETA " in ln for ln in lines)


def test_bad_settings_are_one_sentence_naming_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"^--workers must be .* got -1\.$"):
        Encoding(workers=-1)
    with pytest.raises(ConfigError, match="--no-cache"):
        encode(EmbeddingCache(tmp_path, enabled=False), "e", ["a"], int, int, (1,), Encoding(devices=2))


def test_workers_option_of_the_command_line(tmp_path, capsys):
    from mmfuse.cli import main

    table = tmp_path / "t.csv"
    table.write_text("x,label\n1,a\n2,b\n")
    code = main(["fit", str(table), "--target", "label", "-o", str(tmp_path / "m"), "--workers", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--workers" in err[0] and "-1" in err[0]
