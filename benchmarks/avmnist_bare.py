"""AV-MNIST with a bare PyTorch loop: the speed reference for mmfuse's training, and the loop of the ablations.

Two commands, one loop (``bare_train``: preloaded tensors, random permutation per epoch, AdamW, the one-cycle or a
constant learning rate, bf16 autocast + channels-last when asked; the model is the library's own
``build_model``, so only the training machinery differs):

* ``speed``: samples/s of ONE fusion model trained by ``mmfuse.training.fit`` (Lightning, the dataset's batched
  ``__getitems__``, the same optimiser, schedule and precision) against ``bare_train`` on the same model, data and
  precision, ``--n`` training pairs for one epoch, ``--repeats`` alternating runs of each (median reported), one
  torch thread (``--threads``). The ratio mmfuse / bare is the framework's cost (issue: >= 0.9).
* ``ablate``: test accuracy of model and training variants (audio resolution, encoder pooling, schedule, epochs,
  precision), each trained on the 55,000 training pairs; the epoch kept is the best on the 5,000 validation pairs
  (the test split is read once, at that epoch). ``--seeds`` repeats every variant. The variants are named in
  ``VARIANTS``.

Usage:
  python benchmarks/avmnist_bare.py speed [--n 20000] [--repeats 2] [--threads 1] [--out results/avmnist_speed]
  python benchmarks/avmnist_bare.py ablate [--variants base,grid,...] [--seeds 0] [--out results/avmnist_ablation]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BASE = {
    "fusion": "concat",
    "modalities": ["audio", "image"],
    "pool_image": 1,
    "pool_audio": 1,
    "logmel": None,
    "schedule": "constant",
    "epochs": 3,
    "precision": "32-true",
    "lr": 2e-3,
    "audio_channels": [16, 32, 64],
    "hidden": 64,
    "spec_augment": None,
}
GRID = {"pool_image": 3, "pool_audio": [5, 4]}
FAST = {**GRID, "schedule": "onecycle", "precision": "bf16-mixed"}
VARIANTS: dict[str, dict[str, Any]] = {  # each a change to BASE (the first wave's leaderboard settings)
    "base": {},
    "audio_only": {"modalities": ["audio"]},
    "image_only": {"modalities": ["image"]},
    "grid": {"pool_image": 3, "pool_audio": [5, 4]},
    "audio_only_grid": {"modalities": ["audio"], "pool_audio": [5, 4]},
    "image_only_grid": {"modalities": ["image"], "pool_image": 3},
    "grid_onecycle": {"pool_image": 3, "pool_audio": [5, 4], "schedule": "onecycle"},
    "grid_onecycle_bf16": FAST,
    "grid_onecycle_bf16_e4": {**FAST, "epochs": 4},
    "grid_onecycle_bf16_hop128": {**FAST, "pool_audio": [5, 7], "logmel": {"hop_length": 128}},
    "grid_onecycle_bf16_lr4e-3": {**FAST, "lr": 4e-3},
    "grid_onecycle_bf16_wide_audio": {**FAST, "audio_channels": [32, 64, 128]},
    "grid_onecycle_bf16_mel64": {**FAST, "pool_audio": [8, 4], "logmel": {"n_mels": 64}},
    "grid_onecycle_bf16_specaug": {**FAST, "spec_augment": {"freq": 6, "time": 5, "masks": 1}},
    "audio_only_grid_onecycle_bf16": {**FAST, "modalities": ["audio"]},
    "audio_only_grid_onecycle_bf16_specaug": {
        **FAST,
        "modalities": ["audio"],
        "spec_augment": {"freq": 6, "time": 5, "masks": 1},
    },
}


def model_config(v: dict[str, Any]) -> Any:
    from mmfuse.config import ModelConfig

    enc = {
        "image": {"name": "cnn", "in_channels": 1, "pool": v["pool_image"]},
        "audio": {
            "name": "spectrogram_cnn",
            "pool": v["pool_audio"],
            "channels": v["audio_channels"],
            "spec_augment": v["spec_augment"],
        },
    }
    return ModelConfig(
        encoders={m: enc[m] for m in v["modalities"]}, num_outputs=10, fusion=v["fusion"], hidden=v["hidden"]
    )


def tensors(split: Any, modalities: list[str]) -> tuple[dict[str, Any], Any]:
    """Every item of an AV-MNIST split as preloaded tensors ``({m: (N, ...)}, target (N,))``."""
    import torch

    inputs = {"image": torch.from_numpy(split.images()[:, None]), "audio": torch.from_numpy(split._logmel)}
    return {m: inputs[m] for m in modalities}, torch.from_numpy(split.labels.astype(np.int64))


def bare_train(
    model: Any,
    x: dict[str, Any],
    y: Any,
    epochs: int,
    schedule: str,
    precision: str,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    seed: int = 0,
    on_epoch: Any = None,
) -> list[float]:
    """Train ``model`` in place; returns the seconds of each epoch (the loop only); ``on_epoch(epoch)`` after each."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    bf16 = precision.startswith("bf16")
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(y) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps) if schedule == "onecycle" else None
    seconds = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y))
        t0 = time.perf_counter()
        for s in range(0, len(y), batch_size):
            idx = perm[s : s + batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model({m: v[idx] for m, v in x.items()})["prediction"]
            loss = F.cross_entropy(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        seconds.append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(epoch + 1)
    return seconds


def accuracy(model: Any, x: dict[str, Any], y: Any, batch: int = 1024) -> float:
    """Accuracy in float32 (as ``mmfuse.evaluation.predict`` evaluates whatever the training precision)."""
    import torch

    model.eval()
    correct = 0
    with torch.inference_mode():
        for s in range(0, len(y), batch):
            out = model({m: v[s : s + batch] for m, v in x.items()})["prediction"]
            correct += int((out.argmax(1) == y[s : s + batch]).sum())
    return correct / len(y)


def load(seed: int, logmel: dict[str, int] | None) -> Any:
    from mmfuse.data.avmnist import load_avmnist

    return load_avmnist(seed=seed, audio_format="logmel", logmel=logmel)


# ----------------------------------------------------------------------------------------------- speed
def speed(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.utils.data import Subset

    from mmfuse.config import TrainConfig
    from mmfuse.models.builder import build_model
    from mmfuse.training.fit import fit
    from mmfuse.training.precision import cpu_supports_bf16

    torch.set_num_threads(args.threads)
    v = {**BASE, **VARIANTS["grid_onecycle"]}
    splits = load(0, None)
    x, y = tensors(splits.train, v["modalities"])
    x, y = {m: t[: args.n] for m, t in x.items()}, y[: args.n]
    train = Subset(splits.train, range(args.n))
    precisions = ["32-true"] + (["bf16-mixed"] if cpu_supports_bf16() else [])
    rows = []
    for precision in precisions:
        bare, ours = [], []
        for _ in range(args.repeats):  # alternate, so drift in the machine's speed hits both
            torch.manual_seed(0)
            bare.append(args.n / bare_train(build_model(model_config(v)), x, y, 1, v["schedule"], precision)[0])
            cfg = TrainConfig(max_epochs=1, lr_schedule=v["schedule"], precision=precision, progress_bar=False, seed=0)
            ours.append(args.n / fit(model_config(v), cfg, train, None).train_time_s)
        row = {
            "precision": precision,
            "bare_samples_per_s": statistics.median(bare),
            "mmfuse_samples_per_s": statistics.median(ours),
            "runs": {"bare": bare, "mmfuse": ours},
        }
        row["ratio"] = row["mmfuse_samples_per_s"] / row["bare_samples_per_s"]
        rows.append(row)
        print(
            f"{precision:>10}  bare {row['bare_samples_per_s']:7.0f}/s  mmfuse {row['mmfuse_samples_per_s']:7.0f}/s  "
            f"ratio {row['ratio']:.3f}",
            flush=True,
        )
    return {"n": args.n, "threads": args.threads, "repeats": args.repeats, "model": "concat, " + str(v), "rows": rows}


# ----------------------------------------------------------------------------------------------- ablate
def run_variant(name: str, v: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train variant ``v`` on seed ``seed``'s data; the test accuracy is read at the best validation epoch."""
    import torch

    from mmfuse.models.builder import build_model

    splits = load(seed, v["logmel"])
    (xtr, ytr), (xva, yva), (xte, yte) = (tensors(s, v["modalities"]) for s in (splits.train, splits.val, splits.test))
    torch.manual_seed(seed)
    model = build_model(model_config(v))
    best: dict[str, Any] = {"val": -1.0}
    curve: list[float] = []

    def keep_best(epoch: int) -> None:
        val = accuracy(model, xva, yva)
        curve.append(val)
        if val > best["val"]:
            best.update(val=val, epoch=epoch, state={k: t.clone() for k, t in model.state_dict().items()})

    t0 = time.perf_counter()
    epoch_s = bare_train(
        model, xtr, ytr, v["epochs"], v["schedule"], v["precision"], lr=v["lr"], seed=seed, on_epoch=keep_best
    )
    model.load_state_dict(best["state"])
    return {
        "variant": name,
        "seed": seed,
        "val_accuracy": best["val"],
        "best_epoch": best["epoch"],
        "test_accuracy": accuracy(model, xte, yte),
        "val_curve": curve,
        "train_samples_per_s": len(ytr) * len(epoch_s) / sum(epoch_s),
        "seconds": time.perf_counter() - t0,
        "params": sum(p.numel() for p in model.parameters()),
        "settings": v,
    }


def ablate(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.variants.split(",")] if args.variants else list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    rows = []
    for name in names:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows.append(run_variant(name, {**BASE, **VARIANTS[name]}, seed))
            r = rows[-1]
            print(
                f"{name:>28} seed {seed}: val {r['val_accuracy']:.4f} (epoch {r['best_epoch']})  "
                f"test {r['test_accuracy']:.4f}  {r['train_samples_per_s']:.0f} samples/s",
                flush=True,
            )
    return {"threads": args.threads, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--n", type=int, default=20000)
    sp.add_argument("--repeats", type=int, default=2)
    sp.add_argument("--out", default="results/avmnist_speed")
    ab = sub.add_parser("ablate")
    ab.add_argument("--variants", help=f"comma-separated, from {list(VARIANTS)} (default: all)")
    ab.add_argument("--seeds", default="0")
    ab.add_argument("--out", default="results/avmnist_ablation")
    for p in (sp, ab):
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    t0 = time.perf_counter()
    result = speed(args) if args.command == "speed" else ablate(args)
    result.update(command=" ".join(sys.argv), wall_s=time.perf_counter() - t0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "results.json" if args.command == "speed" else f"results-{int(time.time())}.json"
    tmp = out / f".{name}.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out / name)
    print(f"written to {out / name} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
