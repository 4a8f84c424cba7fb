"""mmfuse: multimodal learning - encoders, fusion, objectives, missing modalities, benchmarks - behind one contract."""

from __future__ import annotations

__version__ = "0.1.0"

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.registry import ENCODERS, FUSIONS, HEADS, OBJECTIVES

__all__ = ["ENCODERS", "FUSIONS", "HEADS", "OBJECTIVES", "ModelConfig", "TrainConfig", "__version__"]
