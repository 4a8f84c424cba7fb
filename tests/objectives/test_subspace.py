from __future__ import annotations

import torch

from mmfuse.objectives.subspace import SharedSubspace, orthonormality_penalty, pairwise_alignment, scatter_alignment
from mmfuse.registry import OBJECTIVES


def _output(emb, masks=None):
    masks = masks or {m: torch.ones(z.shape[0], dtype=torch.bool) for m, z in emb.items()}
    return {"embeddings": emb, "masks": masks}


def test_scatter_alignment_hand_computed():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # S_a = I / 2
    zb = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # S_b = diag(2, 0)
    # S_bar = diag(1.25, 0.25); R = 2 * (0.75^2 + 0.25^2) = 1.25
    assert torch.allclose(scatter_alignment([za, zb]), torch.tensor(1.25))
    # ||za - zb||^2 / n = (1 + 1) / 2
    assert torch.allclose(pairwise_alignment([za, zb]), torch.tensor(1.0))


def test_objective_value_with_identity_projections_is_the_sum_of_terms():
    obj = SharedSubspace(dims={"a": 2, "b": 2}, k=2)
    with torch.no_grad():
        for p in obj.projections.values():
            p.copy_(torch.eye(2))
    emb = {"a": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[2.0, 0.0], [0.0, 0.0]])}
    terms = obj.terms(emb, _output(emb)["masks"])
    assert torch.allclose(terms["orthonormality"], torch.tensor(0.0))
    assert torch.allclose(obj(_output(emb), {}), torch.tensor(1.25 + 1.0))


def test_scatter_is_zero_when_scatters_are_equal_but_pairing_term_is_not():
    torch.manual_seed(0)
    za = torch.randn(6, 3)
    zb = za[torch.tensor([3, 0, 5, 1, 4, 2])]  # same rows, other order: equal scatter, misaligned samples
    assert torch.allclose(scatter_alignment([za, zb, za.clone()]), torch.tensor(0.0), atol=1e-6)
    assert pairwise_alignment([za, zb]) > 0.1


def test_orthonormality_penalty_zero_for_semi_orthogonal_and_positive_after_scaling():
    p = torch.linalg.qr(torch.randn(5, 3))[0]
    assert orthonormality_penalty(p) < 1e-10 and orthonormality_penalty(p.T) < 1e-10  # D < k uses P P^T
    assert torch.allclose(orthonormality_penalty(2 * p), torch.tensor(3 * 9.0))  # (4 - 1)^2 on 3 diagonal entries


def test_masks_exclude_unpaired_rows_and_tiny_or_empty_batches_stay_finite():
    torch.manual_seed(0)
    obj = OBJECTIVES.build("subspace", dims={"a": 4, "b": 3}, k=2)
    emb = {"a": torch.randn(5, 4, requires_grad=True), "b": torch.randn(5, 3)}
    masks = {"a": torch.tensor([1, 1, 0, 1, 1], dtype=torch.bool), "b": torch.tensor([1, 1, 1, 0, 1], dtype=torch.bool)}
    base = obj(_output(emb, masks), {})
    moved = {"a": emb["a"].detach().clone(), "b": emb["b"].clone()}
    moved["a"][2] += 50.0  # a absent in row 2
    moved["b"][3] -= 50.0  # b absent in row 3 (a present but unpaired)
    assert torch.allclose(obj(_output(moved, masks), {}), base)
    # B = 2 and a modality absent everywhere: finite, carries a graph, every parameter gets a finite gradient
    two = {"a": torch.randn(2, 4, requires_grad=True), "b": torch.randn(2, 3)}
    for m_b in (torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)):
        obj.zero_grad()
        loss = obj(_output(two, {"a": torch.ones(2, dtype=torch.bool), "b": m_b}), {})
        assert torch.isfinite(loss) and loss.grad_fn is not None
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in obj.parameters())


def test_learning_the_projections_aligns_rotated_views_and_project_gives_codes():
    torch.manual_seed(0)
    xa = torch.randn(64, 4)
    rot = torch.linalg.qr(torch.randn(4, 4))[0]
    emb = {"a": xa, "b": xa @ rot}  # view b is a rotation of view a: a shared 2-d subspace exists
    obj = SharedSubspace(dims={"a": 4, "b": 4}, k=2)
    opt = torch.optim.Adam(obj.parameters(), lr=0.05)
    start = obj(_output(emb), {}).item()
    for _ in range(150):
        opt.zero_grad()
        loss = obj(_output(emb), {})
        loss.backward()
        opt.step()
    assert loss.item() < 0.02 * start
    z = obj.project(emb, {"a": torch.ones(64, dtype=torch.bool), "b": torch.arange(64) < 32})
    assert z["a"].shape == (64, 2) and torch.equal(z["b"][32:], torch.zeros(32, 2))
    assert torch.allclose(z["a"][:32], z["b"][:32], atol=0.05)
