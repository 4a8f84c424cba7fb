"""AV-MNIST leaderboard: every registered fusion method plus the two unimodal baselines.

Protocol (see :mod:`mmfuse.data.avmnist` for the data): same encoders for every method
(image: small CNN; audio: log-mel front end + CNN, 64-d embeddings), fused size 64, AdamW
(lr 2e-3, weight decay 1e-4), batch 128, early stopping on validation accuracy (patience 2) with
the best-validation weights restored, test metrics on the full 10,000-image test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmfuse.benchmarks.leaderboard import Method, format_table, run_leaderboard
from mmfuse.config import TrainConfig
from mmfuse.registry import FUSIONS

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 2000}
DEFAULTS = {
    "quick": {"max_epochs": 4, "batch_size": 128, "patience": 2, "progress_bar": False},
    "full": {"max_epochs": 8, "batch_size": 128, "patience": 2, "progress_bar": False},
}


def avmnist_methods(fusions: list[str] | None = None, baselines: bool = True) -> list[Method]:
    """Unimodal baselines first, then one entry per fusion method (default: every registered one)."""
    methods = [Method("image_only", "concat", ["image"], kind="unimodal"), Method("audio_only", "concat", ["audio"], kind="unimodal")] if baselines else []
    return methods + [Method(name, name) for name in (fusions or FUSIONS.list())]


def benchmark(
    out_dir: str | Path | None = "results/avmnist",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the AV-MNIST leaderboard and return its rows (also printed and written to ``out_dir``)."""
    from mmfuse.data.avmnist import load_avmnist

    options = dict(QUICK if quick else {})
    options.update(data_options or {})
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    rows = run_leaderboard(splits, avmnist_methods(fusions), cfg, out_dir)
    print(format_table(rows))
    return rows
