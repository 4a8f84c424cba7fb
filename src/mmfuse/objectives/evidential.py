"""The TMC loss: expected cross-entropy under a Dirichlet plus an annealed KL to the uniform Dirichlet.

Reference: Han, Zhang, Fu & Zhou, "Trusted Multi-View Classification", ICLR 2021, eqs. (8)-(11).
For a Dirichlet ``alpha`` ``(B, K)`` with strength ``S = sum_k alpha_k`` and one-hot target ``y``::

    L_ace(alpha) = sum_k y_k (psi(S) - psi(alpha_k))                           (expected cross-entropy)
    alpha~       = y + (1 - y) * alpha                                          (true-class evidence removed)
    KL(alpha~)   = log Gamma(sum_k alpha~_k) - log Gamma(K) - sum_k log Gamma(alpha~_k)
                   + sum_k (alpha~_k - 1) (psi(alpha~_k) - psi(sum_j alpha~_j))  (KL[Dir(alpha~) || Dir(1)])
    L(alpha)     = L_ace(alpha) + lambda_t KL(alpha~),   lambda_t = min(1, t / T_anneal)

and the overall loss sums it over the combined Dirichlet and every modality's own Dirichlet (each
averaged over the samples that have the modality), so that each view is trained to be trustworthy
alone. ``t`` counts training steps (the paper counts epochs; steps make the schedule independent of
the data size); ``T_anneal`` is ``anneal_steps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mmfuse.objectives.base import Objective
from mmfuse.registry import OBJECTIVES


def dirichlet_kl_uniform(alpha: Tensor) -> Tensor:
    """``KL[Dir(alpha) || Dir(1, ..., 1)]`` per row ``(B,)`` of ``alpha`` ``(B, K)``."""
    k = alpha.shape[-1]
    strength = alpha.sum(-1)
    return (
        torch.lgamma(strength)
        - torch.lgamma(alpha.new_tensor(float(k)))
        - torch.lgamma(alpha).sum(-1)
        + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(strength)[:, None])).sum(-1)
    )


def tmc_loss(alpha: Tensor, target: Tensor, kl_weight: float) -> Tensor:
    """Per-row TMC loss ``L_ace(alpha) + kl_weight * KL(alpha~)`` ``(B,)`` (module docstring); ``target`` ``(B,)`` class
    indices."""
    y = F.one_hot(target.long(), alpha.shape[-1]).to(alpha.dtype)
    ace = (y * (torch.digamma(alpha.sum(-1, keepdim=True)) - torch.digamma(alpha))).sum(-1)
    return ace + kl_weight * dirichlet_kl_uniform(y + (1 - y) * alpha)


@OBJECTIVES.register("tmc")
class TMCLoss(Objective):
    """TMC loss over the combined and the per-modality Dirichlets of an evidential fusion (module docstring).

    Args:
        anneal_steps: training steps over which the KL weight rises linearly from 0 to 1.
        per_modality: also train each modality's own Dirichlet (as TMC does).
    """

    needs = ("evidence",)
    step: Tensor  # buffer (registered in __init__)

    def __init__(self, anneal_steps: int = 500, per_modality: bool = True) -> None:
        super().__init__()
        self.anneal_steps = max(1, int(anneal_steps))
        self.per_modality = bool(per_modality)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        ev = output.get("evidence")
        if ev is None:
            raise ValueError(
                "Objective 'tmc' needs an evidential fusion (fusion='evidential'), which reports Dirichlet evidence."
            )
        if self.training:
            self.step += 1
        weight = min(1.0, float(self.step) / self.anneal_steps)
        target = batch["target"]
        loss = tmc_loss(ev.combined, target, weight).mean()
        if self.per_modality:
            for k in range(ev.alphas.shape[1]):
                keep = ev.present[:, k]
                if keep.any():
                    loss = loss + tmc_loss(ev.alphas[keep, k], target[keep], weight).mean()
        return loss
