"""TMC loss: expected cross-entropy and the KL to the uniform Dirichlet pinned by hand; training with it learns."""

from __future__ import annotations

import math

import torch

from mmfuse.objectives.evidential import TMCLoss, dirichlet_kl_uniform, tmc_loss


def test_terms_by_hand():
    alpha, y = torch.tensor([[3.0, 2.0]]), torch.tensor([0])
    # L_ace = psi(5) - psi(3) = 1/3 + 1/4;  alpha~ = (1, 2): KL = lgamma(3) - lgamma(2) - lgamma(1) - lgamma(2) +
    # (psi(2) - psi(3)) = log 2 - 1/2
    assert torch.allclose(tmc_loss(alpha, y, 0.0), torch.tensor([7 / 12]))
    assert torch.allclose(tmc_loss(alpha, y, 1.0), torch.tensor([7 / 12 + math.log(2) - 0.5]))
    assert torch.allclose(dirichlet_kl_uniform(torch.ones(3, 4)), torch.zeros(3), atol=1e-6)


def test_kl_weight_anneals_and_absent_modalities_are_left_out():
    from mmfuse.fusion.evidential import Evidence

    loss = TMCLoss(anneal_steps=4)
    alphas = torch.tensor([[[3.0, 1.0], [1.0, 1.0]]])  # modality 1 absent (vacuous)
    ev = Evidence(alphas, torch.tensor([[True, False]]), alphas[:, 0])
    out = {"evidence": ev}
    values = [float(loss(out, {"target": torch.tensor([1])})) for _ in range(6)]
    assert values[0] < values[3] == values[5]  # the KL weight grows to 1 over 4 steps, then stays
    expected = 2 * float(
        tmc_loss(alphas[:, 0], torch.tensor([1]), 1.0)
    )  # combined + modality 0; modality 1 not counted
    assert math.isclose(values[-1], expected, rel_tol=1e-6)


def test_an_evidential_model_learns_with_the_default_objective(synthetic):
    from conftest import SYNTHETIC_ENCODERS
    from mmfuse.config import ModelConfig, TrainConfig
    from mmfuse.evaluation.predict import predict, task_metrics
    from mmfuse.training.fit import fit

    train, val = synthetic
    cfg = ModelConfig(encoders=SYNTHETIC_ENCODERS, num_outputs=3, fusion="evidential")
    result = fit(cfg, TrainConfig(max_epochs=8, batch_size=32, progress_bar=False), train, val)
    assert sorted(result.task.objectives) == ["task"] and type(result.task.objectives["task"]).__name__ == "TMCLoss"
    assert task_metrics(predict(result.model, val), "classification")["accuracy"] > 0.6  # chance 1/3
