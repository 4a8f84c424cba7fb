"""The built-in real data sets by name: ``load_dataset("avmnist", data_dir=..., n_train=3000)``.

Every entry is a loader ``f(data_dir=None, **options) -> Splits``; unknown names list the valid ones
and unknown options name the option (through :class:`mmfuse.registry.Registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmfuse.data.avmnist import load_avmnist
from mmfuse.data.base import Splits
from mmfuse.data.handwritten import load_handwritten
from mmfuse.data.mosi import load_mosi
from mmfuse.registry import Registry

DATASETS: Registry = Registry("dataset")
DATASETS.register("avmnist")(load_avmnist)
DATASETS.register("handwritten")(load_handwritten)
DATASETS.register("mosi")(load_mosi)


def list_datasets() -> list[str]:
    """Sorted names accepted by :func:`load_dataset`."""
    return DATASETS.list()


def load_dataset(name: str, data_dir: str | Path | None = None, **options: Any) -> Splits:
    """Train / validation / test splits of the built-in data set ``name``.

    Args:
        name: one of :func:`list_datasets` (``avmnist``, ``handwritten``, ``mosi``).
        data_dir: data folder (default: ``$MMFUSE_DATA_DIR``, else ``~/.cache/mmfuse/data``); absent files are
            downloaded from their original sources.
        **options: the loader's own options (see ``load_<name>``), e.g. ``n_train`` or ``protocol``.

    Returns:
        :class:`Splits` with the data set's :class:`DatasetSpec`.
    """
    splits = DATASETS.build(name, data_dir=data_dir, **options)
    if not splits.spec.options:  # loaders that do not record their options: keep the ones given here
        splits.spec.options = dict(options)
    return splits
