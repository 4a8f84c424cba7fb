"""Dataset contract.

A multimodal dataset's item is ``{"inputs": {m: Tensor}, "masks": {m: bool Tensor ()}, "target": Tensor}``;
torch's default collate turns a list of items into the batch of :mod:`mmfuse.contract`. A dataset may also
fetch a whole batch at once (``__getitems__(indices)``, which torch's DataLoader calls when it exists) and return
a :class:`Batch`: :func:`collate` then takes the stacked batch as it is, and any other collate still sees items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate


class Batch(Sequence):
    """What a dataset's ``__getitems__`` returns: the contract batch ``stacked`` at once (one array operation per
    modality instead of one item at a time, then no per-item collate), still readable item by item (views), so
    torch's default collate and ``Subset`` keep working on it."""

    def __init__(self, stacked: dict[str, Any]) -> None:
        self.stacked = stacked

    def __len__(self) -> int:
        return len(self.stacked["target"])

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]  # items only, no slices
        s = self.stacked
        return {
            "inputs": {m: v[i] for m, v in s["inputs"].items()},
            "masks": {m: v[i] for m, v in s["masks"].items()},
            "target": s["target"][i],
        }


def collate(items: Any) -> Any:
    """The DataLoader ``collate_fn`` of contract datasets: a :class:`Batch` gives its stacked batch, a list of items
    torch's default collate."""
    return items.stacked if isinstance(items, Batch) else default_collate(items)


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

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Batch(
            {
                "inputs": {m: v[idx] for m, v in self.inputs.items()},
                "masks": {m: v[idx] for m, v in self.masks.items()},
                "target": self.target[idx],
            }
        )


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
