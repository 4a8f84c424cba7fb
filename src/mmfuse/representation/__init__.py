"""Representation-learning building blocks: CCA-family estimators, kernels and kernel dependence measures.

This layer sits below the objectives (which build their losses on it) and imports only torch,
numpy, scikit-learn and :mod:`mmfuse.errors`.
"""

from __future__ import annotations

from mmfuse.representation.cca import CCA, GCCA
from mmfuse.representation.kernels import (
    KERNELS,
    KernelCCA,
    center_kernel,
    cka,
    gaussian_kernel,
    get_kernel,
    hsic,
    kernel_alignment,
    linear_kernel,
    median_heuristic,
    modality_relatedness,
    polynomial_kernel,
)

__all__ = [
    "CCA",
    "GCCA",
    "KERNELS",
    "KernelCCA",
    "center_kernel",
    "cka",
    "gaussian_kernel",
    "get_kernel",
    "hsic",
    "kernel_alignment",
    "linear_kernel",
    "median_heuristic",
    "modality_relatedness",
    "polynomial_kernel",
]
