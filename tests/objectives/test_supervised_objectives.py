from __future__ import annotations

import torch
import torch.nn.functional as F

from mmfuse.objectives.supervised import auxiliary_loss
from mmfuse.registry import OBJECTIVES


def test_auxiliary_loss_sums_per_modality_terms_over_present_rows():
    torch.manual_seed(0)
    la, lb = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 1])
    masks = {"a": torch.tensor([True, True, False, True]), "b": torch.ones(4, dtype=torch.bool)}
    got = auxiliary_loss({"a": la, "b": lb}, masks, y, "classification")
    want = F.cross_entropy(la[masks["a"]], y[masks["a"]]) + F.cross_entropy(lb, y)
    assert torch.allclose(got, want)


def test_task_losses_match_torch():
    pred, y = torch.randn(5, 4), torch.tensor([0, 3, 1, 2, 2])
    assert torch.allclose(
        OBJECTIVES.build("cross_entropy")({"prediction": pred}, {"target": y}), F.cross_entropy(pred, y)
    )
    p, t = torch.randn(5, 1), torch.randn(5)
    assert torch.allclose(OBJECTIVES.build("mse")({"prediction": p}, {"target": t}), ((p[:, 0] - t) ** 2).mean())
    assert torch.allclose(OBJECTIVES.build("l1")({"prediction": p}, {"target": t}), (p[:, 0] - t).abs().mean())
