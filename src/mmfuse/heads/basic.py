"""Linear and MLP heads."""

from __future__ import annotations

from torch import Tensor, nn

from mmfuse.registry import HEADS


@HEADS.register("linear")
class LinearHead(nn.Module):
    """``y = W z + b``.

    Args:
        in_dim: size of the fused representation.
        out_dim: number of outputs (classes, targets).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, z: Tensor) -> Tensor:
        return self.proj(z)


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """``y = W_2 dropout(relu(W_1 z)) + b_2``.

    Args:
        in_dim: size of the fused representation.
        out_dim: number of outputs.
        hidden: hidden width.
        dropout: dropout rate after the hidden layer.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
