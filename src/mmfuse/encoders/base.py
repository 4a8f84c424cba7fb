"""Encoder base class: input of one modality -> ``(B, out_dim)``."""

from __future__ import annotations

from torch import Tensor, nn


class Encoder(nn.Module):
    """Maps one modality's input to a ``(B, out_dim)`` embedding.

    Subclasses set ``self.out_dim`` in ``__init__`` and implement ``forward``.
    """

    out_dim: int

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def backbone(self) -> nn.Module | None:
        """The pretrained part, when fine-tuned, that the optimiser gives a smaller learning rate
        (``TrainConfig.backbone_lr_scale``); ``None`` for an encoder trained from scratch."""
        return None
