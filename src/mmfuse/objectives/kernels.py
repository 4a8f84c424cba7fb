"""Kernel dependence objectives that align modalities: HSIC and CKA.

The kernels and measures themselves are in :mod:`mmfuse.representation.kernels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from mmfuse.errors import ConfigError
from mmfuse.objectives.contrastive import CrossModalObjective
from mmfuse.registry import OBJECTIVES
from mmfuse.representation.kernels import KERNELS, cka, get_kernel, hsic


def cka_loss(za: Tensor, zb: Tensor, kernel: str = "linear", **kernel_params: Any) -> Tensor:
    """``L = -CKA(k(za), k(zb))`` (Kornblith et al., "Similarity of Neural Network Representations
    Revisited", ICML 2019), ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``: minimising it makes
    the two modalities' sample-similarity structures agree. Bounded in ``[-1, 0]``.

    Inputs:
        za: ``(n, D_a)``; zb: ``(n, D_b)`` (same rows); kernel: name in ``KERNELS``.

    Returns:
        scalar.
    """
    k = get_kernel(kernel)
    return -cka(k(za, **kernel_params), k(zb, **kernel_params))


def hsic_loss(za: Tensor, zb: Tensor, sigma: float | None = None) -> Tensor:
    """``L = -HSIC(K_a, K_b)`` with Gaussian kernels, biased estimator ``tr(K_a H K_b H) / (n-1)^2``
    (Gretton, Bousquet, Smola & Schoelkopf, "Measuring Statistical Dependence with Hilbert-Schmidt
    Norms", ALT 2005). ``sigma=None`` takes the median heuristic per modality and batch.

    Only the Gaussian kernel is offered: it is bounded, whereas ``-HSIC`` with a linear or polynomial
    kernel decreases without bound as the embeddings grow (use ``cka`` for those).

    Inputs:
        za: ``(n, D_a)``; zb: ``(n, D_b)``.

    Returns:
        scalar in ``[-n^2 / (n-1)^2, 0]`` (``||HKH||_F <= ||K||_F <= n`` for a kernel bounded by 1).
    """
    k = KERNELS["gaussian"]
    return -hsic(k(za, sigma=sigma), k(zb, sigma=sigma))


@OBJECTIVES.register("cka")
class CKAAlignment(CrossModalObjective):
    """:func:`cka_loss` between modalities (averaged over pairs).

    Args:
        kernel: "linear" (default), "polynomial" or "gaussian".
        kernel_params: keyword arguments of the kernel (e.g. ``{"sigma": 1.0}``).
        modalities, dims, proj_dim: see :class:`~mmfuse.objectives.contrastive.CrossModalObjective`.
    """

    def __init__(
        self,
        kernel: str = "linear",
        kernel_params: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__(modalities, dims, proj_dim)
        get_kernel(kernel)  # fail at build time on an unknown name
        self.kernel, self.kernel_params = kernel, dict(kernel_params or {})

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        return cka_loss(zs[0], zs[1], self.kernel, **self.kernel_params)


@OBJECTIVES.register("hsic")
class HSICAlignment(CrossModalObjective):
    """:func:`hsic_loss` between modalities (averaged over pairs).

    Args:
        sigma: Gaussian bandwidth (default: median heuristic on each batch).
        modalities, dims, proj_dim: see :class:`~mmfuse.objectives.contrastive.CrossModalObjective`.
    """

    def __init__(
        self,
        sigma: float | None = None,
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__(modalities, dims, proj_dim)
        if sigma is not None and sigma <= 0:
            raise ConfigError(
                f"Option 'sigma' of hsic is {sigma}; give a positive bandwidth or None for the median heuristic."
            )
        self.sigma = sigma

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        return hsic_loss(zs[0], zs[1], self.sigma)
