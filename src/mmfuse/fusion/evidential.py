"""Evidential (trusted) multi-view fusion: per-modality Dirichlet evidence combined by Dempster-Shafer theory.

Reference: Han, Zhang, Fu & Zhou, "Trusted Multi-View Classification", ICLR 2021 (TMC), and "Trusted
Multi-View Classification with Dynamic Evidential Fusion", TPAMI 2022 (ETMC).

For each present modality ``m`` with ``K`` classes:

* evidence ``e_m = softplus(f_m(z_m)) >= 0`` from a small head ``f_m``; Dirichlet ``alpha_m = e_m + 1``,
  strength ``S_m = sum_k alpha_mk``;
* subjective opinion: belief masses ``b_mk = e_mk / S_m`` and uncertainty ``u_m = K / S_m``
  (``sum_k b_mk + u_m = 1``).

Two opinions combine by the reduced Dempster rule (TMC, Definition 3.1)::

    C   = sum_{i != j} b1_i b2_j                       (conflict)
    b_k = (b1_k b2_k + b1_k u2 + b2_k u1) / (1 - C)
    u   = u1 u2 / (1 - C)

applied across the present modalities in sorted order (the rule is commutative and associative).
An absent modality contributes the vacuous opinion ``b = 0, u = 1``, the rule's identity, i.e. no
evidence; a sample with no modality gets ``u = 1`` (uniform prediction). The combined opinion maps
back to ``S = K / u``, ``e = b S``, ``alpha = e + 1``; the fusion returns the log expected class
probability ``log(alpha / S)`` (a log-probability, so the usual metrics and cross-entropy apply), and
:meth:`EvidentialFusion.evidence` exposes every Dirichlet for the TMC loss
(:mod:`mmfuse.objectives.evidential`) and for per-sample uncertainty ``u``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeGuard

import torch
import torch.nn.functional as F
from torch import Tensor

from mmfuse.fusion.late import DecisionFusion
from mmfuse.registry import FUSIONS


def opinion(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Belief masses ``b = (alpha - 1) / S`` ``(..., K)`` and uncertainty ``u = K / S`` ``(...,)`` of Dirichlet
    ``alpha``."""
    strength = alpha.sum(-1)
    return (alpha - 1) / strength[..., None], alpha.shape[-1] / strength


def dempster_combine(b1: Tensor, u1: Tensor, b2: Tensor, u2: Tensor) -> tuple[Tensor, Tensor]:
    """Reduced Dempster combination of two opinions (see the module docstring); ``b`` is ``(..., K)``, ``u``
    ``(...,)``."""
    conflict = b1.sum(-1) * b2.sum(-1) - (b1 * b2).sum(-1)  # sum_{i != j} b1_i b2_j
    scale = 1.0 / (1.0 - conflict).clamp_min(1e-12)
    b = (b1 * b2 + b1 * u2[..., None] + b2 * u1[..., None]) * scale[..., None]
    return b, u1 * u2 * scale


def alpha_from_opinion(b: Tensor, u: Tensor) -> Tensor:
    """``alpha = b S + 1`` with ``S = K / u``: the Dirichlet of a combined opinion."""
    return b * (b.shape[-1] / u)[..., None] + 1.0


@dataclass
class Evidence:
    """The Dirichlets of one batch: per modality ``(B, M, K)`` (absent rows hold the vacuous ``alpha = 1``),
    presence ``(B, M)`` and the combined Dirichlet ``(B, K)``."""

    alphas: Tensor
    present: Tensor
    combined: Tensor

    @property
    def uncertainty(self) -> Tensor:
        """Per-sample uncertainty ``u = K / S`` of the combined opinion ``(B,)``, in (0, 1]."""
        return self.combined.shape[-1] / self.combined.sum(-1)


class EvidenceSource(Protocol):
    """What a fusion whose ``produces_evidence`` flag is set provides (:class:`EvidentialFusion` does)."""

    def evidence(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Evidence: ...

    def predict_from(self, evidence: Evidence) -> Tensor: ...


def produces_evidence(fusion: object) -> TypeGuard[EvidenceSource]:
    """Whether ``fusion`` reports Dirichlet evidence (its ``produces_evidence`` flag)."""
    return bool(getattr(fusion, "produces_evidence", False))


@FUSIONS.register("evidential")
class EvidentialFusion(DecisionFusion):
    """Trusted multi-view classification (TMC): Dirichlet evidence per modality, reduced Dempster combination.

    ``e_m = softplus(f_m(z_m))``, ``alpha_m = e_m + 1``; opinions combined over the present modalities by
    :func:`dempster_combine`; returns ``log(alpha / S)`` of the combined Dirichlet ``(B, K)``. Trained by
    default with the TMC loss (registered objective ``tmc``). Han et al., ICLR 2021 (see module docstring).

    Args and Inputs as :class:`~mmfuse.fusion.late.DecisionFusion` (classification only). Returns ``(B, K)``.
    """

    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    produces_evidence: ClassVar[bool] = True
    default_objective: ClassVar[str] = "tmc"

    def evidence(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Evidence:
        outputs, present = self.predictions(embeddings, masks)  # (B, M, K), (B, M)
        alphas = torch.where(present[:, :, None], F.softplus(outputs) + 1.0, torch.ones_like(outputs))
        b, u = opinion(alphas[:, 0])
        for k in range(1, alphas.shape[1]):  # absent modalities are vacuous: the combination leaves (b, u) unchanged
            b, u = dempster_combine(b, u, *opinion(alphas[:, k]))
        return Evidence(alphas, present, alpha_from_opinion(b, u))

    def predict_from(self, evidence: Evidence) -> Tensor:
        """``log(alpha / S)`` of the combined Dirichlet: log expected class probabilities ``(B, K)``."""
        alpha = evidence.combined
        return torch.log(alpha) - torch.log(alpha.sum(-1, keepdim=True))

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor | None:
        """Share of each present modality's evidence strength, ``(S_m - K) / sum_m' (S_m' - K)`` ``(B, M)``."""
        ev = self.evidence(embeddings, masks)
        total = (ev.alphas.sum(-1) - ev.alphas.shape[-1]) * ev.present
        return total / total.sum(1, keepdim=True).clamp_min(1e-12)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        return self.predict_from(self.evidence(embeddings, masks))
