"""``--modality-dropout P`` and ``--missing-token`` reach the saved config of ``mmfuse train``, ``fit`` and
``compare``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse.cli import main
from mmfuse.data.base import DatasetSpec, Splits

FLAGS = ("--modality-dropout", "0.25", "--missing-token")
FAST = ("--fusion", "concat", "--max-epochs", "1", "--no-progress")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """90 rows, numbers only: a 4-column group f_0..f_3 and a number 'size' (two modalities); label from f_0."""
    root = tmp_path_factory.mktemp("flags")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 90)
    df = pd.DataFrame(
        {
            **{f"f_{j}": rng.normal(size=90) + (2.0 * y if j == 0 else 0.0) for j in range(4)},
            "size": rng.normal(size=90),
            "label": [f"c{v}" for v in y],
        }
    )
    df.to_csv(root / "t.csv", index=False)
    return root / "t.csv"


def saved_model_options(path) -> dict:
    model = json.loads((path / "config.json").read_text())["model"]
    return {k: model[k] for k in ("modality_dropout", "missing_token")}


@pytest.mark.parametrize(
    "flags, expected",
    [
        (FLAGS, {"modality_dropout": 0.25, "missing_token": True}),
        ((), {"modality_dropout": 0.0, "missing_token": False}),
    ],
)
def test_fit_records_the_flags(table, tmp_path, capsys, flags, expected):
    rc = main(
        [
            "fit",
            str(table),
            "--target",
            "label",
            "-o",
            str(tmp_path / "m"),
            *flags,
            *FAST,
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert saved_model_options(tmp_path / "m") == expected
    from safetensors.torch import load_file

    has_tokens = any(k.startswith("missing_tokens.") for k in load_file(str(tmp_path / "m" / "model.safetensors")))
    assert has_tokens == expected["missing_token"]


def test_compare_records_the_flags(table, tmp_path, capsys):
    rc = main(
        [
            "compare",
            str(table),
            "--target",
            "label",
            "--fusions",
            "concat",
            "-o",
            str(tmp_path / "cmp"),
            *FLAGS,
            *FAST[2:],
            "--preset",
            "fast",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert (
        results["model_options"] == {"modality_dropout": 0.25, "missing_token": True}
        and "error" not in results["rows"][0]
    )


def test_train_records_the_flags(tmp_path, monkeypatch, capsys):
    import mmfuse.data.registry as reg
    from conftest import synthetic_problem

    ds = synthetic_problem(n=150, seed=1)
    enc = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 8}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 8}}
    sub = lambda a, b: torch.utils.data.Subset(ds, range(a, b))  # noqa: E731
    splits = Splits(sub(0, 100), sub(100, 125), sub(125, 150), DatasetSpec("synthetic", "classification", 3, enc))
    monkeypatch.setattr(reg, "load_dataset", lambda name, data_dir=None, **options: splits)
    rc = main(["train", "synthetic", "-o", str(tmp_path / "m"), *FLAGS, *FAST])
    assert rc == 0, capsys.readouterr().err
    assert saved_model_options(tmp_path / "m") == {"modality_dropout": 0.25, "missing_token": True}


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_a_rate_outside_0_1_is_refused_in_one_line(table, tmp_path, capsys, command):
    rc = main(
        [command, str(table), "--target", "label", "-o", str(tmp_path / "m"), "--modality-dropout", "1.5", *FAST[2:]]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == "mmfuse: error: --modality-dropout must be a probability in [0, 1); got 1.5."
    assert not (tmp_path / "m").exists()


def test_no_missing_token_overrides_a_config_file_that_sets_it(tmp_path, monkeypatch, capsys):
    import mmfuse.data.registry as reg
    from conftest import synthetic_problem

    ds = synthetic_problem(n=150, seed=1)
    enc = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 8}, "b": {"name": "mlp", "in_dim": 7, "out_dim": 8}}
    sub = lambda a, b: torch.utils.data.Subset(ds, range(a, b))  # noqa: E731
    splits = Splits(sub(0, 100), sub(100, 125), sub(125, 150), DatasetSpec("synthetic", "classification", 3, enc))
    monkeypatch.setattr(reg, "load_dataset", lambda name, data_dir=None, **options: splits)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  missing_token: true\n  modality_dropout: 0.1\n")
    for flags, expected in (((), True), (("--no-missing-token",), False)):
        out = tmp_path / f"m{len(flags)}"
        rc = main(["train", "synthetic", "--config", str(cfg), "-o", str(out), *flags, *FAST])
        assert rc == 0, capsys.readouterr().err
        assert saved_model_options(out) == {"modality_dropout": 0.1, "missing_token": expected}
