"""Private helpers shared by the fusion methods (not a registry module: its name starts with ``_``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.contract import masked_softmax
from mmfuse.errors import ConfigError, DataError
from mmfuse.fusion.base import Fusion
from mmfuse.tasks import TASK_KINDS


def present_embeddings(
    fusion: Fusion, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None
) -> tuple[list[Tensor], Tensor]:
    """The embeddings in ``fusion.modalities`` (sorted) order with absent rows set to exactly zero.

    Zeroing with :func:`torch.where` (not a product) means nothing in an absent row - a learned
    missing-modality token, a huge value, even a NaN - can reach the fusion's output.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool (a missing entry means "present").

    Returns:
        ``[z_m (B, D_m)]`` in sorted order and the presence matrix ``(B, M)`` bool.
    """
    name = type(fusion).__name__
    lacking = [m for m in fusion.modalities if m not in embeddings]
    if lacking:
        raise DataError(
            f"{name} was built for modalities {fusion.modalities} but the embeddings "
            f"lack {lacking}; pass one (B, D) tensor per modality."
        )
    zs, present = [], []
    for m in fusion.modalities:
        z = embeddings[m]
        if z.dim() != 2 or z.shape[1] != fusion.dims[m]:
            raise DataError(
                f"Embedding of modality {m!r} has shape {tuple(z.shape)}; {name} was built for (B, {fusion.dims[m]})."
            )
        mask = None if masks is None else masks.get(m)
        if mask is None:
            mask = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
        if mask.shape != (z.shape[0],):
            raise DataError(
                f"Mask of modality {m!r} has shape {tuple(mask.shape)}; expected ({z.shape[0]},) "
                f"to match its embedding."
            )
        mask = mask.to(device=z.device, dtype=torch.bool)
        zs.append(torch.where(mask[:, None], z, torch.zeros((), dtype=z.dtype, device=z.device)))
        present.append(mask)
    return zs, torch.stack(present, dim=1)


def present_weights(logits: Tensor, present: Tensor) -> Tensor:
    """``w_bm = softmax(a)_m`` renormalised over the modalities present in sample ``b``; all-absent rows are zero.

    Inputs:
        logits: ``(M,)`` (one weight per modality) or ``(B, M)``; present: ``(B, M)`` bool.

    Returns:
        ``(B, M)``.
    """
    return masked_softmax(logits.expand(present.shape), present.to(logits.dtype))


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """``W_2 dropout(relu(W_1 x + b_1)) + b_2``."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


def check_task(task: str, method: str) -> str:
    if task not in TASK_KINDS:
        raise ConfigError(f"Fusion {method!r} got task={task!r}; use one of {list(TASK_KINDS)}.")
    return task


def check_positive(method: str, **values: int) -> None:
    for option, value in values.items():
        if int(value) < 1:
            raise ConfigError(f"Fusion {method!r} option {option}={value} must be a positive integer.")


def log_mixture(log_probs: Tensor, weights: Tensor, present: Tensor, empty: float) -> Tensor:
    """``log sum_m w_m exp(log_probs_m)`` over the present modalities, computed stably (log-sum-exp).

    Absent modalities contribute exactly nothing; a sample with no modality gets ``empty`` in every
    entry. Never NaN, neither forward nor backward.

    Inputs:
        log_probs: ``(B, M, C)``; weights: ``(B, M)`` summing to 1 over present entries; present: ``(B, M)`` bool.

    Returns:
        ``(B, C)``.
    """
    some = present.any(dim=1, keepdim=True)  # (B, 1)
    terms = torch.log(weights.clamp_min(1e-30))[:, :, None] + log_probs  # (B, M, C)
    terms = terms.masked_fill(~present[:, :, None], float("-inf"))
    terms = terms.masked_fill(~some[:, :, None], 0.0)  # keep all-absent rows finite (replaced below)
    mixed = torch.logsumexp(terms, dim=1)
    return torch.where(some, mixed, torch.full_like(mixed, empty))
