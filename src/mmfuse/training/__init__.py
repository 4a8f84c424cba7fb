"""Training on Lightning: a task object (model + weighted objectives + optimiser) and a thin ``fit``."""

from mmfuse.training.fit import FitResult, fit
from mmfuse.training.task import MultimodalTask, build_objectives

__all__ = ["FitResult", "MultimodalTask", "build_objectives", "fit"]
