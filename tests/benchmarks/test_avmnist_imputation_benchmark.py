"""The AV-MNIST imputation benchmark end to end on a tiny subset (one fusion, 1 epoch, real data)."""

from __future__ import annotations

import json

from mmfuse.config import TrainConfig


def test_imputation_benchmark_rows_and_saved_model(data_dir, tmp_path, monkeypatch):
    import mmfuse.benchmarks.avmnist_imputation as bench
    from mmfuse.training.serialization import load_model_dir

    monkeypatch.setitem(bench.IMPUTER_EPOCHS, "quick", 1)
    cfg = TrainConfig(max_epochs=1, batch_size=64, progress_bar=False)
    tiny = {"n_train": 256, "n_val": 64, "n_test": 100}
    rows = bench.benchmark(tmp_path, data_dir, quick=True, fusions=["concat"], train_cfg=cfg, data_options=tiny)
    (row,) = rows
    for key in ("no_image_zero", "no_image_token", "no_image_vae", "no_image_gan", "no_image_gan_l2", "audio_only"):
        assert 0.0 <= row[key] <= 1.0 and row[key] * 100 == round(row[key] * 100), key
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows
    model, meta = load_model_dir(tmp_path / "models" / "concat")
    assert model.missing_strategies() == ["zero", "gan", "vae"] and meta["data_options"]["n_test"] == 100
