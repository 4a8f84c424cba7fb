from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmfuse.errors import ConfigError, DataError
from mmfuse.objectives.contrastive import contrastive_margin_loss, info_nce_loss
from mmfuse.registry import OBJECTIVES

MINE = ["contrastive_margin", "infonce", "cca", "gcca", "cka", "hsic"]
DIMS = {"a": 6, "b": 6, "c": 4}


def random_output(seed: int = 0, n: int = 12, dims: dict[str, int] = DIMS) -> tuple[dict, dict]:
    """A model-like output: rows 0-1 lack 'a', rows 2-3 lack 'b', row 4 lacks 'c' (zeroed, as the model does)."""
    g = torch.Generator().manual_seed(seed)
    masks = {m: torch.ones(n, dtype=torch.bool) for m in dims}
    for m, rows in (("a", slice(0, 2)), ("b", slice(2, 4)), ("c", slice(4, 5))):
        if m in masks:
            masks[m][rows] = False
    emb = {m: (torch.randn(n, d, generator=g) * masks[m][:, None]).requires_grad_() for m, d in dims.items()}
    batch = {"inputs": {}, "masks": masks, "target": torch.arange(n) % 3}
    return {"embeddings": emb, "masks": masks}, batch


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("pair", [None, ("b", "a")])
def test_objective_gives_finite_scalar_and_gradients(name, pair):
    obj = OBJECTIVES.build(name, dims=DIMS, modalities=pair)
    output, batch = random_output()
    loss = obj(output, batch)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    for m, z in output["embeddings"].items():
        if pair is None or m in pair:  # every compared modality is trained
            assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0, m
        else:
            assert z.grad is None, m
    for p in obj.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", MINE)
def test_objective_ignores_absent_rows_and_handles_no_pairs(name):
    obj = OBJECTIVES.build(name, dims=DIMS)
    output, batch = random_output()
    ref = obj(output, batch)
    # garbage in rows lacking a modality changes nothing
    noisy = {m: z.detach() + 100.0 * (~output["masks"][m])[:, None] for m, z in output["embeddings"].items()}
    assert torch.allclose(obj({"embeddings": noisy, "masks": output["masks"]}, batch), ref, atol=1e-5)
    # no row has two modalities: a zero that still backpropagates
    masks = {
        "a": torch.arange(12) < 4,
        "b": (torch.arange(12) >= 4) & (torch.arange(12) < 8),
        "c": torch.arange(12) >= 8,
    }
    output["masks"] = masks
    loss = obj(output, batch)
    loss.backward()
    assert loss.item() == 0.0 and all(torch.isfinite(z.grad).all() for z in output["embeddings"].values())


def test_info_nce_hand_value_and_symmetry():
    z = torch.eye(3)  # identical unit embeddings: logits 1/tau on the diagonal, 0 elsewhere
    assert info_nce_loss(z, z, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2.0)), rel=1e-6)
    za, zb = torch.randn(5, 4), torch.randn(5, 4)
    assert info_nce_loss(za, zb, 0.1).item() == pytest.approx(info_nce_loss(zb, za, 0.1).item(), rel=1e-6)
    assert info_nce_loss(za, za, 0.1) < info_nce_loss(za, zb, 0.1)


def test_infonce_temperature_is_clip_like():
    obj = OBJECTIVES.build("infonce")
    assert obj.temperature.item() == pytest.approx(0.07) and obj.log_scale.requires_grad
    with torch.no_grad():
        obj.log_scale.fill_(10.0)
    assert obj.temperature.item() == pytest.approx(0.01)  # scale clamped at 100
    fixed = OBJECTIVES.build("infonce", temperature=0.5, learn_temperature=False)
    assert list(fixed.parameters()) == []
    output, batch = random_output()
    emb, keep = output["embeddings"], output["masks"]["a"] & output["masks"]["b"]
    expected = info_nce_loss(emb["a"][keep], emb["b"][keep], 0.5)
    assert fixed(
        {"embeddings": {"a": emb["a"], "b": emb["b"]}, "masks": output["masks"]}, batch
    ).item() == pytest.approx(expected.item(), rel=1e-6)


def test_contrastive_margin_hand_values():
    z = torch.eye(2)  # positives coincide (d = 0); negatives are sqrt(2) apart
    same = torch.eye(2, dtype=torch.bool)
    assert contrastive_margin_loss(z, z, same, margin=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert contrastive_margin_loss(z, z, same, margin=2.0).item() == pytest.approx(
        2 * (2 - math.sqrt(2)) ** 2 / 4, rel=1e-5
    )
    flipped = torch.tensor([[1.0, 0.0], [0.0, -1.0]])  # za_1 and zb_1 point apart: d = 2 for the positive pair
    assert contrastive_margin_loss(z, flipped, same, margin=0.5).item() == pytest.approx(4.0 / 4, rel=1e-5)


def test_contrastive_margin_label_positives_use_targets():
    za = F.normalize(torch.randn(6, 3), dim=1)
    obj = OBJECTIVES.build("contrastive_margin", positive="label", margin=1.5)
    target = torch.tensor([0, 1, 0, 1, 2, 2])
    output = {"embeddings": {"a": za, "b": za}, "masks": {}}
    pos = target[:, None] == target[None, :]
    assert obj(output, {"target": target}).item() == pytest.approx(
        contrastive_margin_loss(za, za, pos, 1.5).item(), rel=1e-6
    )
    with pytest.raises(DataError, match="target"):
        obj(output, {})


def test_projection_heads_when_dims_differ():
    obj = OBJECTIVES.build("infonce", dims={"a": 6, "c": 4})
    assert obj.proj_dim == 4 and obj.proj["a"].weight.shape == (4, 6)
    assert OBJECTIVES.build("infonce", dims={"a": 6, "b": 6}).proj is None
    cca = OBJECTIVES.build("cca", dims={"a": 6, "c": 4})
    assert cca.proj is None and not hasattr(cca, "project")  # CCA needs no common space
    z = {"a": torch.randn(3, 6), "c": torch.randn(3, 4)}
    projected = obj.project(z)
    assert projected["a"].shape == (3, 4) and torch.allclose(projected["a"], z["a"] @ obj.proj["a"].weight.T)
    with pytest.raises(ConfigError, match="proj_dim"):
        OBJECTIVES.build("infonce", proj_dim=8)
    with pytest.raises(ConfigError, match="modalities"):
        OBJECTIVES.build("infonce", modalities=("a",))
    output, batch = random_output(dims={"a": 6, "c": 4})
    with pytest.raises(ConfigError, match="one embedding size"):
        OBJECTIVES.build("infonce")(output, batch)
