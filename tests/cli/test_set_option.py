"""``--set section.field=value`` reaches every config field from fit, compare and train; wrong fields and types are one
sentence."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from mmfuse.cli import main
from mmfuse.cli._common import settings_from_args


def test_settings_are_read_from_the_config_types():
    args = argparse.Namespace(
        set=["model.fusion_params.rank=8", "model.head=mlp", "train.weight_decay=0.01", "model.head_params.hidden=[32]"]
    )
    assert settings_from_args(args) == {
        "model": {"fusion_params": {"rank": 8}, "head": "mlp", "head_params": {"hidden": [32]}},
        "train": {"weight_decay": 0.01},
    }


@pytest.mark.parametrize(
    "item, message",
    [
        ("model.rnak=3", "'rnak' is not a ModelConfig field; valid fields:"),
        ("hidden=3", "must look like model.KEY=VALUE"),
        ("train.lr", "must look like model.KEY=VALUE"),
    ],
)
def test_bad_settings_are_refused(item, message):
    from mmfuse.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        settings_from_args(argparse.Namespace(set=[item]))


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    df = pd.DataFrame(
        {
            **{f"f_{j}": rng.normal(size=80) + (y if j == 0 else 0) for j in range(5)},
            "size": rng.normal(size=80),
            "label": y,
        }
    )
    df.to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


def fit_command(table, tmp_path) -> list[str]:
    return [
        "fit",
        str(table),
        "--target",
        "label",
        "--max-epochs",
        "1",
        "--no-progress",
        "--cache-dir",
        str(tmp_path / "c"),
    ]


def test_fit_passes_fusion_params_and_refuses_a_wrong_type(table, tmp_path, capsys):
    common = fit_command(table, tmp_path)
    assert (
        main(
            [
                *common,
                "-o",
                str(tmp_path / "m"),
                "--fusion",
                "low_rank_tensor",
                "--set",
                "model.fusion_params.rank=3",
                "--set",
                "train.weight_decay=0.05",
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["fusion_params"] == {"rank": 3} and config["train"]["weight_decay"] == 0.05
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "m2"), "--set", "model.hidden=big"]) == 2
    assert (
        capsys.readouterr().err.strip() == "mmfuse: error: ModelConfig option 'hidden' is 'big' (str); it must be int."
    )
    assert not (tmp_path / "m2").exists()


def test_fit_objective_adds_a_term_beside_the_task_loss(table, tmp_path, capsys):
    common = fit_command(table, tmp_path)
    assert main([*common, "-o", str(tmp_path / "m"), "--objective", "infonce=0.5", "--objective", "cca"]) == 0
    objectives = json.loads((tmp_path / "m" / "config.json").read_text())["train"]["objectives"]
    assert objectives == {
        "task": {"objective": None, "weight": 1.0},
        "infonce": {"objective": "infonce", "weight": 0.5},
        "cca": {"objective": "cca", "weight": 1.0},
    }
    from mmfuse.training.serialization import load_objectives

    assert sorted(load_objectives(tmp_path / "m")) == ["cca", "infonce", "task"]
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "m2"), "--objective", "infonse"]) == 2
    assert "Did you mean 'infonce'" in capsys.readouterr().err
