"""Evidential fusion (TMC): a hand-worked Dempster combination, vacuous absent modalities, Dirichlet outputs."""

from __future__ import annotations

import math

import pytest
import torch

from mmfuse.fusion.evidential import EvidentialFusion, alpha_from_opinion, dempster_combine, opinion
from mmfuse.registry import FUSIONS


def test_two_opinions_combine_as_worked_by_hand():
    # alpha1 = (3, 1): S = 4, b = (1/2, 0), u = 1/2;  alpha2 = (1, 2): S = 3, b = (0, 1/3), u = 2/3
    # conflict C = b1_0 b2_1 + b1_1 b2_0 = 1/6;  b = ((1/3)/(5/6), (1/6)/(5/6)) = (2/5, 1/5);  u = (1/3)/(5/6) = 2/5
    # S = K/u = 5, e = b S = (2, 1), alpha = (3, 2)
    b1, u1 = opinion(torch.tensor([[3.0, 1.0]]))
    b2, u2 = opinion(torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(b1, torch.tensor([[0.5, 0.0]])) and torch.allclose(u2, torch.tensor([2 / 3]))
    b, u = dempster_combine(b1, u1, b2, u2)
    assert torch.allclose(b, torch.tensor([[0.4, 0.2]])) and torch.allclose(u, torch.tensor([0.4]))
    assert torch.allclose(b.sum(-1) + u, torch.ones(1))
    assert torch.allclose(alpha_from_opinion(b, u), torch.tensor([[3.0, 2.0]]))
    assert torch.allclose(dempster_combine(b2, u2, b1, u1)[0], b)  # commutative


def test_the_vacuous_opinion_is_the_identity():
    b1, u1 = opinion(torch.tensor([[4.0, 2.0, 1.5]]))
    b0, u0 = opinion(torch.ones(1, 3))
    assert torch.allclose(u0, torch.ones(1)) and torch.equal(b0, torch.zeros(1, 3))
    b, u = dempster_combine(b1, u1, b0, u0)
    assert torch.allclose(b, b1) and torch.allclose(u, u1)


def test_absent_modalities_contribute_no_evidence():
    torch.manual_seed(0)
    fusion = EvidentialFusion({"a": 4, "b": 3}, 5)
    emb = {"a": torch.randn(6, 4), "b": torch.randn(6, 3)}
    both = {"a": torch.ones(6, dtype=torch.bool), "b": torch.ones(6, dtype=torch.bool)}
    only_a = {"a": both["a"], "b": torch.zeros(6, dtype=torch.bool)}
    ev = fusion.evidence(emb, only_a)
    assert torch.equal(ev.alphas[:, 1], torch.ones(6, 5))  # vacuous
    assert torch.allclose(ev.combined, ev.alphas[:, 0])  # combining with nothing changes nothing
    full = fusion.evidence(emb, both)
    assert (full.uncertainty < ev.uncertainty).all()  # more evidence, less uncertainty
    out = fusion(emb, both)
    assert torch.allclose(out.exp().sum(1), torch.ones(6), atol=1e-6)
    none = fusion(emb, {m: torch.zeros(6, dtype=torch.bool) for m in emb})
    assert torch.allclose(none, torch.full((6, 5), -math.log(5)))


def test_registered_with_its_default_objective():
    cls = FUSIONS.get("evidential")
    assert cls.decision_level and cls.default_objective == "tmc" and cls.tasks == ("classification",)
    with pytest.raises(Exception, match="'regression'"):
        cls({"a": 2}, 3, task="regression")
