"""Adversarial modality invariance with a gradient reversal layer.

A discriminator ``d`` learns to tell which modality an embedding came from; the encoders receive the
*reversed* gradient and so learn embeddings from which the modality cannot be told (Ganin &
Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015, with modalities in place
of domains as in ARGF, Mai, Hu & Xing, "Modality to Modality Translation: An Adversarial
Representation Learning and Graph Fusion Network for Multimodal Fusion", AAAI 2020).

With the term weight ``w`` from the config the trainer minimises ``L_task + w L_adv``; the
discriminator descends ``w dL_adv/dtheta_d`` while the encoders, through the reversal layer, descend
``-w lambda dL_adv/dtheta_f``: the saddle point ``min_f max_d`` of Ganin & Lempitsky's
``E = L_task - lambda L_adv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfuse.objectives.autoencoder import zero_like_graph
from mmfuse.objectives.base import Objective, paired_modalities
from mmfuse.objectives.subspace import orthonormality_penalty
from mmfuse.registry import OBJECTIVES


class GradientReversal(torch.autograd.Function):
    """``R_lambda(x) = x`` in the forward pass; ``dR/dx = -lambda I`` in the backward pass (Ganin & Lempitsky, ICML
    2015, eq. 12-13)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambd: float) -> Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.lambd * grad, None


def grad_reverse(x: Tensor, lambd: float = 1.0) -> Tensor:
    """Apply :class:`GradientReversal` with scale ``lambd``. Inputs/Returns: any shape, unchanged."""
    return GradientReversal.apply(x, lambd)


def modality_discrimination_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``L_adv = -1/N sum_i log softmax(d(h_i))[m_i]``: cross-entropy of the modality labels ``m_i``.

    Inputs: ``logits (N, M)``, ``labels (N,)`` modality indices. Returns: scalar (``log M`` at chance).
    """
    return F.cross_entropy(logits, labels)


@OBJECTIVES.register("adversarial")
class ModalityAdversarial(Objective):
    """Modality discriminator behind a gradient reversal layer (see the module docstring).

    Embeddings of every present row of every modality are (optionally) projected to a shared size,
    passed through ``R_lambda`` and classified by an MLP ``shared -> hidden -> M``. When the
    modalities' sizes differ (or ``shared_dim`` is given) each has a linear projection on the *encoder*
    side of the reversal, kept semi-orthonormal by ``ortho_weight * ||P^T P - I||_F^2`` so that it cannot
    make the modalities indistinguishable by collapsing to zero.

    Args:
        dims: encoder output sizes ``{m: D_m}`` (passed by the task builder).
        lambd: gradient reversal scale ``lambda`` (may be changed during training, e.g. Ganin's
            schedule ``2 / (1 + exp(-10 p)) - 1``).
        shared_dim: projection size (default: none when all ``D_m`` are equal, else ``min D_m``).
        hidden: discriminator width. ortho_weight: weight of the projections' orthonormality penalty.

    Inputs: ``output["embeddings"] {m: (B, D_m)}``, ``output["masks"] {m: (B,)}``.
    Returns: the discriminator's cross-entropy (plus the projection penalty).
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        lambd: float = 1.0,
        shared_dim: int | None = None,
        hidden: int = 64,
        ortho_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.modalities = paired_modalities(dims, "Objective 'adversarial'")
        sizes = {int(dims[m]) for m in self.modalities}
        self.lambd, self.ortho_weight = float(lambd), float(ortho_weight)
        if shared_dim is None and len(sizes) == 1:
            self.projections = None
            width = sizes.pop()
        else:
            width = int(shared_dim or min(sizes))
            self.projections = nn.ParameterDict(
                {m: nn.Parameter(torch.empty(int(dims[m]), width)) for m in self.modalities}
            )
            for p in self.projections.values():
                nn.init.orthogonal_(p)
        self.discriminator = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, len(self.modalities)))

    def shared(self, embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{m: h_m}``: the embeddings in the shared space (projected when projections exist), ``(B, width)``."""
        if self.projections is None:
            return {m: embeddings[m] for m in self.modalities}
        return {m: embeddings[m] @ self.projections[m] for m in self.modalities}

    def logits(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Discriminator logits ``(N, M)`` of the present rows (through the reversal layer) and their modality labels
        ``(N,)``."""
        h = self.shared(embeddings)
        rows = [grad_reverse(h[m][masks[m]], self.lambd) for m in self.modalities]
        labels = torch.cat(
            [torch.full((r.shape[0],), i, dtype=torch.long, device=r.device) for i, r in enumerate(rows)]
        )
        return self.discriminator(torch.cat(rows)), labels

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """``L_adv`` (+ ``ortho_weight * sum_m ||P_m^T P_m - I||_F^2``); a graph-carrying 0 when no row is present."""
        emb, masks = output["embeddings"], output["masks"]
        logits, labels = self.logits(emb, masks)
        if labels.numel() == 0:
            loss = zero_like_graph(logits, *self.parameters())
        else:
            loss = modality_discrimination_loss(logits, labels)
        if self.projections is not None and self.ortho_weight:
            loss = loss + self.ortho_weight * sum(orthonormality_penalty(p) for p in self.projections.values())
        return loss
