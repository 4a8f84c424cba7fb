"""The Handwritten multi-view CCA benchmark on the real data (seconds: closed-form fits + logistic regression)."""

from __future__ import annotations

import csv
import json

import pytest


@pytest.fixture(scope="module")
def cca_run(data_dir, tmp_path_factory):
    from mmfuse.benchmarks.handwritten_cca import benchmark

    out = tmp_path_factory.mktemp("handwritten_cca")
    return out, {r["method"]: r for r in benchmark(out_dir=out, data_dir=data_dir)}


def test_gcca_embedding_is_linearly_separable_far_above_chance(cca_run):
    _, rows = cca_run
    for k in (9, 16, 32):
        assert rows[f"gcca{k}"]["dims"] == k and rows[f"gcca{k}_concat"]["dims"] == 6 * k
        assert rows[f"gcca{k}"]["test_accuracy"] > 0.85  # chance is 0.1
    assert rows["gcca32"]["test_accuracy"] > 0.97
    assert (
        rows["gcca9"]["test_accuracy"] < rows["gcca16"]["test_accuracy"] <= rows["gcca32"]["test_accuracy"]
    )  # 0.900 < 0.965 < 0.985 at seed 0
    assert rows["gcca32"]["test_accuracy"] == pytest.approx(0.985, abs=0.0051)  # golden: +-2 of the 400 test digits
    assert rows["concat_all"]["test_accuracy"] == pytest.approx(0.9925, abs=0.0051)


def test_baselines_and_pairwise_cca_use_the_best_training_views(cca_run):
    out, rows = cca_run
    views = ["fourier", "kl", "morph", "pixel", "profile", "zernike"]
    assert {f"{v}_only" for v in views} <= set(rows) and rows["concat_all"]["dims"] == 649
    assert rows["morph_only"]["dims"] == 6 and rows["profile_only"]["test_accuracy"] > 0.98
    meta = json.loads((out / "results.json").read_text())
    cv = meta["cv_single_view_accuracy"]
    assert meta["cca_views"] == sorted(cv, key=lambda v: -cv[v])[:2] == ["profile", "pixel"]  # chosen on training folds
    pair = [m for m in rows if m.startswith("cca")]
    assert sorted(pair) == sorted(f"cca{k}_profile+pixel{s}" for k in (9, 16, 32) for s in ("", "_concat"))
    assert all(rows[m]["test_accuracy"] > 0.9 for m in pair)
    assert meta["split"] == {"train": 1600, "test": 400} and len(meta["spectra"]["gcca9"]) == 9
    assert all(0 <= e <= 6 for e in meta["spectra"]["gcca32"])  # eigenvalues of a sum of six projections


def test_results_files_are_written_and_agree(cca_run):
    out, rows = cca_run
    assert sorted(p.name for p in out.iterdir()) == [
        "leaderboard.png",
        "mmfuse.json",
        "results.csv",
        "results.json",
    ]  # no temporary files
    meta = json.loads((out / "results.json").read_text())
    assert meta["dataset"] == "handwritten" and [r["method"] for r in meta["rows"]] == list(rows)
    with open(out / "results.csv") as fh:
        table = {r["method"]: float(r["test_accuracy"]) for r in csv.DictReader(fh)}
    assert table == {m: r["test_accuracy"] for m, r in rows.items()}


def test_the_cli_discovers_the_benchmark():
    from mmfuse.cli.benchmark import available

    assert available()["handwritten_cca"] == "mmfuse.benchmarks.handwritten_cca"
