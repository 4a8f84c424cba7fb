"""A conditional GAN that generates one modality from the others, in input space or in embedding space.

:class:`ConditionalGAN` composes a generator ``G(z, c)`` and a discriminator ``D(x, c)`` built elsewhere
(:class:`~mmfuse.objectives.gan.ConditionalGenerator`, :class:`~mmfuse.objectives.gan.ProjectionDiscriminator`;
``from_dims`` builds the MLP pair) and trains them with the non-saturating loss and the R1 penalty of
:func:`mmfuse.objectives.gan.gan_terms`. In input space the target is e.g. a 28 x 28 image and the condition
a flattened spectrogram; in embedding space the target is the missing encoder's output and the condition the
present ones (:mod:`mmfuse.models.imputation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmfuse.objectives.gan import ConditionalGenerator, ProjectionDiscriminator, gan_terms


class ConditionalGAN(nn.Module):
    """Generator and discriminator of one target given a condition vector.

    Args:
        generator: ``(c (B, C), z (B, noise_dim) | None) -> (B, ...)`` with a ``noise_dim`` attribute.
        discriminator: ``(x (B, ...), c (B, C)) -> (B,)`` logits.
        r1_gamma: weight ``gamma`` of the R1 penalty. recon_weight: weight of the paired reconstruction term.

    Inputs of :meth:`loss`: ``cond (B, C)``, ``real (B, ...)``; of :meth:`generate`: ``cond (B, C)``.
    """

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, r1_gamma: float = 1.0, recon_weight: float = 0.0
    ) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.r1_gamma, self.recon_weight = float(r1_gamma), float(recon_weight)

    @classmethod
    def from_dims(
        cls,
        cond_dim: int,
        out_dim: int,
        noise_dim: int = 16,
        hidden: Sequence[int] = (256,),
        disc_hidden: Sequence[int] | None = None,
        output: str = "linear",
        r1_gamma: float = 1.0,
        recon_weight: float = 0.0,
    ) -> ConditionalGAN:
        """MLP generator ``noise_dim + cond_dim -> hidden -> out_dim`` and projection discriminator
        ``out_dim -> disc_hidden`` (default ``hidden`` reversed)."""
        gen = ConditionalGenerator(cond_dim, out_dim, noise_dim, hidden, output)
        disc = ProjectionDiscriminator(out_dim, cond_dim, list(disc_hidden or list(hidden)[::-1]))
        return cls(gen, disc, r1_gamma, recon_weight)

    @property
    def noise_dim(self) -> int:
        noise = self.generator.noise_dim
        assert isinstance(noise, int), "the generator must say its noise_dim"
        return noise

    def loss(self, cond: Tensor, real: Tensor) -> dict[str, Tensor]:
        """Named terms of :func:`~mmfuse.objectives.gan.gan_terms`; minimise ``"total"``."""
        return gan_terms(self.generator, self.discriminator, cond, real, self.r1_gamma, self.recon_weight)

    @torch.no_grad()
    def generate(self, cond: Tensor, sample: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """``G(z, c)`` with ``z ~ N(0, I)`` (``sample=True``) or ``z = 0``, the mode of the noise (the truncation
        trick at its limit, Brock, Donahue & Simonyan, "Large Scale GAN Training", ICLR 2019).

        Returns: ``(B, out)``.
        """
        shape = (cond.shape[0], self.noise_dim)
        z = (
            torch.randn(shape, generator=generator, dtype=cond.dtype).to(cond.device)
            if sample
            else torch.zeros(shape, dtype=cond.dtype, device=cond.device)
        )
        return self.generator(cond, z)


def train_gan(
    gan: ConditionalGAN,
    cond: Tensor,
    real: Tensor,
    epochs: int,
    batch_size: int = 128,
    lr: float = 2e-4,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Adam (``betas=(0.5, 0.999)``, Radford et al., DCGAN, ICLR 2016) on ``gan.loss`` over paired rows.

    Inputs: ``cond (N, C)``, ``real (N, ...)``. Returns: per epoch, the mean of each term over its batches.
    """
    torch.manual_seed(seed)
    opt = torch.optim.Adam(gan.parameters(), lr=lr, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    n, curve = cond.shape[0], []
    gan.train()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=g)
        sums: dict[str, float] = {}
        steps = 0
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            terms = gan.loss(cond[idx], real[idx])
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            steps += 1
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        curve.append({k: v / max(steps, 1) for k, v in sums.items()})
    return curve
