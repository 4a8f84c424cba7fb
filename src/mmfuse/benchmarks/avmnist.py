"""AV-MNIST leaderboard: every registered fusion method plus the two unimodal baselines.

Protocol (see :mod:`mmfuse.data.avmnist` for the data): the whole training split (55,000 pairs),
validation on the 5,000 carved-out pairs, test metrics on the full 10,000-image test split. Audio is
given as precomputed noisy log-mel spectrograms (``audio_format="logmel"``, 40 x 32, cached on disk).
Same encoders for every method (image: small CNN, average-pooled to a 3 x 3 grid; audio: CNN on the
spectrogram, pooled to a 5 x 4 grid of (mel band, time); 64-d embeddings), fused size 64, AdamW (peak lr
2e-3, weight decay 1e-4) with the one-cycle schedule, batch 128, 3 epochs, bf16 autocast + channels-last
where the CPU has native bf16 (``precision="auto"``), the best-validation-accuracy weights restored (early
stopping, patience 2). ``--quick``: 3,000 / 1,000 / 2,000 pairs and 4 epochs. ``--jobs N``
trains N methods at once, one worker process each. Written to ``out_dir``: results.json/.csv,
leaderboard.png, one model directory per method under ``models/`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from mmfuse.config import TrainConfig
from mmfuse.evaluation.leaderboard import Method, format_table, run_leaderboard
from mmfuse.registry import FUSIONS

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 2000}
DATA = {"audio_format": "logmel"}
# encoder options on top of the dataset's defaults: average pooling to a grid instead of global pooling (the
# frequency band and the stroke layout carry the digit); BENCHMARKS.md has the ablation
ENCODER_OPTIONS: dict[str, dict[str, Any]] = {"image": {"pool": 3}, "audio": {"pool": [5, 4]}}
_TRAIN = {"batch_size": 128, "patience": 2, "progress_bar": False, "precision": "auto", "lr_schedule": "onecycle"}
DEFAULTS: dict[str, dict[str, Any]] = {"quick": {"max_epochs": 4, **_TRAIN}, "full": {"max_epochs": 3, **_TRAIN}}


def protocol_text() -> str:
    """The protocol paragraph of this module's docstring as plain text (for results.json and the report)."""
    text = (__doc__ or "").split("Protocol", 1)[1].strip()
    return re.sub(r":\w+:`([^`]*)`", r"\1", text).replace("``", "").replace("\n", " ")


def avmnist_methods(fusions: list[str] | None = None, baselines: bool = True) -> list[Method]:
    """Unimodal baselines first, then one entry per fusion method (default: every registered one)."""
    methods = (
        [
            Method("image_only", "concat", ["image"], kind="unimodal"),
            Method("audio_only", "concat", ["audio"], kind="unimodal"),
        ]
        if baselines
        else []
    )
    return methods + [Method(name, name) for name in (fusions or FUSIONS.list())]


def benchmark(
    out_dir: str | Path | None = "results/avmnist",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run the AV-MNIST leaderboard and return its rows (also printed and written to ``out_dir``); ``jobs`` methods
    train at once in worker processes (:func:`mmfuse.evaluation.leaderboard.run_leaderboard`)."""
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.evaluation.report import build_results_report, write_report

    options = {**DATA, **(QUICK if quick else {}), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    encoders = {m: {**e, **ENCODER_OPTIONS.get(m, {})} for m, e in splits.spec.encoders.items()}
    splits = dataclasses.replace(splits, spec=dataclasses.replace(splits.spec, encoders=encoders))
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    rows = run_leaderboard(
        splits,
        avmnist_methods(fusions),
        cfg,
        out_dir,
        extra={"data_options": options, "encoders": encoders, "seed": seed, "protocol": protocol_text()},
        jobs=jobs,
    )
    print(format_table(rows))
    if out_dir is not None:
        page = write_report(build_results_report(out_dir, splits=splits), Path(out_dir) / "report.html")
        print(f"report: {page}")
    return rows
