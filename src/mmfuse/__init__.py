"""mmfuse: multimodal learning - encoders, fusion, objectives, missing modalities, benchmarks - behind one contract."""

from __future__ import annotations

__version__ = "0.1.0"

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.registry import ENCODERS, FUSIONS, HEADS, OBJECTIVES

__all__ = [
    "ENCODERS",
    "FUSIONS",
    "HEADS",
    "OBJECTIVES",
    "ModelConfig",
    "MultimodalPredictor",
    "TrainConfig",
    "__version__",
]


def __getattr__(name: str) -> object:
    """``from mmfuse import MultimodalPredictor`` without importing Lightning and pandas at ``import mmfuse``."""
    if name == "MultimodalPredictor":
        from mmfuse.predictor import MultimodalPredictor

        return MultimodalPredictor
    raise AttributeError(f"module 'mmfuse' has no attribute {name!r}")
