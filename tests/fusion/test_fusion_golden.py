"""Golden values and equivalences that pin the math of each fusion method."""

from __future__ import annotations

import math

import torch
from torch import nn

from mmfuse.fusion.late import late_average, majority_vote
from mmfuse.fusion.tensor import low_rank_tensor_fusion, tensor_fusion
from mmfuse.registry import FUSIONS


def mask(*bits):
    return torch.tensor(bits, dtype=torch.bool)


def identity_heads(fusion):
    """Make each per-modality predictor the identity, so embeddings are the per-modality logits."""
    fusion.heads = nn.ModuleDict({m: nn.Identity() for m in fusion.modalities})
    return fusion


# ---------------------------------------------------------------- tensor fusion (TFN) and LMF


def test_tensor_fusion_hand_values():
    out = tensor_fusion([torch.tensor([[2.0]]), torch.tensor([[3.0]])])
    assert torch.equal(out, torch.tensor([[6.0, 2.0, 3.0, 1.0]]))  # [2;1] ⊗ [3;1], first modality slowest
    out = tensor_fusion([torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0]]), torch.tensor([[5.0]])])
    expected = [i * j * k for i in (1.0, 2.0, 1.0) for j in (3.0, 1.0) for k in (5.0, 1.0)]
    assert out.shape == (1, 12) and torch.equal(out, torch.tensor([expected]))


