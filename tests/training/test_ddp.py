"""Distributed data parallel on CPU: 2 processes through Lightning's "ddp" strategy, launched as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def train(out, data_dir, *extra):
    cmd = [
        sys.executable,
        "-m",
        "mmfuse",
        "train",
        "handwritten",
        "--fusion",
        "concat",
        "--max-epochs",
        "2",
        "--batch-size",
        "64",
        "--no-progress",
        "-o",
        str(out),
        *extra,
    ]
    env = {**os.environ, "MMFUSE_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def tensors(path):
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return {k: tuple(f.get_tensor(k).shape) for k in f.keys()}


def test_two_process_ddp_gives_the_same_kind_of_checkpoint(tmp_path, data_dir):
    single = tmp_path / "single"
    ddp = tmp_path / "ddp"
    train(single, data_dir)
    proc = train(ddp, data_dir, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu")
    assert "world_size" in proc.stderr + proc.stdout or "distributed" in (proc.stderr + proc.stdout).lower()
    assert tensors(single) == tensors(ddp)
    meta = json.loads((ddp / "config.json").read_text())
    assert meta["train"]["devices"] == 2 and meta["train"]["strategy"] == "ddp"
    assert meta["best_val"] > 0.5  # it learned (10 classes, chance 0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # no checkpoint leftovers
    # the DDP model loads and predicts like the 1-process one, in kind
    from mmfuse.data.registry import load_dataset
    from mmfuse.evaluation.predict import predict, task_metrics
    from mmfuse.training.serialization import load_model_dir

    test = load_dataset("handwritten", data_dir=data_dir).test
    preds = {name: predict(load_model_dir(tmp_path / name)[0], test) for name in ("single", "ddp")}
    assert preds["single"].prediction.shape == preds["ddp"].prediction.shape == (len(test), 10)
    for name, p in preds.items():
        assert task_metrics(p, "classification")["accuracy"] > 0.5, name
