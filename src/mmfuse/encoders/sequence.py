"""Sequence encoders: bidirectional GRU and a small transformer encoder.

Inputs are ``(B, T, F)`` feature sequences; all-zero time steps are treated as padding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmfuse.encoders.base import Encoder
from mmfuse.registry import ENCODERS


def padding_mask(x: Tensor) -> Tensor:
    """``(B, T)`` True where a time step is padding (all features exactly zero)."""
    return (x == 0).all(-1)


@ENCODERS.register("gru")
class GRUEncoder(Encoder):
    """Bidirectional GRU; the embedding is ``W [h_fwd_T ; h_bwd_1]`` over the unpadded steps.

    Args:
        in_dim: features per time step.
        out_dim: embedding size.
        hidden: GRU hidden size per direction.
        num_layers: stacked GRU layers.
        dropout: dropout between layers and before the projection.

    Inputs: ``(B, T, in_dim)``. Returns: ``(B, out_dim)``.
    """

    def __init__(
        self, in_dim: int, out_dim: int = 64, hidden: int = 64, num_layers: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.gru = nn.GRU(
            in_dim, hidden, num_layers, batch_first=True, bidirectional=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        lengths = (~padding_mask(x)).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # h: (layers * 2, B, hidden)
        return self.proj(torch.cat([h[-2], h[-1]], dim=-1))


@ENCODERS.register("transformer")
class TransformerSequenceEncoder(Encoder):
    """Transformer encoder (Vaswani et al., 2017) over a projected sequence with sinusoidal positions;
    the embedding is the masked mean of the last layer's states.

    Args:
        in_dim: features per time step.
        out_dim: embedding size (also the model width).
        num_heads: attention heads.
        num_layers: encoder layers.
        dropout: dropout inside the layers.
        max_len: longest supported sequence.

    Inputs: ``(B, T, in_dim)``. Returns: ``(B, out_dim)``.
    """

    pe: Tensor  # buffer (registered in __init__)

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dropout: float = 0.1,
        max_len: int = 1024,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.inp = nn.Linear(in_dim, out_dim)
        layer = nn.TransformerEncoderLayer(out_dim, num_heads, 2 * out_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        pos = torch.arange(max_len)[:, None]
        div = torch.exp(torch.arange(0, out_dim, 2) * (-math.log(10000.0) / out_dim))
        pe = torch.zeros(max_len, out_dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : out_dim // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        pad = padding_mask(x)
        pad = pad & ~pad.all(1, keepdim=True)  # a fully padded row attends to everything rather than NaN
        h = self.inp(x) + self.pe[: x.shape[1]]
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).float()[..., None]
        return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
