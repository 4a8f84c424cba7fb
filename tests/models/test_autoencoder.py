from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from mmfuse.models.autoencoder import DualAutoencoder, MultimodalVAE
from mmfuse.objectives.autoencoder import (
    canonical_correlation_sum,
    gaussian_kl,
    pearson_correlation_sum,
    product_of_experts,
    reconstruction_loss,
)
from mmfuse.registry import OBJECTIVES


def _ones(n):
    return torch.ones(n, dtype=torch.bool)


# --- pure functions -------------------------------------------------------------------------------


def test_poe_of_one_expert_and_prior_matches_closed_form():
    mu, var = torch.tensor([[1.5, -2.0]]), torch.tensor([[0.5, 3.0]])
    got_mu, got_logvar = product_of_experts(mu[None], var.log()[None], _ones(1)[None])
    # N(mu, var) * N(0, 1): precision 1/var + 1, mean (mu/var) / (1/var + 1) = mu / (1 + var)
    assert torch.allclose(got_mu, mu / (1 + var))
    assert torch.allclose(got_logvar.exp(), var / (1 + var))


def test_poe_of_two_identical_experts_halves_the_variance():
    mu, var = torch.tensor([[0.7, -1.0, 2.0]]), torch.tensor([[0.4, 1.0, 2.5]])
    mus, logvars, both = torch.stack([mu, mu]), torch.stack([var.log(), var.log()]), _ones(1)[None].expand(2, 1)
    m2, lv2 = product_of_experts(mus, logvars, both, prior=False)
    assert torch.allclose(m2, mu) and torch.allclose(lv2.exp(), var / 2)
    m2p, lv2p = product_of_experts(mus, logvars, both)  # with the prior: precision 2/var + 1
    assert torch.allclose(lv2p.exp(), 1 / (2 / var + 1)) and torch.allclose(m2p, (2 * mu / var) / (2 / var + 1))
    # an absent expert is ignored; a row with no expert gets the prior N(0, I)
    present = torch.tensor([[True, False], [False, False]])
    mus3, lvs3 = torch.stack([mu.expand(2, 3), 5 + mu.expand(2, 3)]), torch.stack([var.log().expand(2, 3)] * 2)
    m3, lv3 = product_of_experts(mus3, lvs3, present)
    assert (
        torch.allclose(m3[0], (mu / (1 + var))[0])
        and torch.equal(m3[1], torch.zeros(3))
        and torch.equal(lv3[1], torch.zeros(3))
    )


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    want = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mu, logvar), want, atol=1e-6)


def test_correlations_hand_checked_and_cca_equals_symmetric_whitening():
    torch.manual_seed(0)
    z = torch.randn(20, 3)
    assert torch.allclose(pearson_correlation_sum(z, 2 * z + 1), torch.tensor(3.0), atol=1e-5)
    assert torch.allclose(pearson_correlation_sum(z, -z), torch.tensor(-3.0), atol=1e-5)
    a, b = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 4, dtype=torch.float64)
    b[:, 0] += a[:, 0]
    got = canonical_correlation_sum(a, b, ridge=1e-3)
    # reference: singular values of S_aa^{-1/2} S_ab S_bb^{-1/2} with eigen-decomposition square roots
    an, bn = (a - a.mean(0)).numpy(), (b - b.mean(0)).numpy()
    saa, sbb, sab = an.T @ an / 49 + 1e-3 * np.eye(3), bn.T @ bn / 49 + 1e-3 * np.eye(4), an.T @ bn / 49

    def inv_sqrt(s):
        w, v = np.linalg.eigh(s)
        return v @ np.diag(w**-0.5) @ v.T

    want = np.linalg.svd(inv_sqrt(saa) @ sab @ inv_sqrt(sbb), compute_uv=False)
    assert abs(got.item() - want.sum()) < 1e-8
    assert abs(canonical_correlation_sum(a, b, 1e-3, top_k=1).item() - want[0]) < 1e-8
    # fewer rows than dimensions: the gradient is still finite
    za = torch.randn(2, 5, requires_grad=True)
    canonical_correlation_sum(za, torch.randn(2, 4)).backward()
    assert torch.isfinite(za.grad).all()


