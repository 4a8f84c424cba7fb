"""Objective base class.

An objective is an ``nn.Module`` called as ``objective(output, batch) -> scalar`` where ``output`` is
the dict returned by :class:`mmfuse.models.MultimodalModel` (keys ``"prediction"``, ``"fused"``,
``"embeddings"``, ``"masks"`` and, when the model has per-modality heads, ``"unimodal"``) and
``batch`` is the contract batch (``"inputs"``, ``"masks"``, ``"target"``).

It may also own state (a learnable temperature, a discriminator); its parameters are optimised
together with the model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mmfuse.errors import ConfigError


def paired_modalities(dims: Mapping[str, int], what: str) -> list[str]:
    """The sorted modalities of ``dims`` for a term that relates modalities to each other, or a one-line
    :class:`ConfigError` naming ``what`` (e.g. ``"Objective 'subspace'"``) when there are fewer than two."""
    modalities = sorted(dims)
    if len(modalities) < 2:
        raise ConfigError(f"{what} needs at least two modalities; the model has {modalities}.")
    return modalities


class Objective(nn.Module):
    """A named training term. Subclasses implement :meth:`forward`.

    Class attribute ``needs`` lists the model outputs it reads, so a model can be built with what
    the objective requires (e.g. ``"unimodal"`` for per-modality auxiliary heads).
    """

    needs: tuple[str, ...] = ()

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:  # pragma: no cover
        raise NotImplementedError
