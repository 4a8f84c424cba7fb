"""``mmfuse predict MODEL_DIR TABLE -o PREDICTIONS``: predictions for every row of a table.

The output (CSV, or Parquet for a ``.parquet`` name) keeps the table's row order, starts with the
table's id column(s) (or ``row``, the 0-based row number, when it has none) and has ``prediction``,
one ``prob_<class>`` column per class (classification / multi-label), ``uncertainty`` (classification;
evidential ``u`` or normalised entropy), ``shapley_<modality>`` with ``--explain``, and ``notes``, which names any
modality that was missing or unreadable for the row (it was then predicted from the other
modalities). ``--backend onnx`` runs the graph written by ``mmfuse export`` (default ``MODEL_DIR/model.onnx``,
else ``--onnx FILE``) through onnxruntime on the same encoded rows: the same frame, within 1e-4. An existing
file is replaced only with ``--overwrite``, and never the input table.
"""

from __future__ import annotations

import argparse

from mmfuse.cli._common import add_overwrite_arg, add_reading_args, load_table_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict every row of a table with a model written by 'mmfuse fit'")
    p.add_argument("model", help="model directory written by 'mmfuse fit'")
    p.add_argument("table", help="CSV / Parquet table with the training columns (the target is not needed)")
    p.add_argument("-o", "--out", required=True, help="predictions file (.csv or .parquet); never the input table")
    add_reading_args(p)
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="apply the temperature fitted on the validation rows at fit (classification)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add shapley_<modality> columns: each modality's exact Shapley value for the prediction",
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="run the model in torch (default) or its ONNX graph in onnxruntime (write it with 'mmfuse export')",
    )
    p.add_argument("--onnx", help="ONNX file of --backend onnx (default: MODEL_DIR/model.onnx)")
    p.add_argument(
        "--missing",
        choices=("zero", "token", "gan", "vae"),
        help="fill an absent modality with zeros, the learned token or a trained imputer (default: the model's own)",
    )
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmfuse.errors import ConfigError
    from mmfuse.files import atomic_open, check_output_file
    from mmfuse.models.imputation import use_missing

    out = check_output_file(args.out, [args.table, args.model] + ([args.onnx] if args.onnx else []), args.overwrite)
    if args.onnx and args.backend != "onnx":
        raise ConfigError("--onnx FILE is read by --backend onnx; add --backend onnx, or drop --onnx.")
    if args.backend == "onnx" and args.explain:
        raise ConfigError(
            "--explain re-runs the model with modalities removed, which needs the torch backend; "
            "drop --explain or --backend onnx."
        )
    if args.missing and args.backend == "onnx":
        raise ConfigError("--missing chooses how torch fills an absent modality; drop it, or --backend onnx.")
    predictor = load_table_model(args.model, args)
    use_missing(predictor.model, args.missing)
    frame = predictor.predict(
        args.table,
        with_ids=True,
        calibrate=args.calibrate,
        explain=args.explain,
        backend=args.backend,
        onnx_path=args.onnx or Path(args.model) / "model.onnx",
    )
    with atomic_open(out) as f:
        if out.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(f, index=False)
        else:
            frame.to_csv(f, index=False)
    flagged = int((frame["notes"] != "").sum())
    print(
        f"{len(frame)} predictions written to {out}"
        + (f"; {flagged} row(s) had a missing or unreadable modality (see the notes column)" if flagged else "")
    )
    return 0
