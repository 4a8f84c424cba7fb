"""The AV-MNIST MVAE generation benchmark end to end on a tiny subset (1 VAE epoch, real data)."""

from __future__ import annotations

import json

import pytest

from mmfuse.config import TrainConfig

TINY = {"n_train": 256, "n_val": 128, "n_test": 200}
ROWS = ["real test images", "reconstructed from image", "generated from audio alone", "decoded from prior samples"]


@pytest.fixture(scope="module")
def vae_run(data_dir, tmp_path_factory):
    from mmfuse.benchmarks.avmnist_vae import benchmark

    out = tmp_path_factory.mktemp("avmnist_vae")
    cfg = TrainConfig(max_epochs=1, batch_size=64, lr=1e-3, progress_bar=False)
    return out, benchmark(out_dir=out, data_dir=data_dir, quick=True, train_cfg=cfg, data_options=TINY)


def test_rows_are_the_four_image_sources(vae_run):
    _, rows = vae_run
    assert [r["images"] for r in rows] == ROWS
    assert all(0.0 <= r["classifier_accuracy"] <= 1.0 for r in rows)
    assert all(
        r["classifier_accuracy"] * 200 == round(r["classifier_accuracy"] * 200) for r in rows
    )  # a share of 200 test digits


def test_results_and_grid_are_written(vae_run):
    out, rows = vae_run
    assert sorted(p.name for p in out.iterdir()) == ["generated_from_audio.png", "mmfuse.json", "results.json"]
    assert (out / "generated_from_audio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "results.json").read_text())
    assert meta["rows"] == rows and meta["n_train"] == 256 and meta["n_test"] == 200
    assert meta["data_options"] == {"image_energy": 1.0, "audio_format": "logmel", **TINY}
    assert len(meta["neg_elbo_per_epoch"]) == 1 and meta["neg_elbo_per_epoch"][0] > 0


def test_vae_views_flatten_the_precomputed_spectrograms(data_dir):
    from mmfuse.benchmarks.avmnist_vae import vae_views
    from mmfuse.data.avmnist import load_avmnist

    test = load_avmnist(data_dir, image_energy=1.0, audio_format="logmel", n_train=8, n_val=8, n_test=16).test
    views = vae_views(test)
    assert views["image"].shape == (16, 784) and views["audio"].shape == (16, 40 * 32)
    assert float(views["image"].min()) >= 0.0 and float(views["image"].max()) <= 1.0
    assert views["audio"][0].reshape(40, 32).numpy() == pytest.approx(test[0]["inputs"]["audio"].numpy())
