"""Models compose already-built encoders, a fusion module and heads."""

from mmfuse.models.builder import build_model
from mmfuse.models.multimodal import MultimodalModel

__all__ = ["MultimodalModel", "build_model"]
