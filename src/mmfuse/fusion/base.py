"""Fusion base class.

A fusion module is built from ``{modality: dim}`` and an output size, takes the per-modality
embeddings and presence masks, and returns ``(B, out_dim)``.

* **Feature-level** fusions (``decision_level = False``) return a fused representation that a head
  turns into predictions; ``out_dim`` is a hidden size.
* **Decision-level** fusions (``decision_level = True``) hold one predictor per modality and
  return predictions directly (log-probabilities for classification, values for regression);
  ``out_dim`` is then the number of model outputs and the model uses no head after them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from torch import Tensor, nn

from mmfuse.contract import modality_order


class Fusion(nn.Module):
    """Base class for every fusion method.

    Args:
        dims: embedding size of each modality, ``{modality: D_m}``.
        out_dim: size of the fused output (hidden size, or number of outputs if decision-level).
    """

    decision_level: ClassVar[bool] = False

    def __init__(self, dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__()
        if not dims:
            raise ValueError("A fusion needs at least one modality.")
        self.modalities: list[str] = modality_order(dims)
        self.dims: dict[str, int] = {m: int(dims[m]) for m in self.modalities}
        self.out_dim = int(out_dim)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        """Fuse.

        Inputs:
            embeddings: ``{m: (B, D_m)}``; rows of absent samples are zero.
            masks: ``{m: (B,)}`` bool, True where the sample has modality ``m``.

        Returns:
            ``(B, out_dim)``.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor | None:
        """Per-sample weight of each modality ``(B, M)`` in ``self.modalities`` order, if the method has one."""
        return None
