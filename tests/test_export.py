"""ONNX export (:mod:`mmfuse.export`): the graph agrees with torch within 1e-4, also on rows with absent modalities,
and an export that differs is refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmfuse import FUSIONS, ModelConfig
from mmfuse.errors import ConfigError
from mmfuse.export import TOLERANCE, example_batch, export_bytes, export_onnx, input_schema_of, run_onnx, session
from mmfuse.models.builder import build_model
from mmfuse.models.ensemble import Ensemble, LinearModel

pytest.importorskip("onnxruntime")

ENCODERS = {"a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]}, "b": {"name": "identity", "in_dim": 3}}
SCHEMA = {m: {"shape": [e["in_dim"]], "dtype": "float32"} for m, e in ENCODERS.items()}


def model(fusion: str, task: str = "classification", k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(encoders=ENCODERS, num_outputs=k, fusion=fusion, task=task)).eval()


def ensemble(task: str, k: int) -> Ensemble:
    linear = LinearModel(["a", "b"], 5 + 3 + 2, k)
    linear.mean.normal_()
    linear.lo[:5], linear.hi[:5] = -1.0, 1.0  # clipped standardised columns
    return Ensemble([model("concat", task, k), model("late_mean", task, k), linear], [0.5, 0.3, 0.2], task).eval()


def onnx_vs_torch(m: nn.Module, path) -> float:
    """Max |onnx - torch| on 50 fresh rows, every modality absent in some of them (one row has none)."""
    batch = example_batch(SCHEMA, ["a", "b"], 50, seed=7)
    assert not batch[1].all() and not batch[3].all() and not (batch[1] | batch[3]).all()
    with torch.no_grad():
        expected = m({"a": batch[0], "b": batch[2]}, {"a": batch[1], "b": batch[3]})["prediction"].numpy()
    names = ["input_a", "mask_a", "input_b", "mask_b"]
    got = run_onnx(session(path, threads=1), {n: t.numpy() for n, t in zip(names, batch)}, batch_size=16)
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


@pytest.mark.parametrize("task,k", [("classification", 3), ("regression", 1), ("multilabel", 2)])
@pytest.mark.parametrize("which", ["concat", "late_mean", "ensemble"])
def test_onnx_matches_torch_with_absent_modalities(which, task, k, tmp_path):
    m = ensemble(task, k) if which == "ensemble" else model(which, task, k)
    report = export_onnx(m, SCHEMA, tmp_path / "m.onnx")
    assert (
        report.opset == 17 and report.max_abs_diff <= TOLERANCE and report.bytes == (tmp_path / "m.onnx").stat().st_size
    )
    assert onnx_vs_torch(m, tmp_path / "m.onnx") <= TOLERANCE


@pytest.mark.parametrize("fusion", FUSIONS.list())
def test_every_fusion_exports(fusion):
    """Contract: every registered fusion exports faithfully (no branch on mask values frozen by the tracer)."""
    _, report = export_bytes(model(fusion), SCHEMA)
    assert report.max_abs_diff <= TOLERANCE


class Branchy(nn.Module):
    """Branches in Python on a mask's value: the tracer freezes the branch of its example batch."""

    modalities = ["a"]

    def forward(self, inputs, masks):
        x = inputs["a"]
        return {"prediction": x * 2 if bool(masks["a"].all()) else x}


def test_an_export_that_differs_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"ONNX export of Branchy does not match torch .*torch backend"):
        export_onnx(Branchy(), {"a": {"shape": [3], "dtype": "float32"}}, tmp_path / "b.onnx")
    assert not (tmp_path / "b.onnx").exists()


def test_input_schema_of_older_models():
    assert input_schema_of({"inputs": {"a": {"shape": [2, 3], "dtype": "float32"}}}) == {
        "a": {"shape": [2, 3], "dtype": "float32"}
    }
    assert input_schema_of({"model": {"encoders": ENCODERS}}) == SCHEMA  # derived from mlp/identity in_dim
    cnn = {"model": {"encoders": {**ENCODERS, "img": {"name": "cnn", "in_channels": 1, "out_dim": 8}}}}
    with pytest.raises(ConfigError, match=r"'img' \(cnn\) does not say its input shape"):
        input_schema_of(cnn)
    with pytest.raises(ConfigError, match="lacks modalities"):
        export_bytes(model("concat"), {"a": SCHEMA["a"]})


def test_a_model_that_cannot_be_traced_is_refused_in_one_sentence(capfd):
    """The GRU encoder packs its padded sequences, which the TorchScript exporter cannot translate."""
    gru = build_model(ModelConfig(encoders={"x": {"name": "gru", "in_dim": 2, "out_dim": 8}}, num_outputs=3)).eval()
    with pytest.raises(ConfigError, match=r"MultimodalModel \(ConcatFusion\) cannot be exported to ONNX opset 17"):
        export_bytes(gru, {"x": {"shape": [6, 2], "dtype": "float32"}})
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""  # the exporter's graph dump and C++ warnings are not shown
