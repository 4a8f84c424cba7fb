from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmfuse.errors import ConfigError
from mmfuse.objectives.cca import cca_loss, gcca_loss
from mmfuse.registry import OBJECTIVES
from mmfuse.representation import CCA
from mmfuse.representation._linalg import inv_sqrtm_psd


def planted(n: int = 400, da: int = 6, db: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 3))
    return s @ rng.normal(size=(3, da)) + rng.normal(size=(n, da)), s @ rng.normal(size=(3, db)) + rng.normal(
        size=(n, db)
    )


def test_cca_loss_is_minus_the_canonical_correlations():
    Xa, Xb = planted(n=100)
    eps = 1e-3
    rho = CCA(n_components=5, reg=eps).fit(Xa, Xb).canonical_correlations_
    za, zb = torch.tensor(Xa), torch.tensor(Xb)
    assert cca_loss(za, zb, eps=eps).item() == pytest.approx(-rho.sum(), rel=1e-10)
    assert cca_loss(za, zb, k=2, eps=eps).item() == pytest.approx(-rho[:2].sum(), rel=1e-10)
    # the Cholesky route equals the textbook eigh route T = S_aa^{-1/2} S_ab S_bb^{-1/2}
    A, B = Xa - Xa.mean(0), Xb - Xb.mean(0)
    T = inv_sqrtm_psd(A.T @ A / 99 + eps * np.eye(6)) @ (A.T @ B / 99) @ inv_sqrtm_psd(B.T @ B / 99 + eps * np.eye(5))
    assert cca_loss(za, zb, eps=eps).item() == pytest.approx(-np.linalg.svd(T, compute_uv=False).sum(), rel=1e-10)


def test_cca_loss_gradients_stay_finite_with_dead_units_and_small_batches():
    torch.manual_seed(0)
    za = torch.randn(16, 8)
    za[:, 5:] = 0.0  # dead units: equal covariance eigenvalues, where an eigh backward divides by zero
    za.requires_grad_()
    zb = torch.randn(16, 6, requires_grad=True)
    cca_loss(za, zb).backward()
    assert torch.isfinite(za.grad).all() and torch.isfinite(zb.grad).all()
    small_a, small_b = torch.randn(4, 8, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    loss = cca_loss(small_a, small_b)  # n < D: 3 correlations near 1
    loss.backward()
    assert -3.0 <= loss.item() < -2.9 and torch.isfinite(small_a.grad).all()
    # half-precision embeddings (mixed-precision training) are upcast: Cholesky has no bf16 kernel
    half = cca_loss(zb.detach().bfloat16(), zb.detach().bfloat16())
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert torch.isfinite(gcca_loss([small_a.detach().bfloat16(), small_b.detach().bfloat16()]))


@pytest.mark.parametrize("outputs", [1, 3])
def test_deep_cca_on_linear_encoders_reaches_linear_cca(outputs):
    """Equivalence: training linear (bias-free) encoders with the deep CCA loss recovers linear CCA."""
    torch.manual_seed(0)
    Xa, Xb = planted()
    target = CCA(n_components=5, reg=0.0).fit(Xa, Xb).canonical_correlations_[:outputs]
    A, B = torch.tensor(Xa), torch.tensor(Xb)
    fa, fb = nn.Linear(6, outputs, bias=False).double(), nn.Linear(5, outputs, bias=False).double()
    opt = torch.optim.LBFGS(
        [*fa.parameters(), *fb.parameters()], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-10
    )

    def closure():
        opt.zero_grad()
        loss = cca_loss(fa(A), fb(B), eps=1e-6)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        za, zb = fa(A).numpy(), fb(B).numpy()
        assert -cca_loss(fa(A), fb(B), eps=1e-6).item() == pytest.approx(target.sum(), abs=1e-2)
    learned = CCA(n_components=outputs, reg=0.0).fit(za, zb).canonical_correlations_
    np.testing.assert_allclose(learned, target, atol=1e-2)


def test_gcca_loss_two_views_is_one_plus_correlations():
    Xa, Xb = planted(n=80)
    eps = 1e-3
    rho = CCA(n_components=5, reg=eps).fit(Xa, Xb).canonical_correlations_
    za, zb = torch.tensor(Xa), torch.tensor(Xb)
    # eigenvalues of P_a + P_b are 1 + rho_i only without ridge; with a small one they agree closely
    assert gcca_loss([za, zb], eps=1e-9).item() == pytest.approx(
        -(5 + CCA(5, reg=0.0).fit(Xa, Xb).canonical_correlations_.sum()), abs=1e-6
    )
    assert gcca_loss([za, zb], k=2, eps=eps).item() == pytest.approx(-(2 + rho[:2].sum()), abs=2e-2)


def test_gcca_loss_rewards_a_shared_factor_and_has_finite_gradients():
    torch.manual_seed(0)
    s = torch.randn(64, 1)
    related = [s @ torch.randn(1, d) + 0.1 * torch.randn(64, d) for d in (4, 5, 3)]
    unrelated = [torch.randn(64, d) for d in (4, 5, 3)]
    assert gcca_loss(related, k=1).item() < -2.9 < -2.0 < gcca_loss(unrelated, k=1).item()
    zs = [torch.randn(6, d, requires_grad=True) for d in (8, 7, 3)]  # fewer rows than dims
    loss = gcca_loss(zs)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(z.grad).all() for z in zs)


def test_cca_objectives_validate_options():
    with pytest.raises(ConfigError, match="eps"):
        OBJECTIVES.build("cca", eps=0.0)
    with pytest.raises(ConfigError, match="k >= 1"):
        OBJECTIVES.build("gcca", k=0)
    with pytest.raises(ConfigError, match="at least 2"):
        OBJECTIVES.build("gcca", modalities=["a"])
    assert OBJECTIVES.build("gcca", modalities=["c", "a", "b"]).modalities == ("a", "b", "c")
