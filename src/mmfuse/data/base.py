"""Dataset contract.

A multimodal dataset's item is ``{"inputs": {m: Tensor}, "masks": {m: bool Tensor ()}, "target": Tensor}``;
torch's default collate turns a list of items into the batch of :mod:`mmfuse.contract`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


class TensorMultimodalDataset(Dataset):
    """In-memory dataset from per-modality arrays.

    Args:
        inputs: ``{m: array (N, ...)}``.
        target: ``(N,)`` or ``(N, T)``.
        masks: optional ``{m: bool array (N,)}``; absent rows of ``inputs`` must hold zeros.
    """

    def __init__(self, inputs: Mapping[str, Any], target: Any, masks: Mapping[str, Any] | None = None) -> None:
        self.inputs = {m: torch.as_tensor(np.asarray(v)) for m, v in sorted(inputs.items())}
        self.target = torch.as_tensor(np.asarray(target))
        n = len(self.target)
        for m, v in self.inputs.items():
            if len(v) != n:
                raise ValueError(f"Modality {m!r} has {len(v)} rows but the target has {n}.")
        self.masks = {m: torch.ones(n, dtype=torch.bool) for m in self.inputs}
        for m, v in (masks or {}).items():
            self.masks[m] = torch.as_tensor(np.asarray(v), dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "inputs": {m: v[i] for m, v in self.inputs.items()},
            "masks": {m: v[i] for m, v in self.masks.items()},
            "target": self.target[i],
        }


@dataclass
class DatasetSpec:
    """What a model needs to know about a dataset to be built for it."""

    name: str  # dataset name, for reports
    task: str  # "classification" | "regression" | "multilabel"
    num_outputs: int  # classes / targets / labels
    encoders: dict[str, dict[str, Any]]  # default encoder config per modality ({"name": ..., **params})
    class_names: list[str] = field(default_factory=list)
    metric: str = "accuracy"  # validation metric that selects the best checkpoint
    options: dict[str, Any] = field(
        default_factory=dict
    )  # loader options that rebuild these splits (saved with models)


@dataclass
class Splits:
    """Train / validation / test datasets plus their spec."""

    train: Dataset
    val: Dataset
    test: Dataset
    spec: DatasetSpec


def dataset_len(dataset: Dataset) -> int:
    """``len(dataset)``: map-style datasets define ``__len__``, which torch's ``Dataset`` does not declare."""
    if not isinstance(dataset, Sized):
        raise TypeError(f"{type(dataset).__name__} has no length; use a map-style dataset.")
    return len(dataset)


def batch_to(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Move every tensor of a contract batch to ``device``."""
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, Tensor):
            out[k] = v.to(device)
        elif isinstance(v, Mapping):
            out[k] = {m: t.to(device) if isinstance(t, Tensor) else t for m, t in v.items()}
        else:
            out[k] = v
    return out
