"""Training-set augmentation with generated pairs for a modality that is often missing.

:class:`GeneratedPairs` appends ``round(share * N)`` rows to a dataset: each copies a row that has every
``source`` modality and carries a ``target`` generated from them by a conditional generator (e.g. the
input-space :class:`~mmfuse.models.gan.ConditionalGAN` of image <- audio), with ``z ~ N(0, I)`` so that the
added pairs vary. The generated rows' target mask is True; the original rows are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.data.base import dataset_len
from mmfuse.errors import ConfigError, DataError


class GeneratedPairs(Dataset):
    """``dataset`` followed by generated pairs (see the module docstring).

    Args:
        dataset: contract items. generator: has ``generate(cond (B, C), sample=True, generator=...) -> (B, ...)``,
        conditioned on the ``source`` inputs flattened and concatenated in sorted order.
        source: the conditioning modalities. target: the generated modality. share: generated rows as a fraction
        of ``len(dataset)`` (``>= 0``). seed: picks the copied rows and the noise.
    """

    def __init__(
        self,
        dataset: Dataset,
        generator: Any,
        source: Sequence[str],
        target: str,
        share: float,
        seed: int = 0,
        batch_size: int = 512,
    ) -> None:
        if share < 0:
            raise ConfigError(f"The share of generated pairs must be >= 0; got {share}.")
        self.dataset, self.target, self.source = dataset, target, sorted(source)
        n = dataset_len(dataset)
        g = torch.Generator().manual_seed(int(seed))
        ok = []
        for s, batch in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
            has = torch.stack([batch["masks"][m].bool() for m in self.source]).all(0)
            ok.append(torch.nonzero(has).flatten() + s * batch_size)
        candidates = torch.cat(ok)
        k = int(round(share * n))
        if k and not len(candidates):
            raise DataError(f"No row has every source modality {self.source}; nothing to generate {target!r} from.")
        self.rows = candidates[torch.randint(len(candidates), (k,), generator=g)] if k else candidates[:0]
        generated = []
        with torch.no_grad():
            for s in range(0, k, batch_size):
                items = [dataset[int(i)] for i in self.rows[s : s + batch_size]]
                cond = torch.cat(
                    [torch.stack([it["inputs"][m].reshape(-1).float() for it in items]) for m in self.source], 1
                )
                generated.append(generator.generate(cond, sample=True, generator=g))
        shape = dataset[0]["inputs"][target].shape
        self.generated = torch.cat(generated).reshape(k, *shape) if k else torch.zeros(0, *shape)
        self.n = n

    def __len__(self) -> int:
        return self.n + len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i < self.n:
            return self.dataset[i]
        j = i - self.n
        item = self.dataset[int(self.rows[j])]
        x = item["inputs"][self.target]
        inputs = {**item["inputs"], self.target: self.generated[j].to(x.dtype)}
        masks = {**item["masks"], self.target: torch.tensor(True)}
        return {**item, "inputs": inputs, "masks": masks}
