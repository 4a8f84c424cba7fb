"""``mmfuse robustness`` reports every missing-modality strategy of a model with imputers, side by side."""

from __future__ import annotations

import json

import pytest

from mmfuse.cli import main
from mmfuse.config import TrainConfig


@pytest.fixture(scope="module")
def with_imputers(tmp_path_factory):
    from conftest import fit_synthetic_model_dir
    from mmfuse.training.imputation import add_imputers

    root = tmp_path_factory.mktemp("imputers")
    cfg = TrainConfig(max_epochs=1, batch_size=64, progress_bar=False)
    plain, splits = fit_synthetic_model_dir(root / "plain", n=300, n_train=200, n_val=50, seed=2, train_cfg=cfg)
    add_imputers(plain, splits.train, {"gan": {"hidden": [16, 16]}, "vae": {"latent": 4}}, root / "model", epochs=2)
    return root / "model", splits


def test_robustness_cli_compares_every_strategy(with_imputers, monkeypatch, capsys):
    from conftest import serve_synthetic_splits

    model_dir, splits = with_imputers
    serve_synthetic_splits(monkeypatch, splits)
    assert main(["robustness", str(model_dir), "--missing-rates", "0,1", "--noise-levels", "0,1"]) == 0
    text = capsys.readouterr().out
    assert "strategies side by side" in text and all(f"missing={s}" in text for s in ("zero", "gan", "vae"))
    data = json.loads((model_dir / "robustness.json").read_text())
    assert data["missing_strategy"] == "zero" and sorted(data["by_missing"]) == ["gan", "vae", "zero"]
    assert data["by_missing"]["zero"]["removal"] == data["removal"]
    assert data["by_missing"]["gan"]["clean"] == data["clean"]  # nothing absent: imputation changes nothing


def test_robustness_cli_refuses_a_strategy_the_model_lacks(with_imputers, monkeypatch, capsys):
    from conftest import serve_synthetic_splits

    model_dir, splits = with_imputers
    serve_synthetic_splits(monkeypatch, splits)
    assert main(["robustness", str(model_dir), "--missing", "token", "-o", str(model_dir.parent / "r.json")]) == 2
    assert "--missing names ['token']" in capsys.readouterr().err
