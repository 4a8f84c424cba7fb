"""The conditional GAN's losses, networks and the embedding-space objective."""

from __future__ import annotations

import math

import pytest
import torch

from mmfuse.objectives.gan import (
    ConditionalGenerator,
    ProjectionDiscriminator,
    condition_of,
    discriminator_loss,
    gan_terms,
    generator_loss,
    r1_penalty,
)
from mmfuse.registry import OBJECTIVES


def test_losses_at_an_undecided_discriminator():
    zero = torch.zeros(5)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    # a confident, right discriminator: L_D -> 0, the non-saturating L_G grows
    assert discriminator_loss(torch.full((3,), 20.0), torch.full((3,), -20.0)).item() < 1e-8
    assert generator_loss(torch.full((3,), -20.0)).item() == pytest.approx(20.0, abs=1e-6)


def test_r1_of_a_linear_discriminator_is_half_the_squared_weight_norm():
    w = torch.tensor([1.0, -2.0, 0.5])
    x = torch.randn(4, 3, requires_grad=True)
    assert r1_penalty(x @ w, x).item() == pytest.approx(0.5 * float(w @ w))


def test_generator_and_projection_discriminator_shapes_and_gradients():
    torch.manual_seed(0)
    gen = ConditionalGenerator(cond_dim=6, out_dim=784, noise_dim=4, hidden=(16,), output="sigmoid")
    disc = ProjectionDiscriminator(in_dim=784, cond_dim=6, hidden=(32, 16))
    c = torch.randn(5, 6)
    x = gen(c)
    assert x.shape == (5, 784) and ((x >= 0) & (x <= 1)).all()
    assert torch.equal(gen(c, torch.zeros(5, 4)), gen(c, torch.zeros(5, 4)))
    logits = disc(x.reshape(5, 1, 28, 28), c)
    assert logits.shape == (5,)
    logits.sum().backward()
    for module in (gen, disc):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


def test_projection_term_is_the_inner_product_of_condition_and_features():
    torch.manual_seed(0)
    disc = ProjectionDiscriminator(in_dim=3, cond_dim=2, hidden=(4,))
    x, c = torch.randn(6, 3), torch.randn(6, 2)
    h = disc.phi(x)
    assert torch.allclose(disc(x, c), disc.psi(h).squeeze(1) + (disc.embed(c) * h).sum(1))


def test_each_player_gets_only_its_own_gradient():
    torch.manual_seed(0)
    gen, disc = ConditionalGenerator(2, 3, 2, (8,)), ProjectionDiscriminator(3, 2, (8,))
    cond, real = torch.randn(8, 2, requires_grad=True), torch.randn(8, 3)
    terms = gan_terms(gen, disc, cond, real, r1_gamma=1.0)
    assert terms["total"].item() == pytest.approx((terms["discriminator"] + terms["r1"] + terms["generator"]).item())
    g_d = torch.autograd.grad(terms["discriminator"], list(gen.parameters()), allow_unused=True)
    assert all(g is None for g in g_d)  # L_D sees the fake detached
    d_g = torch.autograd.grad(terms["generator"], list(disc.parameters()), allow_unused=True, retain_graph=True)
    assert all(g is None for g in d_g)  # L_G goes through a frozen copy of D
    (c_grad,) = torch.autograd.grad(terms["generator"], cond)
    assert torch.isfinite(c_grad).all() and c_grad.abs().sum() > 0  # the condition learns from L_G


def test_discriminator_loss_falls_on_a_toy_problem():
    """A fixed generator whose samples sit 2 away from the real ones; 20 Adam steps on L_D + R1 (golden at seed 0)."""
    torch.manual_seed(0)
    gen, disc = ConditionalGenerator(2, 2, 2, (8,)), ProjectionDiscriminator(2, 2, (16,))
    cond = torch.randn(64, 2)
    real = cond + torch.tensor([2.0, 2.0])
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        terms = gan_terms(gen, disc, cond, real, r1_gamma=0.1)
        losses.append(terms["discriminator"].item())
        opt.zero_grad()
        (terms["discriminator"] + 0.1 * terms["r1"]).backward()
        opt.step()
    assert losses[-1] < 0.6 * losses[0]
    assert losses[0] == pytest.approx(1.0009, abs=1e-3) and losses[-1] == pytest.approx(0.3380, abs=1e-3)


def test_condition_hides_absent_rows():
    emb = {"a": torch.randn(3, 2), "b": torch.randn(3, 4), "c": torch.randn(3, 1)}
    masks = {"a": torch.tensor([True, False, True]), "b": torch.ones(3, dtype=torch.bool), "c": torch.ones(3).bool()}
    c = condition_of(emb, masks, "b", ["c", "b", "a"])
    assert c.shape == (3, 2 + 1 + 1 + 1)
    assert torch.equal(c[1, :3], torch.zeros(3)) and torch.equal(c[0, :2], emb["a"][0])


def test_embedding_objective_terms_and_eval_determinism():
    torch.manual_seed(0)
    obj = OBJECTIVES.build("conditional_gan", dims={"a": 4, "b": 3}, hidden=8, targets=["b"])
    emb = {"a": torch.randn(6, 4), "b": torch.randn(6, 3)}
    masks = {"a": torch.ones(6, dtype=torch.bool), "b": torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)}
    terms = obj.terms({"embeddings": emb, "masks": masks}, {})
    assert {"b/discriminator", "b/generator", "b/r1", "b/reconstruction", "total"} == set(terms)
    obj.eval()
    with torch.no_grad():
        one, two = (obj({"embeddings": emb, "masks": masks}, {}) for _ in range(2))
    assert torch.equal(one, two)
    with pytest.raises(Exception, match="at least two modalities"):
        OBJECTIVES.build("conditional_gan", dims={"a": 4})
