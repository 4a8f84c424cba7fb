from __future__ import annotations

import pytest
import torch

from mmfuse.errors import ConfigError
from mmfuse.objectives.kernels import cka_loss, hsic_loss
from mmfuse.registry import OBJECTIVES
from mmfuse.representation import gaussian_kernel, hsic


def test_cka_loss_values():
    torch.manual_seed(0)
    z = torch.randn(20, 5)
    Q, _ = torch.linalg.qr(torch.randn(5, 5))
    assert cka_loss(z, z).item() == pytest.approx(-1.0, abs=1e-6)
    assert cka_loss(z, 2.5 * z @ Q).item() == pytest.approx(-1.0, abs=1e-5)  # invariances of linear CKA
    assert cka_loss(z, z, kernel="gaussian").item() == pytest.approx(-1.0, abs=1e-6)
    assert -1.0 < cka_loss(z, torch.randn(20, 3)).item() < -0.05  # some chance similarity, far from -1


def test_hsic_loss_matches_the_estimator_and_prefers_dependence():
    torch.manual_seed(1)
    za, noise = torch.randn(30, 4), torch.randn(30, 4)
    assert hsic_loss(za, noise, sigma=1.0).item() == pytest.approx(
        -hsic(gaussian_kernel(za, sigma=1.0), gaussian_kernel(noise, sigma=1.0)).item(), rel=1e-6
    )
    assert hsic_loss(za, torch.tanh(za)).item() < hsic_loss(za, noise).item() <= 0.0


def test_cka_objective_aligns_modalities_by_training_a_projection():
    """Minimising -CKA over a linear map of modality b makes it mirror modality a."""
    torch.manual_seed(2)
    za = torch.randn(64, 3)
    xb = torch.cat([za @ torch.randn(3, 3), torch.randn(64, 5)], dim=1)  # b = mix of a's signal and noise
    proj = torch.nn.Linear(8, 3, bias=False)
    obj = OBJECTIVES.build("cka", modalities=("a", "b"))
    opt = torch.optim.Adam(proj.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = obj({"embeddings": {"a": za, "b": proj(xb)}, "masks": {}}, {})
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > -0.8 and losses[-1] < -0.95


def test_kernel_objectives_validate_options():
    with pytest.raises(ConfigError, match="Unknown kernel"):
        OBJECTIVES.build("cka", kernel="cosine")
    with pytest.raises(ConfigError, match="sigma"):
        OBJECTIVES.build("hsic", sigma=-1.0)
    obj = OBJECTIVES.build("cka", kernel="polynomial", kernel_params={"degree": 2})
    z = torch.randn(10, 4)
    assert obj({"embeddings": {"a": z, "b": z}, "masks": {}}, {}).item() == pytest.approx(-1.0, abs=1e-5)
