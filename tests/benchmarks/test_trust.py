"""The trust benchmark on Handwritten (quick): every measurement present, seeds summarised, results written."""

from __future__ import annotations

import json

import pytest

from mmfuse.benchmarks import trust


def test_quick_trust_benchmark_on_handwritten(data_dir, tmp_path):
    from mmfuse.config import TrainConfig

    cfg = TrainConfig(max_epochs=3, batch_size=64, patience=2, progress_bar=False)
    rows = trust.benchmark(
        out_dir=tmp_path / "t", data_dir=data_dir, quick=True, fusions=["concat", "evidential"], train_cfg=cfg
    )
    assert [r["method"] for r in rows] == ["concat", "evidential"]
    for r in rows:
        assert r["seeds"] == 1 and 0.5 < r["test_accuracy"] <= 1.0
        for key in (
            "ece_raw",
            "ece_scaled",
            "nll_raw",
            "brier_raw",
            "acc_at_90",
            "auroc_wrong",
            "auroc_noise_1",
            "auroc_noise_3",
        ):
            assert key in r and f"{key}_std" in r
        assert sorted(r["shapley"]) == ["fourier", "kl", "morph", "pixel", "profile", "zernike"]
    payload = json.loads((tmp_path / "t" / "results.json").read_text())
    assert payload["dataset"] == "handwritten" and payload["published"][0]["test_accuracy"] == pytest.approx(0.9851)
    with pytest.raises(ValueError, match="dataset"):
        trust.benchmark(out_dir=None, dataset="mnist")
