"""ONNX export of a trained model, checked against torch before it is written.

The graph covers what the model's ``forward(inputs, masks)`` computes from its inputs: for a table model from
``mmfuse fit`` these are feature vectors (numeric columns, cached frozen-encoder embeddings), so the graph holds the
trainable encoders, the fusion and the heads; where every encoder exports (an MLP, a CNN on pixels), it is the
whole model. Its signature is flat, one input and one presence mask per modality in the model's (sorted) order::

    input_<m>: (B, *shape_m) of dtype_m        mask_<m>: (B,) bool, True where the row has modality m
    -> prediction: (B, num_outputs)            # what forward returns under "prediction" (logits / log-probs / values)

with a dynamic batch axis ``B``. The shapes and dtypes come from the model directory's *input schema*
(``config.json`` -> ``inputs``: ``{m: {"shape": [...], "dtype": "float32"}}``, recorded by ``fit``; for an older
model, derived from the ``in_dim`` of mlp/identity encoders).

Exporter: the TorchScript exporter of ``torch.onnx.export(..., dynamo=False)`` at opset 17 (the default here). It
*traces* one forward pass, so a Python branch on a tensor's value would be frozen at the example's outcome; every
export is therefore checked by running onnxruntime and torch on a fresh random batch of another size in which some
rows lack each modality (and one row lacks all), and refused when they differ by more than ``tolerance``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError, DataError

DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # max |onnx - torch| of the check
FEATURE_ENCODERS = ("mlp", "identity")  # encoders whose config gives the input shape ((in_dim,), float32)
_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(bool)": np.bool_,
    "tensor(int64)": np.int64,
    "tensor(double)": np.float64,
}
InputSchema = dict[str, dict[str, Any]]  # {modality: {"shape": [dims without batch], "dtype": "float32"}}


class FlatModel(nn.Module):
    """``(input_m1, mask_m1, input_m2, mask_m2, ...) -> prediction``: the model with one tensor per argument.

    Args:
        model: a model following the contract (``forward(inputs, masks)["prediction"]``).
        modalities: the order of the arguments (the model's ``modalities``).

    Inputs:
        ``2 M`` tensors: ``(B, *shape_m)`` then ``(B,)`` bool for each modality in order.

    Returns:
        ``(B, num_outputs)``.
    """

    def __init__(self, model: nn.Module, modalities: Sequence[str]) -> None:
        super().__init__()
        self.model, self.modalities = model, list(modalities)

    def forward(self, *flat: Tensor) -> Tensor:
        inputs = {m: flat[2 * i] for i, m in enumerate(self.modalities)}
        masks = {m: flat[2 * i + 1] for i, m in enumerate(self.modalities)}
        return self.model(inputs, masks)["prediction"]


@dataclass
class ExportReport:
    """What :func:`export_bytes` did."""

    opset: int
    exporter: str  # "torch.onnx TorchScript (dynamo=False)"
    inputs: InputSchema
    max_abs_diff: float  # of the check, over every output entry
    check_rows: int
    bytes: int
    seconds: float


def model_name(model: nn.Module) -> str:
    fusion = getattr(model, "fusion", None)
    return type(model).__name__ + (f" ({type(fusion).__name__})" if fusion is not None else "")


def input_schema_of(meta: Mapping[str, Any], where: str = "the model") -> InputSchema:
    """The input schema of a saved model's ``config.json`` (``meta``): its ``inputs`` when ``fit`` recorded them, else
    ``(in_dim,)`` float32 for every mlp/identity encoder; refused in one sentence when an encoder's input is unknown."""
    if isinstance(meta.get("inputs"), Mapping):
        return {
            str(m): {"shape": [int(d) for d in v["shape"]], "dtype": str(v["dtype"])} for m, v in meta["inputs"].items()
        }
    encoders = dict(meta.get("model", {}).get("encoders", {}))
    other = sorted(m for m, e in encoders.items() if e.get("name") not in FEATURE_ENCODERS or "in_dim" not in e)
    if other or not encoders:
        raise ConfigError(
            f"{where} records no input schema and its encoder for {other[0] if other else 'every modality'!r} "
            f"({encoders.get(other[0], {}).get('name') if other else 'none'}) does not say its input shape; "
            "fit it again with this mmfuse (which records the shapes) to export it."
        )
    return {m: {"shape": [int(e["in_dim"])], "dtype": "float32"} for m, e in sorted(encoders.items())}


def _modalities(model: nn.Module, schema: Mapping[str, Any]) -> list[str]:
    mods = list(getattr(model, "modalities", []))
    lacking = [m for m in mods if m not in schema]
    if not mods or lacking:
        raise ConfigError(
            f"The input schema {sorted(schema)} lacks modalities {lacking or '(the model names none)'} of "
            f"{model_name(model)}; give one entry per modality of the model."
        )
    return mods


def example_batch(schema: Mapping[str, Any], modalities: Sequence[str], n: int, seed: int = 0) -> list[Tensor]:
    """Flat ``[input, mask, ...]`` of ``n`` random rows: floats ~ N(0, 1), integers 0; with ``n >= 3`` row 1 lacks
    every modality and each other row lacks each modality with probability 1/3 (so masks take both values)."""
    g = torch.Generator().manual_seed(seed)
    flat = []
    for i, m in enumerate(modalities):
        shape, dtype = [n, *schema[m]["shape"]], getattr(torch, str(schema[m]["dtype"]))
        x = torch.randn(shape, generator=g).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
        mask = torch.rand(n, generator=g) > 1 / 3
        if n >= 3:
            mask[0], mask[1], mask[2 + i % (n - 2)] = True, False, False
        flat += [x, mask]
    return flat


@contextlib.contextmanager
def _quiet_output() -> Iterator[None]:
    """File descriptors 1 and 2 to /dev/null: the exporter's C++ side prints shape-inference warnings, and on a
    failure its whole graph, there (the caller turns a failure into one sentence)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        for fd, copy in ((1, saved[0]), (2, saved[1])):
            os.dup2(copy, fd)
            os.close(copy)


def _checks(schema: Mapping[str, Any], modalities: Sequence[str], rows: int) -> list[list[Tensor]]:
    """The check's batches: ``rows`` rows with mixed masks, 7 rows with every modality, 1 row with none."""
    mixed, full, empty = (example_batch(schema, modalities, n, seed) for n, seed in ((rows, 1), (7, 2), (1, 3)))
    full[1::2] = [torch.ones_like(t) for t in full[1::2]]
    empty[1::2] = [torch.zeros_like(t) for t in empty[1::2]]
    return [mixed, full, empty]


def export_bytes(
    model: nn.Module,
    input_schema: Mapping[str, Any],
    opset: int = DEFAULT_OPSET,
    tolerance: float = TOLERANCE,
    check_rows: int = 37,
) -> tuple[bytes, ExportReport]:
    """The ONNX file of ``model`` (module docstring) and its :class:`ExportReport`, after the check.

    Raises:
        ConfigError: one sentence naming the model when it cannot be exported or its export differs from torch.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("Export needs onnx and onnxruntime; pip install 'mmfuse[export]'.") from None
    t0 = time.perf_counter()
    mods = _modalities(model, input_schema)
    schema = {m: dict(input_schema[m]) for m in mods}
    flat = FlatModel(model, mods).eval()
    if getattr(model, "tasks", None):  # a multi-task model predicts a dict of tasks
        raise ConfigError(
            f"{model_name(model)} predicts several tasks; export covers single-task models, so predict it with torch."
        )
    names = [n for m in mods for n in (f"input_{m}", f"mask_{m}")]
    try:
        # with gradients on, nn.TransformerEncoderLayer takes its traceable path, not the fused fast path
        # (aten::_transformer_encoder_layer_fwd) that has no ONNX form
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp, _quiet_output():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                flat,
                tuple(example_batch(schema, mods, 5, seed=0)),
                f"{tmp}/model.onnx",
                dynamo=False,
                opset_version=int(opset),
                input_names=names,
                output_names=["prediction"],
                dynamic_axes={**{n: {0: "batch"} for n in names}, "prediction": {0: "batch"}},
            )
            data = Path(f"{tmp}/model.onnx").read_bytes()
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types for an unsupported operator
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{model_name(model)} cannot be exported to ONNX opset {opset} ({type(exc).__name__}: {first}); "
            "one of its encoders or operators has no ONNX form there: try another --opset, or predict with torch."
        ) from None
    try:
        sess = session(data)
        used = {i.name for i in sess.get_inputs()}  # an input the graph never reads is not one of its inputs
        diff = 0.0
        for check in _checks(schema, mods, check_rows):
            with torch.no_grad():
                expected = flat(*check).float().numpy()
            got = run_onnx(sess, {n: t.numpy() for n, t in zip(names, check) if n in used})
            diff = max(diff, float(np.max(np.abs(got - expected))) if expected.size else 0.0)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
        diff, detail = float("inf"), f"onnxruntime failed: {str(exc).strip().splitlines()[0][:120]}"
    else:
        detail = f"max |onnx - torch| = {diff:.2e} > {tolerance:g}"
    if not diff <= tolerance:  # also catches NaN
        raise ConfigError(
            f"The ONNX export of {model_name(model)} does not match torch on the check's rows, some with absent "
            f"modalities ({detail}); keep predicting with the torch backend, or report the fusion method so its "
            "mask handling is made traceable."
        )
    report = ExportReport(
        int(opset), "torch.onnx TorchScript (dynamo=False)", schema, diff, check_rows + 8, len(data), 0.0
    )
    report.seconds = time.perf_counter() - t0
    return data, report


def export_onnx(
    model: nn.Module, input_schema: Mapping[str, Any], path: str | Path, opset: int = DEFAULT_OPSET
) -> ExportReport:
    """Export ``model`` to ONNX file ``path`` (written atomically, :func:`mmfuse.files.atomic_write`) after the check
    of :func:`export_bytes`."""
    from mmfuse.files import atomic_write

    data, report = export_bytes(model, input_schema, opset)
    atomic_write(path, data)
    return report


def session(model: bytes | str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU ``InferenceSession`` of an ONNX file or its bytes (``threads``: intra-op threads)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def run_onnx(sess: Any, feeds: Mapping[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
    """``prediction`` of session ``sess`` over ``feeds`` (``{input name: (N, ...) array}``), ``batch_size`` rows at a
    time."""
    n = len(next(iter(feeds.values())))
    outs = [
        sess.run(["prediction"], {k: v[i : i + batch_size] for k, v in feeds.items()})[0]
        for i in range(0, n, batch_size)
    ]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), np.float32)


def onnx_feeds(
    sess: Any, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor], where: str = "the ONNX file"
) -> dict[str, np.ndarray]:
    """The feeds of ``sess`` from a contract batch (``inputs``/``masks`` by modality), checked against the graph's
    inputs (names, shapes, dtypes): a graph exported from another model is refused in one sentence."""
    feeds: dict[str, np.ndarray] = {}
    for spec in sess.get_inputs():
        kind, _, m = spec.name.partition("_")
        src = inputs if kind == "input" else masks
        if m not in src:
            raise DataError(
                f"{where} expects modality {m!r}, which this model's rows do not have; export this model again "
                "with 'mmfuse export'."
            )
        x: np.ndarray = src[m].numpy().astype(_NUMPY_TYPES.get(spec.type, np.float32))
        want = list(spec.shape[1:])
        if list(x.shape[1:]) != want:
            raise DataError(
                f"{where} expects {spec.name} of shape (B, {', '.join(map(str, want))}) but the rows have "
                f"{tuple(x.shape[1:])}; export this model again with 'mmfuse export'."
            )
        feeds[spec.name] = x
    return feeds


def predict_onnx(path: str | Path | None, dataset: Any, model: nn.Module | None = None, batch_size: int = 256) -> Any:
    """:class:`~mmfuse.evaluation.predict.Predictions` of ONNX file ``path`` over a contract dataset (``inputs``,
    ``masks``, ``target`` tensors, e.g. a table's encoded rows), through onnxruntime.

    ``model`` (the torch model the file was exported from) is only consulted to refuse what the graph cannot give:
    an evidential fusion's uncertainty ``u``, which the torch backend reports.
    """
    from mmfuse.evaluation.predict import Predictions
    from mmfuse.fusion.evidential import produces_evidence

    if path is None:
        raise ConfigError("backend='onnx' needs onnx_path, the file written by 'mmfuse export MODEL_DIR'.")
    fusion = getattr(model, "fusion", None)
    if fusion is not None and produces_evidence(fusion):
        raise ConfigError(
            "This model's evidential fusion reports its uncertainty u beside the prediction, which the ONNX graph "
            "does not carry; predict it with the torch backend."
        )
    where = repr(str(path))
    if not Path(path).is_file():
        raise DataError(f"No ONNX file at {where}; write it with 'mmfuse export MODEL_DIR' (or pass --onnx FILE).")
    try:
        sess = session(path)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a file it cannot read
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{where} is not an ONNX model onnxruntime can run ({first}); write it again with 'mmfuse export'."
        ) from None
    feeds = onnx_feeds(sess, dataset.inputs, dataset.masks, where)
    t0 = time.perf_counter()
    prediction = run_onnx(sess, feeds, batch_size)
    return Predictions(
        prediction=prediction,
        target=dataset.target.numpy(),
        masks={m: v.numpy().astype(bool) for m, v in dataset.masks.items()},
        seconds=time.perf_counter() - t0,
    )
