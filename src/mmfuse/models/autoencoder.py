"""Multimodal autoencoders: a correlated dual autoencoder (DCCAE / CorrNet) and the product-of-experts
multimodal VAE (MVAE).

Both compose per-modality encoders and decoders built elsewhere; :func:`mlp` and the ``from_dims``
class methods are small builders for the common MLP case (e.g. a 784-pixel image with a Bernoulli
likelihood and a vector with a Gaussian one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations

import torch
from torch import Tensor, nn

from mmfuse.contract import modality_order, tensor_sum, validate_batch
from mmfuse.errors import ConfigError
from mmfuse.objectives.autoencoder import (
    canonical_correlation_sum,
    gaussian_kl,
    pearson_correlation_sum,
    product_of_experts,
    reconstruction_loss,
    zero_like_graph,
)

LIKELIHOODS = ("gaussian", "bernoulli")


def mlp(in_dim: int, hidden: Iterable[int], out_dim: int) -> nn.Sequential:
    """``Linear -> ReLU`` blocks of widths ``hidden`` then a final ``Linear(.., out_dim)``; flattens ``(B, ...)``
    inputs."""
    layers: list[nn.Module] = [nn.Flatten()]
    prev = in_dim
    for h in hidden:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        prev = h
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def _check_likelihoods(modalities: list[str], likelihoods: Mapping[str, str] | None) -> dict[str, str]:
    out = {m: (likelihoods or {}).get(m, "gaussian") for m in modalities}
    for m, lik in out.items():
        if lik not in LIKELIHOODS:
            raise ConfigError(f"Likelihood {lik!r} of modality {m!r} is unknown; use one of {LIKELIHOODS}.")
    return out


class DualAutoencoder(nn.Module):
    """Per-modality autoencoders whose latent codes are made correlated (two or more modalities).

    ``L = sum_m recon(x_m, g_m(f_m(x_m))) - corr_weight * sum_{a<b} corr(f_a(x_a), f_b(x_b))``: the DCCAE
    objective of Wang, Arora, Livescu & Bilmes, "On Deep Multi-View Representation Learning", ICML 2015
    (``correlation="cca"``: sum of the canonical correlations), or the per-dimension Pearson variant of
    Chandar et al., "Correlational Neural Networks", Neural Computation 2016 (``correlation="pearson"``).
    Reconstruction is averaged over the rows that have the modality; correlation over the rows that
    have both modalities of a pair.

    Args:
        encoders: ``{m: module (B, ...) -> (B, k)}``; decoders: ``{m: module (B, k) -> (B, ...)}`` (logits for
        Bernoulli).
        correlation: ``"pearson"`` or ``"cca"``. corr_weight: ``lambda``. ridge: CCA covariance ridge.
        likelihoods: ``{m: "gaussian" | "bernoulli"}`` (default gaussian).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        decoders: Mapping[str, nn.Module],
        correlation: str = "pearson",
        corr_weight: float = 1.0,
        ridge: float = 1e-3,
        likelihoods: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.modalities = modality_order(encoders)
        if len(self.modalities) < 2 or sorted(decoders) != self.modalities:
            raise ConfigError(
                f"DualAutoencoder needs >= 2 modalities with one encoder and one decoder "
                f"each; got encoders {self.modalities}, decoders {sorted(decoders)}."
            )
        if correlation not in ("pearson", "cca"):
            raise ConfigError(f"DualAutoencoder correlation={correlation!r}; use 'pearson' or 'cca'.")
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.decoders = nn.ModuleDict({m: decoders[m] for m in self.modalities})
        self.correlation, self.corr_weight, self.ridge = correlation, corr_weight, ridge
        self.likelihoods = _check_likelihoods(self.modalities, likelihoods)

    @classmethod
    def from_dims(
        cls, dims: Mapping[str, int], latent: int = 16, hidden: Iterable[int] = (64,), **kwargs
    ) -> DualAutoencoder:
        """MLP encoders ``D_m -> hidden -> latent`` and mirrored decoders ``latent -> hidden -> D_m``."""
        hidden = list(hidden)
        enc = {m: mlp(d, hidden, latent) for m, d in dims.items()}
        dec = {m: mlp(latent, hidden[::-1], d) for m, d in dims.items()}
        return cls(enc, dec, **kwargs)

    def encode(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Latent codes ``{m: (B, k)}``; rows of absent modalities are zero."""
        masks = validate_batch({m: inputs[m] for m in self.modalities}, masks)
        out = {}
        for m in self.modalities:
            z = self.encoders[m](inputs[m])
            out[m] = z * masks[m].to(z.dtype)[:, None]
        return out

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Same as :meth:`encode`: ``{m: f_m(x_m)}`` ``(B, k)``."""
        return self.encode(inputs, masks)

    def loss(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Named terms ``{"reconstruction", "correlation", "total"}`` with ``total = reconstruction - corr_weight *
        correlation``.

        Inputs: ``inputs {m: (B, ...)}``, ``masks {m: (B,)}``. Returns: dict of scalars.
        """
        masks = validate_batch({m: inputs[m] for m in self.modalities}, masks)
        z = self.encode(inputs, masks)
        recon = zero_like_graph(*z.values())
        for m in self.modalities:
            recon = recon + reconstruction_loss(self.decoders[m](z[m]), inputs[m], masks[m], self.likelihoods[m])
        corr = zero_like_graph(*z.values())
        for a, b in combinations(self.modalities, 2):
            both = masks[a] & masks[b]
            if self.correlation == "cca":
                corr = corr + canonical_correlation_sum(z[a][both], z[b][both], self.ridge)
            else:
                corr = corr + pearson_correlation_sum(z[a][both], z[b][both])
        return {"reconstruction": recon, "correlation": corr, "total": recon - self.corr_weight * corr}


class MultimodalVAE(nn.Module):
    """Multimodal VAE with a product-of-experts posterior (Wu & Goodman, "Multimodal Generative Models for
    Scalable Weakly-Supervised Learning", NeurIPS 2018).

    Each modality has a Gaussian expert ``q(z | x_m) = N(mu_m, sigma_m^2)``; with the prior expert ``N(0, I)``
    the posterior of any present subset ``S`` is their product
    (:func:`~mmfuse.objectives.autoencoder.product_of_experts`).
    ``ELBO(S) = E_q(z|x_S)[sum_{m in S} lambda_m log p(x_m | z)] - beta KL(q(z | x_S) || N(0, I))``, and training
    sums the ELBOs of MVAE's sub-sampled subsets: all present modalities, each single modality and
    ``random_subsets`` random subsets.

    Args:
        encoders: ``{m: module (B, ...) -> (B, 2k)}`` giving ``[mu_m, log sigma_m^2]``.
        decoders: ``{m: module (B, k) -> (B, ...)}``: means (Gaussian) or logits (Bernoulli).
        latent: ``k``. likelihoods: ``{m: "gaussian" | "bernoulli"}``. recon_weights: ``{m: lambda_m}`` (default 1).
        beta: KL weight. random_subsets: number of extra random subsets per step.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        decoders: Mapping[str, nn.Module],
        latent: int,
        likelihoods: Mapping[str, str] | None = None,
        recon_weights: Mapping[str, float] | None = None,
        beta: float = 1.0,
        random_subsets: int = 0,
    ) -> None:
        super().__init__()
        self.modalities = modality_order(encoders)
        if sorted(decoders) != self.modalities:
            raise ConfigError(
                f"MultimodalVAE needs one decoder per encoder; encoders {self.modalities}, decoders {sorted(decoders)}."
            )
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.decoders = nn.ModuleDict({m: decoders[m] for m in self.modalities})
        self.latent, self.beta, self.random_subsets = int(latent), float(beta), int(random_subsets)
        self.likelihoods = _check_likelihoods(self.modalities, likelihoods)
        self.recon_weights = {m: float((recon_weights or {}).get(m, 1.0)) for m in self.modalities}

    @classmethod
    def from_dims(
        cls, dims: Mapping[str, int], latent: int = 16, hidden: Iterable[int] = (256,), **kwargs
    ) -> MultimodalVAE:
        """MLP experts ``D_m -> hidden -> 2k`` and decoders ``k -> hidden -> D_m`` (e.g. ``{"image": 784}`` with a
        Bernoulli likelihood)."""
        hidden = list(hidden)
        enc = {m: mlp(d, hidden, 2 * latent) for m, d in dims.items()}
        dec = {m: mlp(latent, hidden[::-1], d) for m, d in dims.items()}
        return cls(enc, dec, latent, **kwargs)

    def posterior(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """PoE posterior ``(mu, logvar)`` ``(B, k)`` of each row's present modalities; only the modalities in ``inputs``
        are encoded."""
        given = [m for m in self.modalities if m in inputs]
        if not given:
            raise ConfigError(f"MultimodalVAE needs at least one input among {self.modalities}.")
        stats = [self.encoders[m](inputs[m]) for m in given]  # each (B, 2k)
        mus = torch.stack([s[:, : self.latent] for s in stats])  # (M', B, k)
        logvars = torch.stack([s[:, self.latent :] for s in stats])
        present = torch.stack([masks[m] for m in given])  # (M', B)
        return product_of_experts(mus, logvars, present)

    def encode(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> Tensor:
        """Posterior mean ``(B, k)`` from ANY subset of modalities (those in ``inputs``, where ``masks`` is True)."""
        masks = validate_batch(dict(inputs), masks)
        return self.posterior(inputs, masks)[0]

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> Tensor:
        """Same as :meth:`encode`: the PoE posterior mean ``(B, k)``."""
        return self.encode(inputs, masks)

    def decode(self, z: Tensor, targets: Iterable[str] | None = None) -> dict[str, Tensor]:
        """Decoder means ``{m: (B, ...)}`` (sigmoid of the logits for Bernoulli modalities)."""
        out = {}
        for m in targets or self.modalities:
            y = self.decoders[m](z)
            out[m] = torch.sigmoid(y) if self.likelihoods[m] == "bernoulli" else y
        return out

    @torch.no_grad()
    def generate(
        self, source: Mapping[str, Tensor], target: str, masks: Mapping[str, Tensor] | None = None, sample: bool = False
    ) -> Tensor:
        """Generate modality ``target`` from the modalities in ``source``: decoder mean at ``z = mu`` (or a sample of
        ``q``).

        Inputs: ``source {m: (B, ...)}``, optional ``masks``. Returns: ``(B, ...)`` the target's decoder mean.
        """
        if target not in self.decoders:
            raise ConfigError(f"Cannot generate unknown modality {target!r}; the model has {self.modalities}.")
        masks = validate_batch(dict(source), masks)
        mu, logvar = self.posterior(source, masks)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return self.decode(z, [target])[target]

    def elbo_terms(
        self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor], subset: Iterable[str]
    ) -> tuple[Tensor, Tensor]:
        """Negative ELBO of one subset: ``(recon, kl)`` averaged over the rows that have at least one modality of
        ``subset``."""
        subset = [m for m in self.modalities if m in set(subset)]
        sub_masks = {m: masks[m] for m in subset}
        rows = torch.stack([sub_masks[m] for m in subset]).any(0)  # (B,)
        mu, logvar = self.posterior({m: inputs[m] for m in subset}, sub_masks)
        if not rows.any():
            return zero_like_graph(mu, logvar), zero_like_graph(mu, logvar)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
        n = rows.sum()
        recon = zero_like_graph(z)
        for m in subset:
            keep = sub_masks[m]
            if keep.any():  # mean over the subset's rows of the per-row sum over its present modalities
                recon = (
                    recon
                    + self.recon_weights[m]
                    * reconstruction_loss(self.decoders[m](z), inputs[m], keep, self.likelihoods[m])
                    * keep.sum()
                    / n
                )
        kl = gaussian_kl(mu[rows], logvar[rows]).mean()
        return recon, kl

    def subsets(self) -> list[tuple[str, ...]]:
        """MVAE's sub-sampled training subsets: the full set, each single modality and ``random_subsets`` random
        ones."""
        out = [tuple(self.modalities)] + [(m,) for m in self.modalities if len(self.modalities) > 1]
        for _ in range(self.random_subsets):  # drawn with torch's generator, so torch.manual_seed fixes them
            k = int(torch.randint(1, len(self.modalities) + 1, ()))
            out.append(tuple(self.modalities[i] for i in sorted(torch.randperm(len(self.modalities))[:k].tolist())))
        return out

    def loss(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Named terms ``{"neg_elbo/<subset>": -ELBO (detached, for logging), "reconstruction", "kl", "total"}``;
        ``total = sum_S (recon_S + beta kl_S)``.

        Inputs: ``inputs {m: (B, ...)}``, ``masks {m: (B,)}``. Returns: dict of scalars.
        """
        masks = validate_batch({m: inputs[m] for m in self.modalities}, masks)
        out: dict[str, Tensor] = {}
        recon_all, kl_all = [], []
        for s in self.subsets():
            recon, kl = self.elbo_terms(inputs, masks, s)
            out[f"neg_elbo/{'+'.join(s)}"] = (recon + self.beta * kl).detach()
            recon_all.append(recon)
            kl_all.append(kl)
        out["reconstruction"], out["kl"] = tensor_sum(recon_all), tensor_sum(kl_all)
        out["total"] = out["reconstruction"] + self.beta * out["kl"]
        return out