def _tfn_as_lmf(weight: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Exact CP factors of a TFN weight ``(out, prod(d_m + 1))``: one rank-1 term per index of all modalities but the
    last.

    ``W[o, i_1, .., i_M] = sum_{(j_1..j_{M-1})} prod_{m<M} [i_m = j_m] * W[o, j_1, .., j_{M-1}, i_M]``, so
    ``W_m^(j) = e_{j_m}`` (same for every output) for ``m < M`` and ``W_M^(j)[:, o] = W[o, j, :]``.
    """
    out = weight.shape[0]
    wt = weight.reshape(out, *[d + 1 for d in sizes])  # (out, d_1 + 1, ..., d_M + 1)
    heads = list(torch.cartesian_prod(*[torch.arange(d + 1) for d in sizes[:-1]]).reshape(-1, len(sizes) - 1))
    factors = [torch.zeros(len(heads), d + 1, out) for d in sizes]
    for r, idx in enumerate(heads):
        for m, i in enumerate(idx.tolist()):
            factors[m][r, i, :] = 1.0
        factors[-1][r] = wt[(slice(None), *idx.tolist())].T  # (d_M + 1, out)
    return factors


def test_lmf_at_full_rank_equals_tfn_pre_activation():
    torch.manual_seed(0)
    for sizes in ([3, 2], [2, 3, 2]):
        zs = [torch.randn(5, d) for d in sizes]
        weight, bias = torch.randn(4, math.prod(d + 1 for d in sizes)), torch.randn(4)
        tfn = tensor_fusion(zs) @ weight.T + bias
        factors = _tfn_as_lmf(weight, sizes)
        assert factors[0].shape[0] == math.prod(d + 1 for d in sizes[:-1])  # rank (d_1 + 1) for two modalities
        assert torch.allclose(low_rank_tensor_fusion(zs, factors, bias), tfn, atol=1e-5)


def test_lmf_module_is_relu_of_the_full_tfn_map_also_with_an_absent_modality():
    torch.manual_seed(0)
    lmf = FUSIONS.build("low_rank_tensor", dims={"a": 3, "b": 2}, out_dim=4, rank=4)
    weight, bias = torch.randn(4, 12), torch.randn(4)
    with torch.no_grad():
        for m, f in zip(["a", "b"], _tfn_as_lmf(weight, [3, 2])):
            lmf.factors[m].copy_(f)
        lmf.bias.copy_(bias)
    za, zb = torch.randn(3, 3), torch.randn(3, 2)
    masks = {"a": mask(1, 1, 0), "b": mask(1, 0, 1)}
    keep_a, keep_b = masks["a"].float()[:, None], masks["b"].float()[:, None]
    expected = torch.relu(tensor_fusion([za * keep_a, zb * keep_b]) @ weight.T + bias)
    assert torch.allclose(lmf({"a": za, "b": zb}, masks), expected, atol=1e-5)


def test_tensor_module_keeps_the_other_terms_when_a_modality_is_absent():
    torch.manual_seed(0)
    tfn = FUSIONS.build("tensor", dims={"a": 3, "b": 2}, out_dim=4, rank_dim=2)
    za, zb = torch.randn(2, 3), torch.randn(2, 2)
    out = tfn({"a": za, "b": zb}, {"a": mask(1, 1), "b": mask(1, 0)})
    pa, pb = tfn.proj["a"](za), tfn.proj["b"](zb)
    full = torch.relu(tfn.linear(tensor_fusion([pa, pb])))
    b_absent = torch.relu(tfn.linear(tensor_fusion([pa, torch.zeros_like(pb)])))  # z_b = 0, its 1 stays
    assert tfn.linear.in_features == 9
    assert torch.allclose(out[0], full[0], atol=1e-6) and torch.allclose(out[1], b_absent[1], atol=1e-6)


# ---------------------------------------------------------------- feature-level fusions by hand


def test_concat_by_hand():
    torch.manual_seed(0)
    f = FUSIONS.build("concat", dims={"b": 2, "a": 3}, out_dim=4)
    za, zb = torch.randn(2, 3), torch.randn(2, 2)
    out = f({"a": za, "b": zb}, {"a": mask(1, 1), "b": mask(1, 0)})
    lin = f.net[0]
    expected = torch.relu(
        torch.cat([za, zb * torch.tensor([[1.0], [0.0]])], 1) @ lin.weight.T + lin.bias
    )  # a first (sorted)
    assert torch.allclose(out, expected, atol=1e-6)


def test_weighted_sum_with_fixed_weights():
    torch.manual_seed(0)
    f = FUSIONS.build(
        "weighted_sum", dims={"a": 3, "b": 2}, out_dim=4, weights={"a": 1.0, "b": 3.0}, learn_weights=False
    )
    assert "logits" not in dict(f.named_parameters())
    za, zb = torch.randn(3, 3), torch.randn(3, 2)
    masks = {"a": mask(1, 1, 0), "b": mask(1, 0, 0)}
    out = f({"a": za, "b": zb}, masks)
    ya, yb = f.proj["a"](za), f.proj["b"](zb)
    assert torch.allclose(out[0], 0.25 * ya[0] + 0.75 * yb[0], atol=1e-6)  # weights 1:3 normalised
    assert torch.allclose(out[1], ya[1], atol=1e-6)  # renormalised over the present modality
    assert torch.equal(out[2], torch.zeros(4))  # no modality
    w = f.modality_weights({"a": za, "b": zb}, masks)
    assert torch.allclose(w, torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.0, 0.0]]))


def test_modality_attention_by_hand():
    torch.manual_seed(0)
    f = FUSIONS.build("modality_attention", dims={"a": 3, "b": 2, "c": 4}, out_dim=5, hidden=6)
    emb = {"a": torch.randn(2, 3), "b": torch.randn(2, 2), "c": torch.randn(2, 4)}
    masks = {"a": mask(1, 1), "b": mask(1, 0), "c": mask(1, 1)}
    out = f(emb, masks)
    w1, w2 = f.score[0], f.score[2]
    for row, present in ((0, ["a", "b", "c"]), (1, ["a", "c"])):
        zp = {m: f.proj[m](emb[m][row]) for m in present}
        s = torch.stack([w2.weight[0] @ torch.tanh(w1.weight @ zp[m] + w1.bias) for m in present])
        a = torch.softmax(s, 0)
        fused = sum(a[i] * zp[m] for i, m in enumerate(present))
        assert torch.allclose(out[row], torch.relu(f.out[0](fused)), atol=1e-6)
        weights = f.modality_weights(emb, masks)[row]
        assert torch.allclose(weights[[f.modalities.index(m) for m in present]], a, atol=1e-6)


def test_gated_two_modalities_is_the_gmu():
    torch.manual_seed(0)
    f = FUSIONS.build("gated", dims={"a": 3, "b": 2}, out_dim=4)
    za, zb = torch.randn(5, 3), torch.randn(5, 2)
    out = f({"a": za, "b": zb}, {"a": torch.ones(5, dtype=torch.bool), "b": torch.ones(5, dtype=torch.bool)})
    wg, bg = f.gate.weight.view(2, 4, 5), f.gate.bias.view(2, 4)
    x = torch.cat([za, zb], 1)
    g = torch.sigmoid(x @ (wg[0] - wg[1]).T + (bg[0] - bg[1]))  # Arevalo et al.: z = sigma(W_z [x_v; x_t])
    expected = g * torch.tanh(f.hidden["a"](za)) + (1 - g) * torch.tanh(f.hidden["b"](zb))
    assert torch.allclose(out, expected, atol=1e-6)
    one = f({"a": za, "b": zb}, {"a": torch.ones(5, dtype=torch.bool), "b": torch.zeros(5, dtype=torch.bool)})
    assert torch.allclose(one, torch.tanh(f.hidden["a"](za)), atol=1e-6)


def test_hybrid_by_hand():
    torch.manual_seed(0)
    f = FUSIONS.build("hybrid", dims={"a": 3, "b": 2}, out_dim=4, decision_dim=2)
    with torch.no_grad():
        f.logits.copy_(torch.log(torch.tensor([1.0, 3.0])))
    za, zb = torch.randn(2, 3), torch.randn(2, 2)
    out = f({"a": za, "b": zb}, {"a": mask(1, 1), "b": mask(1, 0)})
    zb0 = zb * torch.tensor([[1.0], [0.0]])
    feat = f.feature(torch.cat([za, zb0], 1))
    da, db = torch.tanh(f.decision["a"](za)), torch.tanh(f.decision["b"](zb))
    dec = torch.stack([0.25 * da[0] + 0.75 * db[0], da[1]])
    assert torch.allclose(out, f.combine(torch.cat([feat, dec], 1)), atol=1e-6)


def test_self_attention_padding_equals_removing_the_token():
    torch.manual_seed(0)
    f = FUSIONS.build("self_attention", dims={"a": 3, "b": 2}, out_dim=4, d_model=8, num_heads=2).eval()
    za, zb = torch.randn(2, 3), torch.randn(2, 2)
    out = f({"a": za, "b": zb}, {"a": mask(1, 1), "b": mask(0, 0)})
    tok_a = f.tokens.proj["a"](za) + f.tokens.type_embedding[0]
    x = torch.cat([f.fusion_token.expand(2, -1, -1), tok_a[:, None]], 1)  # [fusion token, a] only
    assert torch.allclose(out, f.out(f.encoder(x)[:, 0]), atol=1e-5)


def test_cross_attention_without_other_modality_is_zero_and_otherwise_attends():
    torch.manual_seed(0)
    f = FUSIONS.build("cross_attention", dims={"a": 3, "b": 2, "c": 2}, out_dim=4, d_model=8, num_heads=2).eval()
    tokens = torch.randn(3, 3, 8)
    present = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    a = f.cross_attend(tokens, present)
    assert torch.equal(a[0, 0], torch.zeros(8)) and torch.equal(a[2], torch.zeros(3, 8))
    # with one key the attention output is that key's value projection (softmax over one entry = 1)
    mha = f.cross["a"]
    value = tokens[1, 1] @ mha.in_proj_weight[16:].T + mha.in_proj_bias[16:]
    assert torch.allclose(a[1, 0], mha.out_proj(value), atol=1e-5)
    single = FUSIONS.build("cross_attention", dims={"a": 3}, out_dim=4, d_model=8, num_heads=2)
    assert not hasattr(single, "cross")


# ---------------------------------------------------------------- decision-level fusions


def test_late_mean_is_the_log_of_the_mean_of_softmaxes():
    f = identity_heads(FUSIONS.build("late_mean", dims={"a": 3, "b": 3}, out_dim=3))
    la, lb = torch.tensor([[2.0, 0.0, -1.0]] * 3), torch.tensor([[0.0, 3.0, 0.5]] * 3)
    out = f({"a": la, "b": lb}, {"a": mask(1, 1, 0), "b": mask(1, 0, 0)})
    assert torch.allclose(out[0], torch.log((torch.softmax(la[0], 0) + torch.softmax(lb[0], 0)) / 2), atol=1e-6)
    assert torch.allclose(out[1], torch.log_softmax(la[1], 0), atol=1e-6)  # b absent: a alone
    assert torch.allclose(out[2], torch.full((3,), -math.log(3)))  # nothing: uniform
    reg = late_average(
        torch.tensor([[[1.0], [5.0], [9.0]]]), torch.tensor([[0.5, 0.5, 0.0]]), mask(1, 1, 0)[None], "regression"
    )
    assert torch.allclose(reg, torch.tensor([[3.0]]))
    ml = late_average(torch.tensor([[[2.0], [-1.0]]]), torch.tensor([[0.5, 0.5]]), mask(1, 1)[None], "multilabel")
    p = (torch.sigmoid(torch.tensor(2.0)) + torch.sigmoid(torch.tensor(-1.0))) / 2
    assert torch.allclose(ml, torch.log(p / (1 - p)).reshape(1, 1), atol=1e-6)


def test_late_weighted_renormalises_its_weights_over_present_modalities():
    f = identity_heads(FUSIONS.build("late_weighted", dims={"a": 2, "b": 2, "c": 2}, out_dim=2))
    with torch.no_grad():
        f.logits.copy_(torch.log(torch.tensor([1.0, 3.0, 4.0])))
    emb = {
        "a": torch.tensor([[1.0, 0.0]] * 2),
        "b": torch.tensor([[0.0, 2.0]] * 2),
        "c": torch.tensor([[5.0, 0.0]] * 2),
    }
    masks = {"a": mask(1, 1), "b": mask(1, 1), "c": mask(1, 0)}
    out = f(emb, masks)
    sm = {m: torch.softmax(emb[m][0], 0) for m in emb}
    assert torch.allclose(out[0], torch.log(0.125 * sm["a"] + 0.375 * sm["b"] + 0.5 * sm["c"]), atol=1e-6)
    assert torch.allclose(out[1], torch.log(0.25 * sm["a"] + 0.75 * sm["b"]), atol=1e-6)  # c absent: 1:3
    assert torch.allclose(f.modality_weights(emb, masks), torch.tensor([[0.125, 0.375, 0.5], [0.25, 0.75, 0.0]]))


def test_late_vote_picks_the_majority_not_the_mean():
    f = identity_heads(FUSIONS.build("late_vote", dims={"a": 3, "b": 3, "c": 3}, out_dim=3))
    weak, sure = torch.tensor([[1.0, 0.9, 0.0]]), torch.tensor([[-20.0, 0.0, 20.0]])
    emb, masks = {"a": weak, "b": weak, "c": sure}, {m: mask(1) for m in "abc"}
    mean = FUSIONS.build("late_mean", dims={"a": 3, "b": 3, "c": 3}, out_dim=3)
    mean_out = identity_heads(mean)(emb, masks)
    assert mean_out.argmax(1).item() == 2  # the confident modality wins the mean...
    voted = f.eval()(emb, masks)
    assert voted.argmax(1).item() == 0  # ...but two of three modalities vote for class 0
    score = torch.tensor([2.0, 0.0, 1.0]) + f.tie_break * mean_out[0].exp()
    assert torch.allclose(voted[0], torch.log(score / score.sum()), atol=1e-6)
    assert torch.allclose(f.train()(emb, masks), mean_out, atol=1e-6)  # training: log mean prob surrogate
    # an absent modality does not vote: without b, a and c tie and the mean probability breaks the tie
    no_b = f.eval()(emb, {**masks, "b": mask(0)})
    assert no_b.argmax(1).item() == 2 and torch.allclose(no_b.exp().sum(), torch.tensor(1.0))


def test_majority_vote_median_and_multilabel():
    preds = torch.tensor([[[1.0], [5.0], [100.0]]] * 3)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 0]], dtype=torch.bool)
    assert torch.equal(majority_vote(preds, present, "regression"), torch.tensor([[5.0], [50.5], [0.0]]))
    logits = torch.tensor([[[1.0, -1.0], [1.0, -1.0], [-5.0, 5.0]]])
    out = majority_vote(logits, torch.ones(1, 3, dtype=torch.bool), "multilabel")
    assert out[0, 0] > 0 and out[0, 1] < 0  # per label, two of three vote
    p = (2 * torch.sigmoid(torch.tensor(1.0)) + torch.sigmoid(torch.tensor(-5.0))) / 3
    assert torch.allclose(out[0, 0], torch.log((2 + 0.5 * p) / (1 + 0.5 * (1 - p))), atol=1e-6)


def test_vote_tie_break_survives_float32_between_two_confident_modalities():
    logits = torch.tensor(
        [[[8.0, 0.0], [0.0, 8.05]]]
    )  # a and b disagree; b is surer by a mean-probability gap of ~8e-6
    present = torch.ones(1, 2, dtype=torch.bool)
    assert late_average(logits, torch.full((1, 2), 0.5), present, "classification").argmax(1).item() == 1
    out = majority_vote(logits, present, "classification")
    assert out.argmax(1).item() == 1 and torch.allclose(out.exp().sum(), torch.tensor(1.0))


def test_tensor_fusion_refuses_an_outer_product_over_its_parameter_budget():
    import pytest

    from mmfuse.errors import ConfigError

    six = {f"v{i}": 16 for i in range(6)}
    with pytest.raises(
        ConfigError, match=r"531,441-wide outer product \(34.0 M weights\).*'low_rank_tensor'.*rank_dim=5"
    ):
        FUSIONS.build("tensor", dims=six, out_dim=64)  # the 34 M-parameter model a 6-view table used to build silently
    assert (
        FUSIONS.build("tensor", dims=six, out_dim=64, rank_dim=5).linear.weight.numel() == 6**6 * 64
    )  # the suggestion fits
    FUSIONS.build("low_rank_tensor", dims=six, out_dim=64)


def test_late_product_is_the_normalised_product_of_posteriors():
    f = identity_heads(FUSIONS.build("late_product", dims={"a": 3, "b": 3}, out_dim=3))
    la, lb = torch.tensor([[2.0, 0.0, -1.0]] * 3), torch.tensor([[0.0, 3.0, 0.5]] * 3)
    out = f({"a": la, "b": lb}, {"a": mask(1, 1, 0), "b": mask(1, 0, 0)})
    prod = torch.softmax(la[0], 0) * torch.softmax(lb[0], 0)
    assert torch.allclose(out[0], torch.log(prod / prod.sum()), atol=1e-6)
    assert torch.allclose(out[1], torch.log_softmax(la[1], 0), atol=1e-6)  # b absent: a alone
    assert torch.allclose(out[2], torch.full((3,), -math.log(3)))  # nothing: uniform
    # two modalities that each favour class 1 a little make a surer answer than either (the mean rule cannot)
    weak = torch.tensor([[0.0, 1.0, 0.0]])
    both = {"a": weak, "b": weak}, {"a": mask(1), "b": mask(1)}
    assert f(*both).exp()[0, 1] > torch.softmax(weak[0], 0)[1] + 0.1
    mean = identity_heads(FUSIONS.build("late_mean", dims={"a": 3, "b": 3}, out_dim=3))
    assert torch.allclose(mean(*both).exp()[0, 1], torch.softmax(weak[0], 0)[1])
    ml = identity_heads(FUSIONS.build("late_product", dims={"a": 1, "b": 1}, out_dim=1, task="multilabel"))
    assert torch.allclose(
        ml({"a": torch.tensor([[2.0]]), "b": torch.tensor([[-0.5]])}, {"a": mask(1), "b": mask(1)}),
        torch.tensor([[1.5]]),
    )