def test_reconstruction_loss_sums_features_and_averages_present_rows():
    x, x_hat = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]), torch.zeros(3, 2)
    mask = torch.tensor([True, True, False])
    assert torch.allclose(reconstruction_loss(x_hat, x, mask), torch.tensor(1.0))
    assert torch.allclose(
        reconstruction_loss(x_hat, x[:, :], mask, "bernoulli"), torch.tensor(2 * np.log(2.0), dtype=torch.float32)
    )
    empty = reconstruction_loss(x_hat.requires_grad_(), x, torch.zeros(3, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.grad_fn is not None


# --- DualAutoencoder ------------------------------------------------------------------------------


def test_dual_autoencoder_loss_masks_and_gradients():
    torch.manual_seed(0)
    for corr in ("pearson", "cca"):
        model = DualAutoencoder.from_dims({"a": 6, "b": 5}, latent=3, hidden=(8,), correlation=corr, corr_weight=0.5)
        x = {"a": torch.randn(5, 6), "b": torch.randn(5, 5)}
        masks = {"a": torch.tensor([1, 1, 0, 1, 1], dtype=torch.bool), "b": _ones(5)}
        terms = model.loss(x, masks)
        assert torch.allclose(terms["total"], terms["reconstruction"] - 0.5 * terms["correlation"])
        moved = {"a": x["a"].clone(), "b": x["b"]}
        moved["a"][2] += 100.0  # absent row
        assert torch.allclose(model.loss(moved, masks)["total"], terms["total"])
        terms["total"].backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        z = model.encode(x, masks)
        assert z["a"].shape == (5, 3) and torch.equal(z["a"][2], torch.zeros(3))
        for m_a in (_ones(2), torch.zeros(2, dtype=torch.bool)):  # B = 2, and a modality absent everywhere
            t = model.loss({"a": torch.randn(2, 6), "b": torch.randn(2, 5)}, {"a": m_a, "b": _ones(2)})
            assert all(torch.isfinite(v) for v in t.values()) and t["total"].grad_fn is not None


def test_dual_autoencoder_training_raises_latent_correlation():
    torch.manual_seed(0)
    s = torch.randn(128, 2)  # a shared source seen through two different maps
    x = {"a": s @ torch.randn(2, 6) + 0.1 * torch.randn(128, 6), "b": torch.tanh(s @ torch.randn(2, 5))}
    model = DualAutoencoder.from_dims({"a": 6, "b": 5}, latent=2, hidden=(16,), correlation="cca")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    before = model.loss(x)
    for _ in range(60):
        opt.zero_grad()
        model.loss(x)["total"].backward()
        opt.step()
    after = model.loss(x)
    assert after["total"] < before["total"] and after["correlation"] > 1.8  # two canonical correlations near 1


def test_dccae_objective_on_model_embeddings():
    torch.manual_seed(0)
    obj = OBJECTIVES.build("dccae", dims={"a": 4, "b": 3}, input_dims={"a": 6, "b": 10}, hidden=8)
    emb = {"a": torch.randn(5, 4, requires_grad=True), "b": torch.randn(5, 3, requires_grad=True)}
    batch = {"inputs": {"a": torch.randn(5, 6), "b": torch.randn(5, 2, 5)}}
    masks = {"a": _ones(5), "b": torch.tensor([1, 0, 1, 1, 1], dtype=torch.bool)}
    terms = obj.terms({"embeddings": emb, "masks": masks}, batch)
    loss = obj({"embeddings": emb, "masks": masks}, batch)
    assert torch.allclose(loss, -terms["correlation"] + terms["reconstruction"])
    loss.backward()
    assert torch.isfinite(emb["a"].grad).all() and all(p.grad is not None for p in obj.parameters())
    none = {"a": _ones(2), "b": torch.zeros(2, dtype=torch.bool)}
    small = obj(
        {"embeddings": {"a": emb["a"][:2], "b": emb["b"][:2]}, "masks": none},
        {"inputs": {m: v[:2] for m, v in batch["inputs"].items()}},
    )
    assert torch.isfinite(small) and small.grad_fn is not None


# --- MultimodalVAE --------------------------------------------------------------------------------


def _vae_data(n=32):
    torch.manual_seed(0)
    digit = torch.randint(0, 4, (n,))
    protos = (torch.rand(4, 784) > 0.7).float()
    image = (torch.rand(n, 784) < 0.1 + 0.8 * protos[digit]).float()  # noisy binary "images"
    vec = torch.nn.functional.one_hot(digit, 4).float() + 0.1 * torch.randn(n, 4)
    return {"image": image, "vec": vec}


def _vae():
    torch.manual_seed(0)
    return MultimodalVAE.from_dims(
        {"image": 784, "vec": 4}, latent=4, hidden=(32,), likelihoods={"image": "bernoulli"}, random_subsets=1
    )


def test_vae_encodes_any_subset_and_generates_a_missing_modality():
    vae, x = _vae(), _vae_data(6)
    assert vae.encode({"vec": x["vec"]}).shape == (6, 4) and vae.encode(x).shape == (6, 4)
    img = vae.generate(source={"vec": x["vec"]}, target="image")
    assert img.shape == (6, 784) and ((img >= 0) & (img <= 1)).all()
    assert vae.generate(source={"image": x["image"]}, target="vec", sample=True).shape == (6, 4)
    # a masked-out expert does not influence the posterior
    masks = {"image": torch.tensor([1, 0, 1, 1, 1, 1], dtype=torch.bool), "vec": _ones(6)}
    moved = {"image": x["image"].clone(), "vec": x["vec"]}
    moved["image"][1] = 1 - moved["image"][1]
    assert torch.allclose(vae.encode(x, masks)[1], vae.encode(moved, masks)[1])
    assert not torch.allclose(vae.encode(x, masks)[0], vae.encode({"image": 1 - x["image"], "vec": x["vec"]}, masks)[0])


def test_vae_loss_is_finite_for_tiny_and_one_sided_batches():
    vae, x = _vae(), _vae_data(2)
    for m_img in (_ones(2), torch.zeros(2, dtype=torch.bool)):
        terms = vae.loss(x, {"image": m_img, "vec": _ones(2)})
        assert all(torch.isfinite(v) for v in terms.values()) and terms["total"].grad_fn is not None
        assert {"neg_elbo/image+vec", "neg_elbo/image", "neg_elbo/vec"} <= set(terms)
    terms["total"].backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in vae.parameters())


def test_vae_negative_elbo_decreases_in_20_steps():
    vae, x = _vae(), _vae_data()
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)

    def evaluate():
        torch.manual_seed(123)  # same reparameterisation noise and random subset before and after
        with torch.no_grad():
            return vae.loss(x)["total"].item()

    before = evaluate()
    torch.manual_seed(1)
    for _ in range(20):
        opt.zero_grad()
        vae.loss(x)["total"].backward()
        opt.step()
    after = evaluate()
    assert after < 0.8 * before
