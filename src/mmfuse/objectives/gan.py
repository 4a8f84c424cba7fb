"""Conditional GAN: a generator of one modality from the others, a projection discriminator, and their losses.

The losses are the logistic GAN of Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, with the
generator's *non-saturating* form, stabilised by the R1 gradient penalty on real data of Mescheder, Geiger &
Nowozin, "Which Training Methods for GANs do actually Converge?", ICML 2018 (their recommended recipe).
With ``D(x, c)`` the discriminator's logit, ``G(z, c)`` the generator and ``s`` the softplus:

* ``L_D = E_x[s(-D(x, c))] + E_z[s(D(G(z, c), c))] + gamma/2 E_x[||grad_x D(x, c)||^2]``
* ``L_G = E_z[s(-D(G(z, c), c))] (+ lambda E ||G(z, c) - x||^2``, the paired reconstruction term of pix2pix,
  Isola et al., CVPR 2017, off by default)

The discriminator is conditioned by projection (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR
2018, eq. 3): ``D(x, c) = psi(phi(x)) + <V(c), phi(x)>`` with ``V`` a learned map of the (continuous)
condition. :func:`gan_terms` returns both players' losses in one scalar, ``L_D + L_G``, in which each player
only receives the gradient of its own loss: ``L_D`` sees the fake sample detached, and ``L_G`` goes through a
copy of ``D`` whose parameters are detached. One optimiser step on the sum is then one step of simultaneous
gradient descent on both players, which converges locally with the R1 penalty (Mescheder et al. 2018, thm. 4.1).

:class:`EmbeddingConditionalGAN` (``"conditional_gan"``) trains such a pair per modality on the embeddings of a
:class:`~mmfuse.models.MultimodalModel`: it learns to generate the encoder output of a modality from the
embeddings of the others (cheap, and the same for every kind of modality).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mmfuse.errors import ConfigError
from mmfuse.objectives.autoencoder import zero_like_graph
from mmfuse.objectives.base import Objective, paired_modalities
from mmfuse.registry import OBJECTIVES

OUTPUTS = ("linear", "sigmoid")


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``L_D = mean s(-D(x, c)) + mean s(D(G(z, c), c))``, ``s`` = softplus (Goodfellow et al. 2014, eq. 1 as a loss).

    Inputs: ``real_logits (N,)``, ``fake_logits (N,)``. Returns: scalar (``2 log 2`` when ``D`` outputs 0).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating ``L_G = mean s(-D(G(z, c), c))`` (Goodfellow et al. 2014, section 3).

    Inputs: ``fake_logits (N,)``. Returns: scalar.
    """
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """``R1 = 1/2 mean_i ||grad_x D(x_i, c_i)||^2`` on real samples (Mescheder et al., ICML 2018, eq. 9).

    ``real`` must require grad and ``real_logits`` be computed from it. Returns: scalar (the caller weighs it
    by ``gamma``).
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return 0.5 * grad.reshape(grad.shape[0], -1).pow(2).sum(1).mean()


def _mlp(in_dim: int, hidden: Sequence[int], act: nn.Module) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    prev = in_dim
    for h in hidden:
        layers += [nn.Linear(prev, int(h)), act]
        prev = int(h)
    return nn.Sequential(*layers), prev


class ConditionalGenerator(nn.Module):
    """``G(z, c) = MLP([z, c])``: a sample of the target ``(B, out_dim)`` given a condition ``(B, cond_dim)``.

    Args:
        cond_dim: condition size. out_dim: target size (flattened). noise_dim: size of ``z ~ N(0, I)``.
        hidden: widths of the ``Linear -> ReLU`` blocks. output: ``"linear"`` (embeddings, standardised
        features) or ``"sigmoid"`` (pixels in ``[0, 1]``).

    Inputs: ``c (B, cond_dim)``, ``z (B, noise_dim)`` (default: ``N(0, I)`` draws). Returns: ``(B, out_dim)``.
    """

    def __init__(
        self, cond_dim: int, out_dim: int, noise_dim: int = 16, hidden: Sequence[int] = (256,), output: str = "linear"
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"Generator output {output!r} is unknown; use one of {OUTPUTS}.")
        self.cond_dim, self.out_dim, self.noise_dim, self.output = int(cond_dim), int(out_dim), int(noise_dim), output
        self.body, width = _mlp(self.noise_dim + self.cond_dim, hidden, nn.ReLU())
        self.out = nn.Linear(width, self.out_dim)

    def forward(self, c: Tensor, z: Tensor | None = None) -> Tensor:
        if z is None:
            z = torch.randn(c.shape[0], self.noise_dim, device=c.device, dtype=c.dtype)
        y = self.out(self.body(torch.cat([z, c.reshape(c.shape[0], -1)], 1)))
        return torch.sigmoid(y) if self.output == "sigmoid" else y


class ProjectionDiscriminator(nn.Module):
    """``D(x, c) = psi(phi(x)) + <V(c), phi(x)>`` (Miyato & Koyama, ICLR 2018, eq. 3; ``V`` linear in ``c``).

    Args:
        in_dim: sample size (flattened). cond_dim: condition size. hidden: widths of ``phi`` (LeakyReLU 0.2).

    Inputs: ``x (B, ...)``, ``c (B, cond_dim)``. Returns: logits ``(B,)``.
    """

    def __init__(self, in_dim: int, cond_dim: int, hidden: Sequence[int] = (256,)) -> None:
        super().__init__()
        if not hidden:
            raise ConfigError("ProjectionDiscriminator needs at least one hidden layer (the features phi(x)).")
        self.phi, width = _mlp(int(in_dim), hidden, nn.LeakyReLU(0.2))
        self.psi = nn.Linear(width, 1)
        self.embed = nn.Linear(int(cond_dim), width, bias=False)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.phi(x.reshape(x.shape[0], -1))  # (B, width)
        return self.psi(h).squeeze(1) + (self.embed(c.reshape(c.shape[0], -1)) * h).sum(1)


def gan_terms(
    generator: nn.Module,
    discriminator: nn.Module,
    cond: Tensor,
    real: Tensor,
    r1_gamma: float = 1.0,
    recon_weight: float = 0.0,
    z: Tensor | None = None,
) -> dict[str, Tensor]:
    """Both players' losses on one batch (see the module docstring); ``total = L_D + L_G`` trains both at once.

    The condition reaches the generator undetached (so what computes it may learn from ``L_G``) and the
    discriminator detached. R1 is skipped when autograd is off (evaluation under ``torch.no_grad``).

    Inputs: ``cond (B, C)``, ``real (B, ...)`` (not modified), ``z`` optional noise. Returns:
    ``{"discriminator", "generator", "r1", "reconstruction", "total"}``, scalars.
    """
    fake = generator(cond, z).reshape(real.shape)
    c_d = cond.detach()
    with_r1 = torch.is_grad_enabled() and r1_gamma > 0
    x = real.detach().requires_grad_(with_r1)
    d_real = discriminator(x, c_d)
    loss_d = discriminator_loss(d_real, discriminator(fake.detach(), c_d))
    r1 = r1_penalty(d_real, x) if with_r1 else zero_like_graph(d_real)
    frozen = {k: v.detach() for k, v in discriminator.named_parameters()}
    loss_g = generator_loss(functional_call(discriminator, frozen, (fake, c_d)))
    recon = (fake - real.detach()).reshape(real.shape[0], -1).pow(2).sum(1).mean()
    total = loss_d + r1_gamma * r1 + loss_g + (recon_weight * recon if recon_weight else 0.0 * recon)
    return {"discriminator": loss_d, "generator": loss_g, "r1": r1, "reconstruction": recon, "total": total}


def condition_of(
    embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor], target: str, modalities: Iterable[str]
) -> Tensor:
    """The condition of ``target``'s generator: ``[e_m * mask_m, mask_m]`` over the other modalities, sorted.

    Inputs: ``embeddings {m: (B, D_m)}``, ``masks {m: (B,)}``. Returns: ``(B, sum_{m != target} (D_m + 1))``; what
    an absent row holds never reaches it.
    """
    parts = []
    for m in sorted(modalities):
        if m == target:
            continue
        keep = masks[m].to(embeddings[m].dtype)[:, None]
        parts += [embeddings[m] * keep, keep]
    return torch.cat(parts, 1)


@OBJECTIVES.register("conditional_gan")
class EmbeddingConditionalGAN(Objective):
    """A conditional GAN per target modality ``t`` on the model's embeddings: ``G_t(z, c_t) ~ e_t``.

    ``c_t`` is :func:`condition_of` (the other modalities' embeddings and presence). Rows used for ``t``: those
    that have ``t`` and at least one other modality. The real ``e_t`` is detached (the GAN follows the encoder,
    it does not move it); the condition is not, so ``L_G`` also shapes the encoders of the present modalities,
    as the modality translation of ARGF does (Mai, Hu & Xing, AAAI 2020). In eval mode ``z = 0``
    (deterministic validation losses). The trained generators can stand in for absent embeddings at predict time
    (:class:`mmfuse.models.imputation.GANImputer` uses the same networks).

    Args:
        dims: encoder output sizes ``{m: D_m}`` (passed by the task builder). targets: modalities to generate
        (default all). noise_dim, hidden: generator / discriminator sizes. r1_gamma: ``gamma``.
        recon_weight: ``lambda`` of the paired reconstruction term.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        targets: Sequence[str] | None = None,
        noise_dim: int = 16,
        hidden: int = 128,
        r1_gamma: float = 1.0,
        recon_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.modalities = paired_modalities(dims, "Objective 'conditional_gan'")
        self.targets = sorted(targets) if targets is not None else list(self.modalities)
        unknown = [t for t in self.targets if t not in dims]
        if unknown:
            raise ConfigError(f"Objective 'conditional_gan' targets {unknown} are not modalities of {self.modalities}.")
        self.r1_gamma, self.recon_weight = float(r1_gamma), float(recon_weight)
        cond = {t: sum(int(dims[m]) + 1 for m in self.modalities if m != t) for t in self.targets}
        self.generators = nn.ModuleDict(
            {t: ConditionalGenerator(cond[t], int(dims[t]), noise_dim, (hidden, hidden)) for t in self.targets}
        )
        self.discriminators = nn.ModuleDict(
            {t: ProjectionDiscriminator(int(dims[t]), cond[t], (hidden, hidden)) for t in self.targets}
        )

    def terms(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"<t>/discriminator", "<t>/generator", "<t>/r1", "<t>/reconstruction", "total"}`` summed over targets."""
        emb, masks = output["embeddings"], output["masks"]
        out: dict[str, Tensor] = {}
        total = zero_like_graph(*(emb[m] for m in self.modalities), *self.parameters())
        for t in self.targets:
            others = torch.stack([masks[m] for m in self.modalities if m != t]).any(0)
            rows = masks[t] & others
            if not rows.any():
                continue
            cond = condition_of(emb, masks, t, self.modalities)[rows]
            real = emb[t][rows]
            gen = self.generators[t]
            assert isinstance(gen, ConditionalGenerator)
            z = (
                None
                if self.training
                else torch.zeros(real.shape[0], gen.noise_dim, dtype=real.dtype, device=real.device)
            )
            terms = gan_terms(gen, self.discriminators[t], cond, real, self.r1_gamma, self.recon_weight, z)
            out.update({f"{t}/{k}": v for k, v in terms.items() if k != "total"})
            total = total + terms["total"]
        out["total"] = total
        return out

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """``sum_t (L_D + gamma R1 + L_G + lambda recon)`` (see :meth:`terms`)."""
        return self.terms(output, batch)["total"]
