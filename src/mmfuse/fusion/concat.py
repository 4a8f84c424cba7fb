"""Early (feature-level) fusion by concatenation."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.fusion._common import check_positive, present_embeddings
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Early fusion: concatenate the embeddings, then a ReLU projection.

    ``z = ReLU(W [z_1; ...; z_M] + b)`` in sorted modality order, where an absent ``z_m`` is the
    zero vector. With ``hidden`` set, the projection is a two-layer MLP
    ``z = ReLU(W_2 dropout(ReLU(W_1 [z_1; ...; z_M] + b_1)) + b_2)``.

    Reference: Snoek, Worring & Smeulders, "Early versus late fusion in semantic video analysis",
    ACM Multimedia 2005 (early fusion = one model on the concatenated features).

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        hidden: width of an optional hidden layer (``None``: a single Linear+ReLU).
        dropout: dropout after the hidden layer (only with ``hidden``).

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(dims, out_dim)
        check_positive("concat", out_dim=out_dim, **({"hidden": hidden} if hidden is not None else {}))
        total = sum(self.dims.values())
        if hidden is None:
            self.net = nn.Sequential(nn.Linear(total, self.out_dim), nn.ReLU())
        else:
            self.net = nn.Sequential(
                nn.Linear(total, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, self.out_dim), nn.ReLU()
            )

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, _ = present_embeddings(self, embeddings, masks)
        return self.net(torch.cat(zs, dim=1))  # (B, sum D_m) -> (B, out_dim)
