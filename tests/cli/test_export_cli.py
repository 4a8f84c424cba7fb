"""``mmfuse export`` and ``mmfuse predict --backend onnx``: the ONNX graph of a fitted table model predicts the same
rows, in the same order, with the same probabilities (within 1e-4) as torch; the model folder stays valid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmfuse.cli import main
from mmfuse.predictor import MultimodalPredictor

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A concat model fitted for one epoch on 50 rows (a numeric group and a number + category modality), and a
    15-row test table with missing cells and an id column."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    n = 65
    y = rng.integers(0, 3, n)
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "size": rng.normal(size=n),
            "kind": rng.choice(["a", "b"], n),
            "label": [f"c{v}" for v in y],
            **{f"f_{j}": rng.normal(size=n) + (1.5 * y if j == 0 else 0.0) for j in range(4)},
        }
    )
    df.iloc[:50].to_csv(root / "train.csv", index=False)
    test = df.iloc[50:].drop(columns="label").reset_index(drop=True)
    test.loc[2, [f"f_{j}" for j in range(4)]] = np.nan  # a row without the numeric group
    test.loc[4, ["size", "kind"]] = [np.nan, None]
    test.to_csv(root / "test.csv", index=False)
    argv = ["fit", root / "train.csv", "--target", "label", "--fusion", "concat", "--max-epochs", "1"]
    assert main([str(a) for a in argv + ["--no-progress", "--cache-dir", root / "c", "-o", root / "m"]]) == 0
    return root


def test_export_then_predict_with_both_backends(fitted, capsys):
    root = fitted
    assert json.loads((root / "m" / "config.json").read_text())["inputs"] == {
        "f": {"shape": [4], "dtype": "float32"},
        "tabular": {"shape": [4], "dtype": "float32"},
    }
    capsys.readouterr()
    assert main(["export", str(root / "m")]) == 0
    out = capsys.readouterr().out
    assert "opset 17" in out and "input_f (B, 4) float32 + mask_f" in out and "max |onnx - torch| = " in out
    assert "KiB" in out and (root / "m" / "model.onnx").is_file()
    assert "model.onnx" in json.loads((root / "m" / "mmfuse.json").read_text())["extras"]
    MultimodalPredictor.load(root / "m")  # the folder's manifest still checks out
    for backend in ("torch", "onnx"):
        argv = ["predict", root / "m", root / "test.csv", "-o", root / f"{backend}.csv", "--backend", backend]
        assert main([str(a) for a in argv]) == 0
    a, b = pd.read_csv(root / "torch.csv"), pd.read_csv(root / "onnx.csv")
    assert list(a.columns) == list(b.columns) and list(a["id"]) == list(b["id"]) == [f"r{i}" for i in range(50, 65)]
    probs = [c for c in a.columns if c.startswith("prob_")]
    assert len(probs) == 3 and np.abs(a[probs].to_numpy() - b[probs].to_numpy()).max() <= 1e-4
    assert a["prediction"].equals(b["prediction"]) and a["notes"].equals(b["notes"])  # empty notes read as NaN
    assert isinstance(a.loc[2, "notes"], str)  # the row without its numeric group was predicted by both


def test_export_to_a_file_and_refusals(fitted, capsys):
    root = fitted
    assert main(["export", str(root / "m"), "-o", str(root / "copy.onnx"), "--opset", "18"]) == 0
    assert "opset 18" in capsys.readouterr().out and (root / "copy.onnx").is_file()
    assert main(["export", str(root / "m"), "-o", str(root / "copy.onnx")]) == 2  # exists: needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(root / "m"), "-o", str(root / "m" / "config.json")]) == 2
    assert "a file of the model itself" in capsys.readouterr().err
    base = ["predict", str(root / "m"), str(root / "test.csv"), "-o", str(root / "x.csv"), "--backend", "onnx"]
    assert main([*base, "--explain"]) == 2
    assert "--explain" in capsys.readouterr().err
    assert main([*base, "--onnx", str(root / "absent.onnx")]) == 2
    err = capsys.readouterr().err
    assert "No ONNX file at" in err and "mmfuse export" in err and err.count("\n") == 1
    assert main([*base, "--onnx", str(root / "copy.onnx")]) == 0  # an exported file elsewhere
