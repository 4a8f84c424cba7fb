"""Models compose already-built encoders, a fusion module and heads."""

from mmfuse.models.multimodal import MultimodalModel
from mmfuse.models.builder import build_model

__all__ = ["MultimodalModel", "build_model"]
