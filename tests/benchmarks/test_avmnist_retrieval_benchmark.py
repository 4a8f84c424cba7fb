"""The AV-MNIST retrieval benchmark end to end on a tiny subset (1 epoch per method, real data)."""

from __future__ import annotations

import csv
import json

import pytest

from mmfuse.config import TrainConfig

TINY = {"n_train": 256, "n_val": 128, "n_test": 300}
METHODS = ["random", "cca", "deep_cca", "infonce", "contrastive_margin", "subspace"]


@pytest.fixture(scope="module")
def retrieval_run(data_dir, tmp_path_factory):
    from mmfuse.benchmarks.avmnist_retrieval import benchmark

    out = tmp_path_factory.mktemp("avmnist_retrieval")
    cfg = TrainConfig(max_epochs=1, batch_size=64, progress_bar=False, monitor="loss")
    rows = benchmark(out_dir=out, data_dir=data_dir, quick=True, train_cfg=cfg, n_queries=200, data_options=TINY)
    return out, rows


def test_every_method_is_scored_both_ways(retrieval_run):
    _, rows = retrieval_run
    assert [(r["method"], r["direction"]) for r in rows] == [
        (m, d) for m in METHODS for d in ("audio->image", "image->audio")
    ]
    for r in rows:
        assert set(r) == {
            "method",
            "direction",
            "mAP",
            "R@1",
            "P@1",
            "R@5",
            "P@5",
            "R@10",
            "P@10",
            "train_time_s",
            "zero_rows",
        }
        assert all(0.0 <= r[k] <= 1.0 for k in ("mAP", "R@1", "R@5", "R@10", "P@1", "P@5", "P@10", "zero_rows")), r
        assert r["R@1"] <= r["R@5"] <= r["R@10"]


def test_random_baseline_is_at_chance(retrieval_run):
    _, rows = retrieval_run
    random = [r for r in rows if r["method"] == "random"]
    assert random[0] == {**random[1], "direction": "audio->image"}  # same labels both ways, same seed
    # ten digits, ~30 relevant of a 300 gallery: E[mAP] = (H_G + (R-1)/(G-1) (G - H_G)) / G = 0.118, E[P@K] = 0.1
    assert random[0]["mAP"] == pytest.approx(0.118, abs=0.02)
    assert random[0]["P@10"] == pytest.approx(0.1, abs=0.03)


def test_results_files_and_models_are_written(retrieval_run):
    out, rows = retrieval_run
    assert sorted(p.name for p in out.iterdir()) == ["mmfuse.json", "models", "results.csv", "results.json"]
    meta = json.loads((out / "results.json").read_text())
    assert meta["rows"] == rows and meta["n_queries"] == 200 and meta["gallery"] == 300
    assert meta["data_options"] == {"audio_format": "logmel", **TINY}
    with open(out / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["method"], float(r["mAP"])) for r in table] == [(r["method"], r["mAP"]) for r in rows]
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(METHODS[2:])
    config = json.loads((out / "models" / "infonce" / "config.json").read_text())
    assert config["data_options"] == meta["data_options"]  # so `mmfuse retrieve` rebuilds the same split
    assert config["model"]["encoders"]["audio"]["name"] == "spectrogram_cnn"


def test_retrieve_command_reproduces_the_benchmark_row(retrieval_run, data_dir, capsys):
    from mmfuse.cli import main

    out, rows = retrieval_run
    assert (
        main(
            [
                "retrieve",
                str(out / "models" / "infonce"),
                "--query",
                "audio",
                "--gallery",
                "image",
                "--max-queries",
                "200",
                "--data-dir",
                str(data_dir),
                "-o",
                str(out.parent / "m.json"),
            ]
        )
        == 0
    )
    got = json.loads((out.parent / "m.json").read_text())["model"]
    row = next(r for r in rows if r["method"] == "infonce" and r["direction"] == "audio->image")
    assert got == {k: row[k] for k in got}
    assert "audio -> image on test (200 queries, gallery 300)" in capsys.readouterr().out


def test_retrieve_command_applies_the_post_hoc_cca_of_a_deep_cca_model(retrieval_run, data_dir, capsys):
    from mmfuse.cli import main

    out, rows = retrieval_run
    assert (
        main(
            [
                "retrieve",
                str(out / "models" / "deep_cca"),
                "--query",
                "image",
                "--gallery",
                "audio",
                "--max-queries",
                "200",
                "--data-dir",
                str(data_dir),
                "-o",
                str(out.parent / "d.json"),
            ]
        )
        == 0
    )
    got = json.loads((out.parent / "d.json").read_text())
    row = next(r for r in rows if r["method"] == "deep_cca" and r["direction"] == "image->audio")
    assert got["post_cca_components"] == 9  # ten digits - 1, the benchmark's choice
    assert got["model"] == pytest.approx({k: row[k] for k in got["model"]}, abs=1e-9)
    assert "9-component linear CCA space" in capsys.readouterr().out
