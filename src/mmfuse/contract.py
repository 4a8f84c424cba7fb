"""The one contract every modality, encoder and fusion method follows.

A **batch** is a plain dict::

    {
        "inputs": {modality: Tensor (B, ...)},   # raw or pre-encoded input per modality
        "masks":  {modality: BoolTensor (B,)},   # True where the sample HAS the modality
        "target": Tensor (B,) or (B, T),         # optional at prediction time
    }

An absent modality still has a tensor in ``inputs`` (filled with zeros, never NaN) so that batches
stack; its mask is False. An **encoder** maps ``inputs[m]`` to ``(B, D_m)`` and reports ``out_dim``.
A **fusion** module is built from ``{modality: D_m}``, takes ``(embeddings, masks)`` and returns
``(B, D_out)``. Modalities are always walked in sorted order (:func:`modality_order`), so results
never depend on dict insertion order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from mmfuse.errors import DataError

Inputs = Mapping[str, Tensor]
Masks = Mapping[str, Tensor]


def modality_order(d: Mapping[str, object]) -> list[str]:
    """The canonical (sorted) order of the modalities in ``d``."""
    return sorted(d)


def full_masks(inputs: Inputs) -> dict[str, Tensor]:
    """Masks saying every sample has every modality."""
    return {m: torch.ones(x.shape[0], dtype=torch.bool, device=x.device) for m, x in inputs.items()}


def batch_size(inputs: Inputs) -> int:
    """The common leading dimension of ``inputs``; raises if modalities disagree."""
    sizes = {m: int(x.shape[0]) for m, x in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise DataError(f"Modalities have different batch sizes {sizes}; give every modality one row per sample.")
    return next(iter(sizes.values()))


def stack_masks(masks: Masks, order: list[str]) -> Tensor:
    """``(B, M)`` float mask in ``order``."""
    return torch.stack([masks[m].float() for m in order], dim=1)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` restricted to entries where ``mask`` is 1.

    Rows with no present entry get all-zero weights (never NaN).
    """
    neg = torch.finfo(scores.dtype).min
    scores = scores.masked_fill(mask <= 0, neg)
    w = torch.softmax(scores, dim=dim) * (mask > 0).to(scores.dtype)
    return w / w.sum(dim=dim, keepdim=True).clamp_min(1e-12)


def validate_batch(inputs: Inputs, masks: Masks | None) -> dict[str, Tensor]:
    """Check that masks match inputs and return complete masks (missing entries mean 'present')."""
    if not inputs:
        raise DataError("The batch has no modality; pass at least one input tensor.")
    n = batch_size(inputs)
    out = full_masks(inputs)
    for m, mask in (masks or {}).items():
        if m not in inputs:
            raise DataError(f"Mask given for modality {m!r} that has no input; known modalities: {sorted(inputs)}.")
        if mask.shape != (n,):
            raise DataError(f"Mask of modality {m!r} has shape {tuple(mask.shape)}; expected ({n},).")
        out[m] = mask.to(torch.bool)
    return out


def tensor_sum(terms: Iterable[Tensor]) -> Tensor:
    """``sum(terms)`` of one or more tensors, typed as the tensor it is (the builtin is ``Tensor | Literal[0]``,
    the int being its value for no terms); the same additions ``((0 + t_1) + t_2) + ...`` as the builtin."""
    total: Tensor | None = None
    for t in terms:
        total = 0 + t if total is None else total + t
    if total is None:
        raise ValueError("tensor_sum needs at least one term.")
    return total
