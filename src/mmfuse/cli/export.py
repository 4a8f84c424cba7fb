"""``mmfuse export MODEL_DIR [-o FILE] [--opset N]``: the model as an ONNX graph, checked against torch.

The graph takes one input and one presence mask per modality (``input_<m>``, ``mask_<m>``, batch axis dynamic) and
returns ``prediction``; for a table model from ``fit`` the inputs are the encoded rows (numeric columns, cached
frozen-encoder embeddings), whose shapes the model directory records (see :mod:`mmfuse.export`). The default output,
``MODEL_DIR/model.onnx``, becomes one of the folder's listed extra files (refreshed on every run), so the folder
stays a valid model; ``mmfuse predict MODEL_DIR TABLE --backend onnx`` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmfuse.cli._common import add_overwrite_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (fusion and heads on its inputs), checked against torch")
    p.add_argument("model", help="model directory written by 'mmfuse fit' or 'mmfuse train'")
    p.add_argument("-o", "--out", help="ONNX file to write (default: MODEL_DIR/model.onnx, listed in its manifest)")
    p.add_argument("--opset", type=int, help="ONNX opset of the graph (default 17, mmfuse.export.DEFAULT_OPSET)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmfuse.errors import ConfigError
    from mmfuse.export import DEFAULT_OPSET, export_bytes, input_schema_of
    from mmfuse.files import MANIFEST, add_files, atomic_write, check_output_file, manifest_kind, read_manifest
    from mmfuse.training.serialization import load_model_dir

    out = Path(args.out) if args.out else Path(args.model) / "model.onnx"
    folder = manifest_kind(out.parent) is not None  # inside an mmfuse folder: one of its extra files
    if folder:
        core = set(read_manifest(out.parent, manifest_kind(out.parent) or "model", verify=False).get("files", {}))
        if out.name in core | {MANIFEST}:
            raise ConfigError(f"-o {str(out)!r} is a file of the model itself; give another name such as model.onnx.")
    elif args.out:
        check_output_file(out, [args.model], args.overwrite)
    model, meta = load_model_dir(args.model)
    data, report = export_bytes(model, input_schema_of(meta, repr(str(args.model))), args.opset or DEFAULT_OPSET)
    if folder:
        add_files(out.parent, {out.name: data})
    else:
        atomic_write(out, data)
    inputs = ", ".join(
        f"input_{m} (B, {', '.join(map(str, v['shape']))}) {v['dtype']} + mask_{m}" for m, v in report.inputs.items()
    )
    print(f"exported with {report.exporter}, opset {report.opset}")
    print(f"inputs: {inputs}; output: prediction")
    print(
        f"check: max |onnx - torch| = {report.max_abs_diff:.2e} over {report.check_rows} random rows, some with "
        f"absent modalities"
    )
    print(f"written to {out} ({report.bytes / 1024:.0f} KiB)")
    return 0
