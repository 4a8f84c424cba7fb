from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mmfuse.objectives.adversarial import ModalityAdversarial, grad_reverse
from mmfuse.registry import OBJECTIVES


def _output(emb, masks=None):
    masks = masks or {m: torch.ones(z.shape[0], dtype=torch.bool) for m, z in emb.items()}
    return {"embeddings": emb, "masks": masks}


def test_gradient_reversal_is_identity_forward_and_flips_and_scales_backward():
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.equal(x.grad, -0.7 * w)


def test_encoders_get_reversed_gradient_and_discriminator_the_normal_one():
    torch.manual_seed(0)
    obj = ModalityAdversarial(dims={"a": 5, "b": 5}, lambd=0.5, hidden=8)
    emb = {"a": torch.randn(4, 5, requires_grad=True), "b": torch.randn(4, 5, requires_grad=True)}
    masks = {"a": torch.tensor([1, 1, 0, 1], dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}
    obj(_output(emb, masks), {}).backward()
    got_disc = [p.grad.clone() for p in obj.discriminator.parameters()]
    # reference: the same cross-entropy without any reversal
    obj.zero_grad()
    ref = {m: z.detach().clone().requires_grad_(True) for m, z in emb.items()}
    x = torch.cat([ref["a"][masks["a"]], ref["b"]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    F.cross_entropy(obj.discriminator(x), labels).backward()
    for g, p in zip(got_disc, obj.discriminator.parameters()):
        assert torch.allclose(g, p.grad)
    for m in ("a", "b"):
        assert torch.allclose(emb[m].grad, -0.5 * ref[m].grad)
    assert torch.equal(emb["a"].grad[2], torch.zeros(5))  # the absent row is not used


def test_loss_is_cross_entropy_of_present_rows_and_absent_rows_do_not_matter():
    torch.manual_seed(0)
    obj = OBJECTIVES.build("adversarial", dims={"a": 3, "b": 3})
    emb = {"a": torch.randn(5, 3), "b": torch.randn(5, 3)}
    masks = {"a": torch.tensor([1, 0, 1, 1, 0], dtype=torch.bool), "b": torch.ones(5, dtype=torch.bool)}
    loss = obj(_output(emb, masks), {})
    moved = {"a": emb["a"].clone(), "b": emb["b"]}
    moved["a"][1] += 100.0
    assert torch.allclose(obj(_output(moved, masks), {}), loss)
    with torch.no_grad():  # a zeroed output layer gives uniform logits: the loss is log M
        obj.discriminator[-1].weight.zero_()
        obj.discriminator[-1].bias.zero_()
    assert torch.allclose(obj(_output(emb, masks), {}), torch.tensor(math.log(2.0)))


def test_different_sizes_get_semi_orthonormal_projections_and_tiny_batches_stay_finite():
    torch.manual_seed(0)
    obj = ModalityAdversarial(dims={"a": 6, "b": 3, "c": 4})
    assert {m: tuple(p.shape) for m, p in obj.projections.items()} == {"a": (6, 3), "b": (3, 3), "c": (4, 3)}
    emb = {"a": torch.randn(2, 6), "b": torch.randn(2, 3), "c": torch.randn(2, 4)}
    for present in ({"a": 1, "b": 1, "c": 0}, {"a": 0, "b": 0, "c": 0}):
        obj.zero_grad()
        masks = {m: torch.full((2,), bool(v)) for m, v in present.items()}
        loss = obj(_output(emb, masks), {})
        assert torch.isfinite(loss) and loss.grad_fn is not None
        loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in obj.parameters())
    assert obj(_output(emb, {m: torch.zeros(2, dtype=torch.bool) for m in emb}), {}).item() < 1e-6


def test_reversal_keeps_the_discriminator_near_chance_while_the_task_is_learned():
    torch.manual_seed(0)
    n = 64
    xa, xb = torch.randn(n, 4), torch.randn(n, 4)
    xa[:, 0] += 2.0  # the modalities differ by an offset along feature 0
    xb[:, 0] -= 2.0
    y = torch.cat([xa[:, 1] > 0, xb[:, 1] > 0]).long()  # the task reads feature 1
    masks = {"a": torch.ones(n, dtype=torch.bool), "b": torch.ones(n, dtype=torch.bool)}
    late_adv, task = {}, {}
    for lambd in (0.0, 1.0):
        torch.manual_seed(1)
        enc, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
        obj = ModalityAdversarial(dims={"a": 4, "b": 4}, lambd=lambd, hidden=16)
        opt = torch.optim.SGD([*enc.parameters(), *head.parameters(), *obj.parameters()], lr=0.1)
        trace = []
        for _ in range(150):
            opt.zero_grad()
            za, zb = enc(xa), enc(xb)
            adv = obj(_output({"a": za, "b": zb}, masks), {})
            task[lambd] = F.cross_entropy(head(torch.cat([za, zb])), y)
            (task[lambd] + adv).backward()
            opt.step()
            trace.append(adv.item())
        late_adv[lambd] = sum(trace[-50:]) / 50
    assert late_adv[0.0] < 0.15  # lambda = 0: the discriminator separates the modalities
    assert late_adv[1.0] > 0.4  # reversed gradient: it stays near chance (log 2 = 0.693)
    assert task[1.0] < 0.2  # while the task is still learned
