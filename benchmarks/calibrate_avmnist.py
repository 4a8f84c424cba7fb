"""Calibrate AV-MNIST's degradation: test accuracy of small unimodal and fused models per setting.

For every candidate ``image_energy`` an image-only model is trained, for every candidate ``snr_db`` an
audio-only model, and for every ``--pairs`` entry a late-concatenation fusion of both encoders.
Models: ``ENCODERS.build("cnn", in_channels=1)`` for images, ``ENCODERS.build("logmel_cnn",
sample_rate=8000)`` for the waveform, a Linear head on the (concatenated) 64-d embeddings; plain
torch loop, Adam (lr 2e-3), batch 128, a few epochs on a seeded training subsample. Prints a table
and writes it as JSON; the defaults of :func:`mmfuse.data.avmnist.load_avmnist` were chosen from it.

Usage::

    python benchmarks/calibrate_avmnist.py --data-dir ../shared/data --energies 0.15,0.25,0.35 --snrs -9,-6,-3 --pairs
    0.25:-6
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

from mmfuse.data.avmnist import load_avmnist
from mmfuse.registry import ENCODERS


def build(modalities: list[str]) -> nn.ModuleDict:
    """Encoders for ``modalities`` plus a Linear head on their concatenated embeddings."""
    enc = {
        "image": lambda: ENCODERS.build("cnn", in_channels=1),
        "audio": lambda: ENCODERS.build("logmel_cnn", sample_rate=8000),
    }
    encoders = nn.ModuleDict({m: enc[m]() for m in modalities})
    return nn.ModuleDict({"encoders": encoders, "head": nn.Linear(sum(e.out_dim for e in encoders.values()), 10)})


def forward(model: nn.ModuleDict, batch: dict) -> torch.Tensor:
    z = [model["encoders"][m](batch["inputs"][m]) for m in sorted(model["encoders"])]
    return model["head"](torch.cat(z, dim=1))


def train_eval(splits, modalities: list[str], epochs: int, seed: int) -> tuple[float, float]:
    """Train on ``splits.train`` and return ``(test accuracy, seconds)``."""
    torch.manual_seed(seed)
    model = build(modalities)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(splits.train, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in loader:
            loss = nn.functional.cross_entropy(forward(model, batch), batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in DataLoader(splits.test, batch_size=512):
            correct += int((forward(model, batch).argmax(1) == batch["target"]).sum())
    return correct / len(splits.test), time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--energies", default="0.15,0.2,0.25,0.3", help="comma-separated image_energy candidates")
    p.add_argument("--snrs", default="-12,-9,-6,-3", help="comma-separated snr_db candidates")
    p.add_argument("--pairs", default="0.25:-6", help="comma-separated image_energy:snr_db pairs for fusion runs")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--n-test", type=int, default=None, help="test subsample (default: all 10,000)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds (data and training); the table reports each run and the mean",
    )
    p.add_argument("--out", default="avmnist_calibration.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    runs = [("image", float(e), None) for e in args.energies.split(",") if e]
    runs += [("audio", None, float(s)) for s in args.snrs.split(",") if s]
    runs += [
        ("image+audio", float(e), float(s)) for e, s in (pair.split(":") for pair in args.pairs.split(",") if pair)
    ]
    seeds = [int(x) for x in args.seeds.split(",")]
    rows = []
    print(
        f"{'modalities':<12} {'image_energy':>12} {'snr_db':>7} {'k':>3} {'seed':>4} {'test_acc':>8} {'seconds':>8}",
        flush=True,
    )
    for mods, energy, snr in runs:
        for seed in seeds:
            splits = load_avmnist(
                args.data_dir,
                seed=seed,
                image_energy=energy if energy is not None else 0.25,
                snr_db=snr,
                n_train=args.n_train,
                n_val=100,
                n_test=args.n_test,
            )
            acc, secs = train_eval(splits, mods.split("+"), args.epochs, seed)
            k = splits.train.components if energy is not None else None
            rows.append(
                {
                    "modalities": mods,
                    "image_energy": energy,
                    "snr_db": snr,
                    "components": k,
                    "seed": seed,
                    "test_accuracy": acc,
                    "seconds": secs,
                }
            )
            print(
                f"{mods:<12} {_fmt(energy):>12} {_fmt(snr):>7} {_fmt(k):>3} {seed:>4} {acc:>8.4f} {secs:>8.1f}",
                flush=True,
            )
    print("\nmean over seeds")
    for mods, energy, snr in runs:
        accs = [
            r["test_accuracy"] for r in rows if (r["modalities"], r["image_energy"], r["snr_db"]) == (mods, energy, snr)
        ]
        print(
            f"{mods:<12} {_fmt(energy):>12} {_fmt(snr):>7} {sum(accs) / len(accs):>8.4f} "
            f"(min {min(accs):.4f}, max {max(accs):.4f}, n={len(accs)})"
        )
    with open(args.out, "w") as f:
        json.dump({"epochs": args.epochs, "n_train": args.n_train, "n_test": args.n_test, "rows": rows}, f, indent=1)


def _fmt(x: object) -> str:
    return "-" if x is None else str(x)


if __name__ == "__main__":
    main()
