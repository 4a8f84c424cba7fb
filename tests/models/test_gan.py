"""The conditional GAN model: shapes, generation, and a short training run."""

from __future__ import annotations

import torch

from mmfuse.models.gan import ConditionalGAN, train_gan


def test_from_dims_shapes_and_generation():
    torch.manual_seed(0)
    gan = ConditionalGAN.from_dims(cond_dim=12, out_dim=784, noise_dim=8, hidden=(16, 32), output="sigmoid")
    cond = torch.randn(5, 12)
    img = gan.generate(cond)
    assert img.shape == (5, 784) and ((img >= 0) & (img <= 1)).all()
    assert torch.equal(gan.generate(cond, sample=False), gan.generate(cond, sample=False))  # z = 0
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(gan.generate(cond, generator=g1), gan.generate(cond, generator=g2))
    terms = gan.loss(cond, torch.rand(5, 1, 28, 28))
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gan.parameters())


def test_training_moves_generated_samples_toward_the_conditional_target():
    """Target = 2 * condition: the GAN's samples at z = 0 end much closer to it than at the start."""
    torch.manual_seed(0)
    cond = torch.randn(256, 2)
    real = 2 * cond
    gan = ConditionalGAN.from_dims(2, 2, noise_dim=2, hidden=(32, 32), r1_gamma=0.1)
    before = (gan.generate(cond, sample=False) - real).pow(2).sum(1).mean().item()
    curve = train_gan(gan, cond, real, epochs=40, batch_size=64, lr=2e-3)
    after = (gan.generate(cond, sample=False) - real).pow(2).sum(1).mean().item()
    assert len(curve) == 40 and {"discriminator", "generator", "r1", "total"} <= set(curve[0])
    assert after < 0.5 * before
