"""MLP encoder for vectors and tables, and an identity encoder for pre-computed embeddings."""

from __future__ import annotations

from torch import Tensor, nn

from mmfuse.encoders.base import Encoder
from mmfuse.registry import ENCODERS


@ENCODERS.register("mlp")
class MLPEncoder(Encoder):
    """``z = relu(W_L ... dropout(relu(LayerNorm(W_1 dropout_in(x)))))``: a stack of Linear-LayerNorm-ReLU-Dropout
    blocks.

    Args:
        in_dim: input feature size.
        out_dim: embedding size.
        hidden: widths of the hidden layers (empty: one linear layer).
        dropout: dropout after every hidden block.
        input_norm: apply LayerNorm to the raw input first (useful for unscaled features).
        input_dropout: dropout on the input features (a regulariser for wide inputs on few rows; with
            ``hidden=[]`` the only dropout there is).

    Inputs: ``(B, in_dim)``. Returns: ``(B, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 64,
        hidden: tuple[int, ...] | list[int] = (128,),
        dropout: float = 0.1,
        input_norm: bool = False,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        layers: list[nn.Module] = [nn.LayerNorm(in_dim)] if input_norm else []
        if input_dropout:
            layers.append(nn.Dropout(input_dropout))
        prev = in_dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.LayerNorm(h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        layers += [nn.Linear(prev, out_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float().reshape(x.shape[0], -1))


@ENCODERS.register("identity")
class IdentityEncoder(Encoder):
    """Passes pre-computed embeddings through unchanged (``z = x``), e.g. cached frozen-encoder features.

    Args:
        in_dim: embedding size (also ``out_dim``).

    Inputs: ``(B, in_dim)``. Returns: ``(B, in_dim)``.
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = int(in_dim)

    def forward(self, x: Tensor) -> Tensor:
        return x.float().reshape(x.shape[0], -1)
