from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmfuse.encoders.mlp import MLPEncoder
from mmfuse.errors import ConfigError
from mmfuse.fusion.base import Fusion
from mmfuse.heads.basic import LinearHead
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.models.multitask import HardSharingModel, SoftSharingModel
from mmfuse.objectives.multitask import multitask_loss
from mmfuse.registry import OBJECTIVES

TYPES = {"cls": "classification", "reg": "regression"}


class _Concat(Fusion):
    """Concatenation + linear map, a minimal feature-level fusion for these tests."""

    def __init__(self, dims, out_dim):
        super().__init__(dims, out_dim)
        self.proj = torch.nn.Linear(sum(self.dims.values()), out_dim)

    def forward(self, embeddings, masks):
        return self.proj(torch.cat([embeddings[m] for m in self.modalities], 1))


def _parts():
    torch.manual_seed(0)
    enc = {"a": MLPEncoder(5, 8, hidden=(), dropout=0.0), "b": MLPEncoder(7, 6, hidden=(), dropout=0.0)}
    heads = {"cls": LinearHead(16, 3), "reg": LinearHead(16, 1)}
    return enc, _Concat({"a": 8, "b": 6}, 16), heads


def _data(n=64):
    torch.manual_seed(0)
    x = {"a": torch.randn(n, 5), "b": torch.randn(n, 7)}
    y = {"cls": (x["a"][:, 0] > 0).long() + (x["b"][:, 0] > 0).long(), "reg": (x["a"][:, 1] - x["b"][:, 1])[:, None]}
    return x, y


def _numel(module):
    return sum(p.numel() for p in module.parameters())


def test_multitask_loss_is_the_weighted_sum_of_task_losses():
    torch.manual_seed(0)
    pred = {"cls": torch.randn(4, 3), "reg": torch.randn(4, 1)}
    tgt = {"cls": torch.tensor([0, 2, 1, 1]), "reg": torch.randn(4)}
    terms = multitask_loss(pred, tgt, TYPES, {"reg": 0.25})
    ce, mse = F.cross_entropy(pred["cls"], tgt["cls"]), ((pred["reg"][:, 0] - tgt["reg"]) ** 2).mean()
    assert torch.allclose(terms["cls"], ce) and torch.allclose(terms["reg"], mse)
    assert torch.allclose(terms["total"], ce + 0.25 * mse)
    obj = OBJECTIVES.build("multitask", task_types=TYPES, weights={"reg": 0.25})
    assert torch.allclose(
        obj({"prediction": pred, "sharing_penalty": torch.tensor(2.0)}, {"target": tgt}), ce + 0.25 * mse + 2.0
    )
    with pytest.raises(ConfigError, match="no prediction or no target"):
        multitask_loss({"cls": pred["cls"]}, tgt, TYPES)


def test_hard_sharing_has_one_trunk_and_every_head_gets_gradient():
    enc, fusion, heads = _parts()
    model = HardSharingModel(enc, fusion, heads)
    assert _numel(model) == sum(_numel(e) for e in enc.values()) + _numel(fusion) + sum(
        _numel(h) for h in heads.values()
    )
    x, y = _data(6)
    out = model(x)
    assert (
        out["prediction"]["cls"].shape == (6, 3)
        and out["prediction"]["reg"].shape == (6, 1)
        and out["fused"].shape == (6, 16)
    )
    trunk_w = model.trunk.encoders["a"].net[0].weight
    for task in ("cls", "reg"):  # each task alone reaches the one shared trunk
        model.zero_grad()
        model.loss(model(x), y, {task: TYPES[task]})["total"].backward()
        assert trunk_w.grad.abs().sum() > 0
    model.zero_grad()
    model.loss(model(x), y, TYPES)["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    built = MultimodalModel(enc, fusion, LinearHead(16, 2))
    assert HardSharingModel.from_model(built, heads).trunk.encoders["a"] is enc["a"]


def test_soft_sharing_penalty_zero_for_equal_copies_and_exact_after_perturbation():
    enc, fusion, heads = _parts()
    model = SoftSharingModel.from_modules(enc, fusion, heads, penalty_weight=0.1)
    assert model.trunks["cls"].encoders["a"] is not model.trunks["reg"].encoders["a"]
    assert _numel(model) == 2 * (sum(_numel(e) for e in enc.values()) + _numel(fusion)) + sum(
        _numel(h) for h in heads.values()
    )
    assert model.sharing_penalty().item() == 0.0
    with torch.no_grad():
        model.trunks["reg"].fusion.proj.bias += 0.5  # 16 entries differ by 0.5
    assert torch.allclose(model.sharing_penalty(), torch.tensor(16 * 0.25))
    x, y = _data(6)
    out = model(x)
    assert torch.allclose(out["sharing_penalty"], torch.tensor(0.1 * 4.0))
    terms = model.loss(out, y, TYPES)
    assert torch.allclose(terms["total"], terms["cls"] + terms["reg"] + terms["sharing"])
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    diff = model.trunks["cls"].fusion.proj.bias.grad - model.trunks["reg"].fusion.proj.bias.grad
    assert diff.abs().sum() > 0  # the penalty pulls the copies toward each other


def test_soft_sharing_refuses_mismatched_or_headed_trunks():
    enc, fusion, heads = _parts()
    other = {"a": MLPEncoder(5, 8, hidden=(4,), dropout=0.0), "b": MLPEncoder(7, 6, hidden=(), dropout=0.0)}
    trunks = {
        "cls": MultimodalModel(enc, fusion, None),
        "reg": MultimodalModel(other, _Concat({"a": 8, "b": 6}, 16), None),
    }
    with pytest.raises(ConfigError, match="differs in architecture"):
        SoftSharingModel(trunks, heads)
    with pytest.raises(ConfigError, match="has a head"):
        SoftSharingModel({"cls": MultimodalModel(enc, fusion, LinearHead(16, 3)), "reg": trunks["cls"]}, heads)


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_two_task_loss_decreases_and_masks_are_respected(kind):
    enc, fusion, heads = _parts()
    model = (
        HardSharingModel(enc, fusion, heads) if kind == "hard" else SoftSharingModel.from_modules(enc, fusion, heads)
    )
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    start = model.loss(model(x), y, TYPES)["total"].item()
    for _ in range(40):
        opt.zero_grad()
        loss = model.loss(model(x), y, TYPES)["total"]
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * start
    masks = {"a": torch.tensor([True, False]), "b": torch.ones(2, dtype=torch.bool)}
    small = {"a": x["a"][:2], "b": x["b"][:2]}
    moved = {"a": small["a"] + torch.tensor([[0.0], [100.0]]), "b": small["b"]}
    p1, p2 = model(small, masks)["prediction"], model(moved, masks)["prediction"]
    assert all(torch.equal(p1[t], p2[t]) for t in TYPES)


def test_decision_level_fusion_is_refused():
    enc, fusion, heads = _parts()
    fusion.decision_level = True
    with pytest.raises(ConfigError, match="decision-level"):
        HardSharingModel(enc, fusion, heads)
