"""The trust benchmark (:mod:`mmfuse.benchmarks.trust`) on the 10k / 2k / 2k AV-MNIST subset: concat, gated,
modality attention, late mean and evidential fusion, three seeds, the robustness benchmark's training budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmfuse.benchmarks import trust
from mmfuse.config import TrainConfig

DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"max_epochs": 3, "batch_size": 128, "patience": 2, "progress_bar": False},
    "full": {"max_epochs": 10, "batch_size": 128, "patience": 3, "progress_bar": False},
}


def benchmark(
    out_dir: str | Path | None = "results/trust_avmnist",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`mmfuse.benchmarks.trust.benchmark` with ``dataset="avmnist"``."""
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"])
    return trust.benchmark(out_dir, data_dir, quick, fusions, cfg, seed, dataset="avmnist")
