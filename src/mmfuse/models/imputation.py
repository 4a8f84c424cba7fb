"""Generative imputation of absent modalities in embedding space, for a model trained with every modality.

A :class:`MultimodalModel` fills the embedding of an absent modality according to its missing-modality
strategy (:data:`MISSING_STRATEGIES`): ``"zero"`` (the contract's default), ``"token"`` (the learned
:class:`~mmfuse.models.missing.MissingTokens`), or a generative imputer trained on the model's own embeddings
after the model (:func:`mmfuse.training.imputation.fit_imputer`):

* ``"gan"`` - :class:`GANImputer`: one :class:`~mmfuse.models.gan.ConditionalGAN` per modality ``t`` generating
  ``e_t`` from the other modalities' embeddings (non-saturating loss + R1, projection discriminator);
* ``"vae"`` - :class:`VAEImputer`: the product-of-experts :class:`~mmfuse.models.autoencoder.MultimodalVAE`
  over the embeddings; ``e_t`` is decoded from the posterior of the present ones.

Both work on standardised embeddings (per-feature mean and std of the training embeddings, saved with the
weights) and fill ONLY the rows whose mask is False and that have at least one other modality; a present
embedding is never replaced. An imputed row then counts as present for the fusion, as a learned token does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.models.autoencoder import MultimodalVAE
from mmfuse.models.gan import ConditionalGAN
from mmfuse.objectives.autoencoder import zero_like_graph
from mmfuse.objectives.base import paired_modalities
from mmfuse.objectives.gan import condition_of

MISSING_STRATEGIES = ("zero", "token", "gan", "vae")


class Imputer(nn.Module):
    """Base of the generative imputers: standardisation, the fill rule, and the ``generate`` / ``loss`` hooks.

    Args:
        dims: embedding sizes ``{m: D_m}``.

    Inputs of :meth:`forward`: ``embeddings {m: (B, D_m)}``, ``masks {m: (B,)}``. Returns ``(embeddings,
    filled)``: absent rows with another modality present replaced by a generated embedding, and the masks with
    those rows set True.
    """

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__()
        self.modalities = paired_modalities(dims, "A generative imputer")
        self.dims = {m: int(dims[m]) for m in self.modalities}
        # row 0: mean, row 1: std of the training embeddings (saved in the state dict, not trained)
        self.scale = nn.ParameterDict(
            {
                m: nn.Parameter(torch.stack([torch.zeros(d), torch.ones(d)]), requires_grad=False)
                for m, d in self.dims.items()
            }
        )

    @torch.no_grad()
    def fit_scale(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> None:
        """Set the per-feature mean and std from the present rows of ``embeddings {m: (N, D_m)}``."""
        for m in self.modalities:
            x = embeddings[m][masks[m]]
            if x.shape[0] > 1:
                self.scale[m].copy_(torch.stack([x.mean(0), x.std(0).clamp_min(1e-4)]))

    def standardise(self, embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {m: (embeddings[m] - self.scale[m][0]) / self.scale[m][1] for m in self.modalities}

    def generate(self, z: Mapping[str, Tensor], masks: Mapping[str, Tensor], target: str) -> Tensor:
        """Standardised embedding of ``target`` ``(B, D_t)`` for every row, from the standardised ``z`` of the
        rows' present modalities."""
        raise NotImplementedError

    def loss(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Training terms on a batch of (raw) embeddings; minimise ``"total"``."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(
        self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        z = self.standardise(embeddings)
        out, filled = dict(embeddings), dict(masks)
        for t in self.modalities:
            others = torch.stack([masks[m] for m in self.modalities if m != t]).any(0)
            need = ~masks[t] & others  # (B,): only absent rows, only where something can condition
            if not need.any():
                continue
            gen = self.generate(z, masks, t) * self.scale[t][1] + self.scale[t][0]
            out[t] = torch.where(need[:, None], gen.to(embeddings[t].dtype), embeddings[t])
            filled[t] = masks[t] | need
        return out, filled


class GANImputer(Imputer):
    """A conditional GAN per modality on standardised embeddings (see :mod:`mmfuse.objectives.gan`).

    Args:
        dims: embedding sizes. noise_dim, hidden: generator sizes (the discriminator mirrors ``hidden``).
        r1_gamma: R1 weight. recon_weight: paired reconstruction weight (pix2pix's ``lambda``; 0 = pure GAN).
        sample: impute with ``z ~ N(0, I)`` instead of ``z = 0`` (the mode of the noise; default).
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        noise_dim: int = 16,
        hidden: Sequence[int] = (256, 256),
        r1_gamma: float = 1.0,
        recon_weight: float = 0.0,
        sample: bool = False,
    ) -> None:
        super().__init__(dims)
        self.sample = bool(sample)
        cond = {t: sum(self.dims[m] + 1 for m in self.modalities if m != t) for t in self.modalities}
        self.gans = nn.ModuleDict(
            {
                t: ConditionalGAN.from_dims(
                    cond[t], self.dims[t], noise_dim, hidden, r1_gamma=r1_gamma, recon_weight=recon_weight
                )
                for t in self.modalities
            }
        )

    def generate(self, z: Mapping[str, Tensor], masks: Mapping[str, Tensor], target: str) -> Tensor:
        gan = self.gans[target]
        assert isinstance(gan, ConditionalGAN)
        return gan.generate(condition_of(z, masks, target, self.modalities), sample=self.sample)

    def loss(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        z = {m: v.detach() for m, v in self.standardise(embeddings).items()}
        out: dict[str, Tensor] = {}
        total = zero_like_graph(*self.gans.parameters())
        for t in self.modalities:
            rows = masks[t] & torch.stack([masks[m] for m in self.modalities if m != t]).any(0)
            if int(rows.sum()) < 2:
                continue
            gan = self.gans[t]
            assert isinstance(gan, ConditionalGAN)
            terms = gan.loss(condition_of(z, masks, t, self.modalities)[rows], z[t][rows])
            out.update({f"{t}/{k}": v.detach() for k, v in terms.items() if k != "total"})
            total = total + terms["total"]
        out["total"] = total
        return out


class VAEImputer(Imputer):
    """The product-of-experts multimodal VAE on standardised embeddings (Gaussian likelihoods).

    Args:
        dims: embedding sizes. latent, hidden: VAE sizes. beta: KL weight.
    """

    def __init__(
        self, dims: Mapping[str, int], latent: int = 16, hidden: Sequence[int] = (256,), beta: float = 1.0
    ) -> None:
        super().__init__(dims)
        self.vae = MultimodalVAE.from_dims(self.dims, latent=latent, hidden=hidden, beta=beta)

    def generate(self, z: Mapping[str, Tensor], masks: Mapping[str, Tensor], target: str) -> Tensor:
        source = {m: z[m] for m in self.modalities if m != target}
        return self.vae.generate(source, target, {m: masks[m] for m in source})

    def loss(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
        z = {m: v.detach() for m, v in self.standardise(embeddings).items()}
        return self.vae.loss(z, dict(masks))


IMPUTERS: dict[str, type[Imputer]] = {"gan": GANImputer, "vae": VAEImputer}


def build_imputer(kind: str, dims: Mapping[str, int], **params: Any) -> Imputer:
    """The imputer of strategy ``kind`` (``"gan"`` or ``"vae"``) for embedding sizes ``dims``."""
    if kind not in IMPUTERS:
        raise ConfigError(f"Unknown imputer {kind!r} in ModelConfig.imputers; use one of {sorted(IMPUTERS)}.")
    try:
        return IMPUTERS[kind](dims, **params)
    except TypeError as exc:
        raise ConfigError(f"Cannot build imputer {kind!r}: {exc}.") from None


def use_missing(model: nn.Module, strategy: str | None) -> None:
    """Set ``model``'s missing-modality strategy (``None`` keeps it); a strategy the model lacks is one sentence."""
    if strategy is None:
        return
    setter = getattr(model, "set_missing", None)
    if setter is None:
        if strategy == "zero":
            return
        raise ConfigError(
            f"This model ({type(model).__name__}) has no missing-modality strategies besides 'zero'; "
            f"drop the missing={strategy!r} option."
        )
    setter(strategy)
