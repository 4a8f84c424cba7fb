"""Cross-modal contrastive objectives: margin-based contrastive loss and InfoNCE / CLIP.

Also home of :class:`CrossModalObjective`, the base of every objective that compares the embeddings
of two or more modalities on the rows where they are all present (CCA, CKA, ... reuse it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfuse.errors import ConfigError, DataError
from mmfuse.objectives._distributed import gather_rows, world
from mmfuse.objectives.base import Objective
from mmfuse.registry import OBJECTIVES


class CrossModalObjective(Objective):
    """Base of objectives over groups of modalities (pairs unless ``group_size`` is ``None``).

    Args:
        modalities: the modalities compared, e.g. ``("audio", "image")``; default: every pair of the
            model's modalities in sorted order (the loss is averaged over pairs), or all of them for
            multi-view objectives.
        dims: encoders' output sizes ``{m: D_m}`` (passed by the task builder); needed for ``proj_dim``.
        proj_dim: size of bias-free linear heads ``z_m W_m`` projecting each modality to a common space.
            Objectives that need one space (``needs_common_space``) default to ``min(dims)`` when the
            dims differ, and use the embeddings directly when they are equal.

    Only rows where every compared modality is present (mask True) enter the loss; a group with
    fewer than ``min_rows`` such rows is skipped, and with none left the loss is a graph-connected 0.
    """

    needs_common_space: ClassVar[bool] = False
    group_size: ClassVar[int | None] = 2
    min_rows: ClassVar[int] = 2

    def __init__(
        self,
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__()
        if modalities is not None:
            modalities = tuple(sorted(modalities))
            if len(set(modalities)) < 2 or (self.group_size is not None and len(modalities) != self.group_size):
                need = f"exactly {self.group_size}" if self.group_size else "at least 2"
                raise ConfigError(
                    f"Option 'modalities' of {type(self).__name__} needs {need} distinct modality "
                    f"names; got {list(modalities)}."
                )
        self.modalities = modalities
        self.dims = {m: int(dims[m]) for m in sorted(dims)} if dims else None
        if self.dims and modalities and set(modalities) - set(self.dims):
            raise ConfigError(
                f"Option 'modalities' names {sorted(set(modalities) - set(self.dims))}, "
                f"which the model does not have; known: {sorted(self.dims)}."
            )
        compared = {m: d for m, d in (self.dims or {}).items() if modalities is None or m in modalities}
        if proj_dim is None and self.needs_common_space and len(set(compared.values())) > 1:
            proj_dim = min(compared.values())
        if proj_dim is not None and not compared:
            raise ConfigError(f"Option 'proj_dim' of {type(self).__name__} needs 'dims' (the encoders' output sizes).")
        self.proj_dim = proj_dim
        self.proj = (
            nn.ModuleDict({m: nn.Linear(d, proj_dim, bias=False) for m, d in compared.items()}) if proj_dim else None
        )

    @property
    def project(self) -> Callable[[Mapping[str, Tensor]], dict[str, Tensor]]:
        """``project(embeddings) -> {m: z_m W_m}`` into the common space (used by retrieval).

        Present only when the objective owns projection heads: without them ``hasattr(obj, "project")``
        is False, so :func:`mmfuse.retrieval.embed` does not mistake this objective for a projector.
        """
        if self.proj is None:
            raise AttributeError(f"{type(self).__name__} has no projection heads (built without 'proj_dim').")
        return self._project

    def _project(self, embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
        proj = self.proj
        assert proj is not None  # reached only through ``project``, which checks it
        return {m: proj[m](z) if m in proj else z for m, z in embeddings.items()}

    def groups(self, embeddings: Mapping[str, Tensor]) -> list[tuple[str, ...]]:
        """The modality groups compared, each sorted."""
        if self.modalities is not None:
            missing = [m for m in self.modalities if m not in embeddings]
            if missing:
                raise DataError(
                    f"{type(self).__name__} compares {list(self.modalities)}, but the model output lacks {missing}."
                )
            return [self.modalities]
        names = sorted(embeddings)
        if self.group_size is None:
            return [tuple(names)] if len(names) >= 2 else []
        return list(itertools.combinations(names, self.group_size))

    def views(self, output: Mapping[str, Any], group: Sequence[str]) -> tuple[list[Tensor], Tensor]:
        """Projected embeddings of ``group`` on the rows where all are present, and those rows ``(B,)`` bool."""
        emb = output["embeddings"]
        masks = output.get("masks") or {}
        keep = torch.ones(emb[group[0]].shape[0], dtype=torch.bool, device=emb[group[0]].device)
        for m in group:
            if m in masks:
                keep = keep & masks[m].to(torch.bool)
        zs = []
        for m in group:
            z = emb[m][keep]
            if self.proj is not None:
                if m not in self.proj:
                    raise DataError(
                        f"{type(self).__name__} has no projection for modality {m!r}; 'dims' lists {sorted(self.proj)}."
                    )
                z = self.proj[m](z)
            zs.append(z)
        if self.needs_common_space and len({z.shape[1] for z in zs}) > 1:
            raise ConfigError(
                f"{type(self).__name__} needs one embedding size, but {list(group)} have "
                f"{[z.shape[1] for z in zs]}; pass 'dims' or 'proj_dim'."
            )
        return zs, keep

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:  # pragma: no cover
        """The loss of one group given its present rows."""
        raise NotImplementedError

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """Mean of :meth:`group_loss` over the groups, each on the paired rows of the *global* batch: under
        data parallelism the rows of every process are gathered
        (:func:`~mmfuse.objectives._distributed.gather_rows`)."""
        emb = output["embeddings"]
        terms = []
        for group in self.groups(emb):
            zs, keep = self.views(output, group)
            group_batch = batch
            if world()[1] > 1:  # the loss compares rows with each other: compare all of them, not one shard
                target = batch.get("target")
                zs = [gather_rows(z) for z in zs]
                group_batch = {**batch, "target": gather_rows(target[keep]) if isinstance(target, Tensor) else target}
                keep = torch.ones(zs[0].shape[0], dtype=torch.bool, device=zs[0].device)
            if int(keep.sum()) >= self.min_rows:
                terms.append(self.group_loss(zs, keep, group_batch))
        if not terms:  # nothing paired in this batch: 0 that still reaches every embedding
            return sum(z.sum() for z in emb.values()) * 0.0
        return torch.stack(terms).mean()


def contrastive_margin_loss(za: Tensor, zb: Tensor, positive_mask: Tensor, margin: float = 1.0) -> Tensor:
    """Margin contrastive loss over cross-modal pairs (Hadsell, Chopra & LeCun, "Dimensionality
    Reduction by Learning an Invariant Mapping", CVPR 2006):

        ``L = 1/B^2 sum_{i,j} [ y_ij d_ij^2 + (1 - y_ij) max(0, margin - d_ij)^2 ]``

    with ``d_ij = ||za_i/||za_i|| - zb_j/||zb_j|| ||`` (so ``d`` lies in ``[0, 2]``) and ``y_ij = 1`` for
    positive pairs. The paper's factors 1/2 are dropped (they only rescale the term's weight).

    Inputs:
        za: ``(B, D)``; zb: ``(B, D)``; positive_mask: ``(B, B)`` bool, ``[i, j]`` True if ``za_i``, ``zb_j`` match.

    Returns:
        scalar.
    """
    za, zb = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    d2 = (2.0 - 2.0 * za @ zb.T).clamp_min(0.0)  # squared distance of unit vectors, (B, B)
    d = d2.clamp_min(1e-12).sqrt()  # clamped: sqrt has an infinite slope at 0
    y = positive_mask.to(d2.dtype)
    return (y * d2 + (1.0 - y) * (margin - d).clamp_min(0.0) ** 2).mean()


def info_nce_loss(za: Tensor, zb: Tensor, temperature: Tensor | float) -> Tensor:
    """Symmetric InfoNCE (Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive
    Coding", 2018) in the CLIP form (Radford et al., "Learning Transferable Visual Models From Natural
    Language Supervision", ICML 2021):

        ``S = za_hat zb_hat^T / tau``,  ``L = 1/2 [CE(S, I) + CE(S^T, I)]``

    where hats are L2-normalised rows and ``CE(S, I) = -1/B sum_i log softmax(S_i)[i]`` (row ``i`` of
    ``za`` matches row ``i`` of ``zb``; the other rows of the batch are the negatives).

    Inputs:
        za: ``(B, D)``; zb: ``(B, D)``; temperature: ``tau`` > 0 (float or scalar tensor).

    Returns:
        scalar.
    """
    za, zb = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    logits = za @ zb.T / temperature  # (B, B)
    labels = torch.arange(za.shape[0], device=za.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


@OBJECTIVES.register("contrastive_margin")
class ContrastiveMargin(CrossModalObjective):
    """:func:`contrastive_margin_loss` between modalities.

    Args:
        margin: distance beyond which negative pairs cost nothing (normalised embeddings: ``d <= 2``).
        positive: "sample" (the same row is the positive) or "label" (rows with the same target).
        modalities, dims, proj_dim: see :class:`CrossModalObjective`.
    """

    needs_common_space = True

    def __init__(
        self,
        margin: float = 1.0,
        positive: str = "sample",
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__(modalities, dims, proj_dim)
        if positive not in ("sample", "label"):
            raise ConfigError(f"Option 'positive' of contrastive_margin is {positive!r}; use 'sample' or 'label'.")
        self.margin, self.positive = float(margin), positive

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        za, zb = zs
        if self.positive == "sample":
            pos = torch.eye(za.shape[0], dtype=torch.bool, device=za.device)
        else:
            if batch.get("target") is None:
                raise DataError(
                    "contrastive_margin with positive='label' needs batch['target']; use positive='sample' "
                    "without labels."
                )
            y = batch["target"][keep]
            y = y.reshape(y.shape[0], -1)
            pos = (y[:, None, :] == y[None, :, :]).all(-1)  # (B, B), same label (all entries for 2-D targets)
        return contrastive_margin_loss(za, zb, pos, self.margin)


@OBJECTIVES.register("infonce")
class InfoNCE(CrossModalObjective):
    """:func:`info_nce_loss` between modalities (CLIP's symmetric loss).

    The temperature is ``tau = 1 / exp(s)`` with a log-scale ``s`` initialised to ``log(1 / temperature)``
    (CLIP: ``log(1/0.07)``) and learnable unless ``learn_temperature=False``; the scale ``exp(s)`` is
    clamped at 100 as in CLIP.

    Args:
        temperature: initial ``tau``.
        learn_temperature: make ``s`` a parameter.
        modalities, dims, proj_dim: see :class:`CrossModalObjective`.
    """

    needs_common_space = True
    max_scale: ClassVar[float] = 100.0

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        modalities: Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__(modalities, dims, proj_dim)
        if temperature <= 0:
            raise ConfigError(f"Option 'temperature' of infonce is {temperature}; it must be > 0.")
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def temperature(self) -> Tensor:
        """Current ``tau = 1 / min(exp(s), 100)``."""
        return 1.0 / self.log_scale.exp().clamp(max=self.max_scale)

    def group_loss(self, zs: list[Tensor], keep: Tensor, batch: Mapping[str, Any]) -> Tensor:
        return info_nce_loss(zs[0], zs[1], self.temperature)
