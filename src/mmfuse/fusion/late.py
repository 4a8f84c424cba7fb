"""Late (decision-level) fusion: one predictor per modality, predictions combined over the modalities present.

Each method holds a small MLP head ``f_m: z_m -> out_dim`` per modality and combines the heads'
outputs ``l_m = f_m(z_m)`` (logits for classification and multi-label, values for regression):

* classification returns log-probabilities ``(B, C)``,
* regression returns values ``(B, T)``,
* multi-label returns logits ``(B, L)``.

Absent modalities never contribute or vote; a sample with no modality at all gets uniform
log-probabilities (classification), zeros (regression) or zero logits, i.e. p = 0.5 (multi-label).

Reference for the family: Snoek, Worring & Smeulders, "Early versus late fusion in semantic video
analysis", ACM Multimedia 2005; Kittler, Hatef, Duin & Matas, "On combining classifiers", TPAMI 1998
(mean, weighted-mean, majority-vote and median rules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.fusion._common import check_positive, check_task, log_mixture, mlp, present_embeddings, present_weights
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS
from mmfuse.tasks import TaskKind, task_kind


def late_average(outputs: Tensor, weights: Tensor, present: Tensor, task: str | TaskKind) -> Tensor:
    """Weighted mean rule over the modalities present (Kittler et al. 1998's sum rule).

    * classification: ``log sum_m w_m softmax(l_m)`` (log of the mean probability),
    * regression: ``sum_m w_m l_m``,
    * multilabel: ``logit(sum_m w_m sigmoid(l_m))``, computed as
      ``log sum_m w_m sigmoid(l_m) - log sum_m w_m sigmoid(-l_m)``.

    Inputs:
        outputs: per-modality outputs ``(B, M, C)``; weights: ``(B, M)`` summing to 1 over the present
        modalities (0 elsewhere); present: ``(B, M)`` bool.

    Returns:
        ``(B, C)``.
    """
    kind = task_kind(task)
    if kind.activation == "identity":
        return (weights[:, :, None] * outputs).sum(dim=1)
    if kind.activation == "sigmoid":
        half = math.log(0.5)
        return log_mixture(F.logsigmoid(outputs), weights, present, half) - log_mixture(
            F.logsigmoid(-outputs), weights, present, half
        )
    return log_mixture(torch.log_softmax(outputs, dim=-1), weights, present, -math.log(outputs.shape[-1]))


def majority_vote(outputs: Tensor, present: Tensor, task: str, tie_break: float = 0.5) -> Tensor:
    """Majority vote of the present modalities (median for regression); Kittler et al. 1998's vote rule.

    * classification: votes ``v_c = #{m present: argmax l_m = c}``, mean probability
      ``p = mean_{m present} softmax(l_m)``, output ``log((v + eps p) / sum_c (v_c + eps p_c))`` with
      ``eps = tie_break``: the argmax is the majority class (for any ``0 < eps < 1``: a vote is worth
      more than any probability gap), ties broken by the mean probability. The output is rounded
      near ``log(1/2)``, so a tie whose mean probabilities differ by less than about ``1e-7 / eps`` is
      lost in float32; hence the default ``eps = 0.5`` rather than a tiny value (with ``1e-3``,
      gaps below ~1e-4 - common between two confident, disagreeing modalities - went to the lower class index).
    * multilabel: the same per label with two classes (``l > 0`` votes positive); returns the logit
      ``log(v_pos + eps p) - log(v_neg + eps (1 - p))``.
    * regression: the median of the present predictions (mean of the two middle values for an even count).

    Inputs:
        outputs: ``(B, M, C)``; present: ``(B, M)`` bool.

    Returns:
        ``(B, C)``; not differentiable in the votes (use :func:`late_average` to train).
    """
    count = present.sum(dim=1)  # (B,)
    kind = task_kind(task)
    if kind.activation == "identity":
        vals = outputs.masked_fill(~present[:, :, None], float("inf")).sort(dim=1).values  # absent sorted last
        lo = ((count - 1).clamp_min(0) // 2)[:, None, None].expand(-1, 1, outputs.shape[2])
        hi = (count // 2).clamp_max(outputs.shape[1] - 1)[:, None, None].expand(-1, 1, outputs.shape[2])
        median = 0.5 * (vals.gather(1, lo) + vals.gather(1, hi)).squeeze(1)  # (B, C)
        return torch.where((count > 0)[:, None], median, torch.zeros_like(median))
    uniform = present_weights(torch.zeros(present.shape[1], dtype=outputs.dtype, device=outputs.device), present)
    if kind.activation == "sigmoid":
        pos = ((outputs > 0) & present[:, :, None]).sum(dim=1).to(outputs.dtype)  # (B, L)
        neg = count[:, None].to(outputs.dtype) - pos
        p = torch.sigmoid(late_average(outputs, uniform, present, kind))
        return torch.log((pos + tie_break * p).clamp_min(1e-30)) - torch.log(
            (neg + tie_break * (1 - p)).clamp_min(1e-30)
        )
    votes = (
        (F.one_hot(outputs.argmax(dim=-1), outputs.shape[-1]) * present[:, :, None]).sum(dim=1).to(outputs.dtype)
    )  # (B, C)
    mean_prob = late_average(outputs, uniform, present, kind).exp()  # (B, C), uniform if no modality
    score = (votes + tie_break * mean_prob).clamp_min(1e-30)
    return torch.log(score) - torch.log(score.sum(dim=-1, keepdim=True))


class DecisionFusion(Fusion):
    """Base of the late fusions: one MLP head per modality, combined by :meth:`combine`.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: number of outputs (classes, regression targets or labels).
        task: "classification", "regression" or "multilabel".
        hidden: hidden width of each per-modality head.
        dropout: dropout inside the heads.
    """

    decision_level: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression", "multilabel")  # the tasks the method serves

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        task: str = "classification",
        hidden: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dims, out_dim)
        method = getattr(type(self), "registry_name", type(self).__name__)
        check_positive(method, out_dim=out_dim, hidden=hidden)
        self.task = check_task(task, method)
        if self.task not in self.tasks:
            raise ConfigError(f"Fusion {method!r} serves task(s) {list(self.tasks)}, not {task!r}.")
        self.heads = nn.ModuleDict({m: mlp(d, hidden, self.out_dim, dropout) for m, d in self.dims.items()})

    def predictions(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-modality outputs ``(B, M, out_dim)`` (absent rows computed from zeros, never used) and presence ``(B,
        M)``."""
        zs, present = present_embeddings(self, embeddings, masks)
        return torch.stack([self.heads[m](z) for m, z in zip(self.modalities, zs)], dim=1), present

    def weights(self, present: Tensor) -> Tensor:
        """Combination weights ``(B, M)``: equal over the modalities present."""
        return present_weights(torch.zeros(present.shape[1], device=present.device), present)

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor | None:
        _, present = present_embeddings(self, embeddings, masks)
        return self.weights(present)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        outputs, present = self.predictions(embeddings, masks)
        return late_average(outputs, self.weights(present), present, self.task)


@FUSIONS.register("late_mean")
class LateMeanFusion(DecisionFusion):
    """Late fusion by the mean rule over the modalities present (see :func:`late_average` with equal weights).

    classification: ``log(1/|P| sum_{m in P} softmax(l_m))``; regression: ``1/|P| sum_{m in P} l_m``;
    multilabel: ``logit(1/|P| sum_{m in P} sigmoid(l_m))``, with ``P`` the modalities present.
    Reference: Kittler et al., "On combining classifiers", TPAMI 1998 (sum/mean rule).
    Args and Inputs as :class:`DecisionFusion`. Returns ``(B, out_dim)``.
    """


@FUSIONS.register("late_product")
class LateProductFusion(DecisionFusion):
    """Late fusion by the product rule over the modalities present (Kittler et al. 1998).

    classification: ``log softmax(sum_{m in P} log softmax(l_m))``, the normalised product of the per-modality
    posteriors: with modalities conditionally independent given the class and a uniform prior,
    ``p(y | x_1..x_M) ∝ prod_m p(y | x_m)``, so this is the Bayes combination where the mean rule only averages
    (and cannot let two half-sure modalities make one sure answer). multilabel: ``sum_{m in P} l_m`` (the product of
    the odds, prior 1/2); regression: ``1/|P| sum_{m in P} l_m`` (the product of equal-variance Gaussians). With no
    modality present: uniform / logit 0 / 0.
    Reference: Kittler, Hatef, Duin & Matas, "On combining classifiers", TPAMI 1998 (product rule).
    Args and Inputs as :class:`DecisionFusion`. Returns ``(B, out_dim)``.
    """

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        outputs, present = self.predictions(embeddings, masks)
        kind = task_kind(self.task)
        if kind.activation == "identity":
            return late_average(outputs, self.weights(present), present, self.task)
        on = present[:, :, None].to(outputs.dtype)
        if kind.activation == "sigmoid":
            return (on * outputs).sum(dim=1)
        return torch.log_softmax((on * torch.log_softmax(outputs, dim=-1)).sum(dim=1), dim=-1)


@FUSIONS.register("late_weighted")
class LateWeightedFusion(DecisionFusion):
    """Late fusion by a learned weighted mean: :func:`late_average` with ``w = softmax(a)`` over the modalities present.

    ``w_m = exp(a_m) / sum_{k in P} exp(a_k)`` for present ``m`` (0 otherwise), ``a`` learned and
    initialised to 0 (equal weights). Reference: Kittler et al. 1998 (weighted sum rule); Atrey et
    al., "Multimodal fusion for multimedia analysis: a survey", 2010 (linear weighted fusion).
    Args and Inputs as :class:`DecisionFusion`. Returns ``(B, out_dim)``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        task: str = "classification",
        hidden: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dims, out_dim, task, hidden, dropout)
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))

    def weights(self, present: Tensor) -> Tensor:
        return present_weights(self.logits, present)


@FUSIONS.register("late_vote")
class LateVoteFusion(DecisionFusion):
    """Late fusion by majority vote (median for regression) at evaluation; a differentiable surrogate in training.

    * ``self.training`` False (evaluation, prediction): :func:`majority_vote` - the class most
      present modalities pick, ties broken by the mean probability, returned as
      ``log((votes + eps mean_prob) / sum)`` with ``eps = tie_break``; regression: median of the
      present predictions.
    * ``self.training`` True: a vote has no useful gradient, so training optimises the surrogate
      :func:`late_average` with equal weights (``log mean_{m present} softmax(l_m)``, the mean for
      regression), i.e. the heads are trained exactly as in ``late_mean``.

    Reference: Kittler et al., "On combining classifiers", TPAMI 1998 (majority vote and median rules).

    Args:
        tie_break: weight ``eps`` in (0, 1) of the mean probability added to the votes (breaks ties,
            keeps the log finite; see :func:`majority_vote` for why it is not tiny).
        Others as :class:`DecisionFusion`.

    Inputs: as :class:`DecisionFusion`. Returns ``(B, out_dim)``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        task: str = "classification",
        hidden: int = 64,
        dropout: float = 0.0,
        tie_break: float = 0.5,
    ) -> None:
        super().__init__(dims, out_dim, task, hidden, dropout)
        if not 0.0 < float(tie_break) < 1.0:
            raise ConfigError(
                f"Fusion 'late_vote' option tie_break={tie_break} must be in (0, 1) so that it never overrides a vote."
            )
        self.tie_break = float(tie_break)

    def modality_weights(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor | None:
        return None  # every present modality has one vote; there is no weight to report

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        outputs, present = self.predictions(embeddings, masks)
        if self.training:
            return late_average(outputs, self.weights(present), present, self.task)
        return majority_vote(outputs, present, self.task, self.tie_break)
