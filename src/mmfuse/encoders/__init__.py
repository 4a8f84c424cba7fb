"""Per-modality encoders: input -> ``(B, out_dim)``. Registered in :data:`mmfuse.registry.ENCODERS`."""

from mmfuse.encoders.base import Encoder

__all__ = ["Encoder"]
