from __future__ import annotations

import json

import pytest

from mmfuse.cli import main
from mmfuse.config import TrainConfig


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from conftest import fit_synthetic_model_dir

    cfg = TrainConfig(max_epochs=1, batch_size=64, progress_bar=False)
    return fit_synthetic_model_dir(
        tmp_path_factory.mktemp("cli") / "model", n=300, n_train=200, n_val=50, seed=2, train_cfg=cfg
    )


@pytest.fixture
def registry(saved, monkeypatch):
    """The data registry answers 'synthetic' with the splits above, and records the options it got."""
    from conftest import serve_synthetic_splits

    return serve_synthetic_splits(monkeypatch, saved[1])


def test_report_of_a_model_dir_reloads_its_dataset(saved, registry, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(saved[0]), "-o", str(out), "--max-samples", "40"]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page and "first 40 test samples" in page
    assert registry == [("synthetic", {"n": 300})]  # the loader options saved in config.json are reused
    assert "report written to" in capsys.readouterr().out


def test_robustness_cli_prints_tables_and_adds_its_json_to_the_model_dir(saved, registry, capsys):
    before = sorted(p.name for p in saved[0].iterdir())
    assert main(["robustness", str(saved[0]), "--missing-rates", "0,0.5,1", "--noise-levels", "0,1"]) == 0
    text = capsys.readouterr().out
    assert "no a" in text and "missing-rate sweep" in text and "noise on b" in text
    data = json.loads((saved[0] / "robustness.json").read_text())
    assert data["missing_rate"]["levels"] == [0.0, 0.5, 1.0] and set(data["noise"]) == {"a", "b"}
    assert sorted(p.name for p in saved[0].iterdir()) == sorted({*before, "robustness.json"})
    assert (
        main(["report", str(saved[0]), "-o", str(saved[0].parent / "x.html")]) == 0
    )  # the report picks the saved sweep up


def test_report_cli_wrong_path_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "neither a benchmark results folder" in err


def test_robustness_cli_bad_levels_is_a_config_error(saved, registry, capsys):
    assert main(["robustness", str(saved[0]), "--noise-levels", "0,big"]) == 2
    assert "--noise-levels" in capsys.readouterr().err
