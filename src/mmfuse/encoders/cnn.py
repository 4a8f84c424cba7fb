"""A small trainable CNN for images (and any 2-D input such as a spectrogram)."""

from __future__ import annotations

from torch import Tensor, nn

from mmfuse.encoders.base import Encoder
from mmfuse.registry import ENCODERS

Pool = int | tuple[int, int] | list[int]


def pooled_size(pool: Pool) -> int:
    """Cells of the final pooling grid: ``pool`` (h = w) or ``pool[0] * pool[1]``."""
    return int(pool) ** 2 if isinstance(pool, int) else int(pool[0]) * int(pool[1])


def conv_stack(
    in_channels: int, channels: tuple[int, ...] | list[int], dropout: float, pool: Pool = 1
) -> nn.Sequential:
    """``[Conv3x3 - BatchNorm - ReLU - MaxPool2]`` per entry of ``channels``, then average pooling to a ``pool`` grid,
    flattened: ``channels[-1] * pooled_size(pool)`` features.

    ``pool=1`` is global average pooling (position-free: any input size, no notion of *where* a pattern is). A grid
    keeps coarse position, which matters where position carries the class: the frequency band of a formant in a
    spectrogram, the stroke layout of a digit; LeNet (LeCun et al. 1998) flattens its last feature map for that
    reason. ``AdaptiveAvgPool2d`` makes the grid independent of the input size.
    """
    layers: list[nn.Module] = []
    prev = in_channels
    for c in channels:
        layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        prev = c
    grid = (int(pool), int(pool)) if isinstance(pool, int) else (int(pool[0]), int(pool[1]))
    layers += [nn.AdaptiveAvgPool2d(grid), nn.Flatten(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


@ENCODERS.register("cnn")
class SmallCNNEncoder(Encoder):
    """LeNet-style CNN: ``len(channels)`` blocks of Conv3x3-BN-ReLU-MaxPool2, global average pool, Linear-ReLU.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB).
        out_dim: embedding size.
        channels: output channels of each conv block.
        dropout: dropout before the projection.
        pool: the final average-pooling grid (``1``: global; ``3`` or ``(h, w)``: a grid, see :func:`conv_stack`).

    Inputs: ``(B, C, H, W)`` or ``(B, H, W)`` (one channel). Returns: ``(B, out_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_dim: int = 64,
        channels: tuple[int, ...] | list[int] = (16, 32, 64),
        dropout: float = 0.1,
        pool: Pool = 1,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_dim = int(in_channels), int(out_dim)
        self.features = conv_stack(in_channels, channels, dropout, pool)
        self.proj = nn.Sequential(nn.Linear(channels[-1] * pooled_size(pool), out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = x[:, None]  # (B, H, W) -> (B, 1, H, W)
        return self.proj(self.features(x.float()))
