"""``MultimodalPredictor``: fit on a table, predict, evaluate, save and load (the API behind ``mmfuse fit``).

    >>> p = MultimodalPredictor(target="label", fusion="concat").fit("train.csv")   # doctest: +SKIP
    >>> p.evaluate("test.csv")["metrics"]                                            # doctest: +SKIP
    >>> p.save("model/"); MultimodalPredictor.load("model/").predict("new.csv")       # doctest: +SKIP

The table's columns become modalities (:mod:`mmfuse.tabular.schema`); frozen encoders' outputs are
cached on disk (:mod:`mmfuse.tabular.cache`); training is :func:`mmfuse.training.fit` with early
stopping on a validation part (``val_table``, else a seeded, stratified ``val_fraction`` of the rows).

A model directory holds ``model.safetensors`` (weights), ``config.json`` (ModelConfig, TrainConfig,
history), ``schema.json``, ``labels.json`` (label encoder, category vocabularies, standardisation
statistics, audio/sequence settings), ``metrics.json`` and ``summary.txt``; it is written by ONE
atomic directory write and read without unpickling anything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.config import ModelConfig, TrainConfig, from_dict, load_mapping
from mmfuse.data.base import DatasetSpec, Splits
from mmfuse.errors import ConfigError, DataError
from mmfuse.tabular import EmbeddingCache, Schema, TableData, TablePipeline, read_table, resolve_schema
from mmfuse.tabular.readers import Issue, Limits
from mmfuse.tasks import task_kind

TRAIN_DEFAULTS = {"max_epochs": 20, "batch_size": 64, "patience": 4}  # TrainConfig fields the table API changes
FILES = ("model.safetensors", "config.json", "schema.json", "labels.json", "metrics.json", "summary.txt")


def _table(table: Any) -> tuple[Any, Path | None]:
    """``(frame with positions 0..N-1 as index, folder of the table file or None)``; a table with no row is refused."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        df, folder, name = table.reset_index(drop=True), None, "The DataFrame"
    else:
        df, folder, name = (
            read_table(table).reset_index(drop=True),
            Path(table).resolve().parent,
            f"Table {str(table)!r}",
        )
    if len(df) == 0:
        raise DataError(f"{name} has no data rows (only a header); give a table with at least one row.")
    return df, folder


def split_rows(y: list[Any] | None, n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n`` rows into ``(rest, held_out)``, stratified by ``y`` when given (each class keeps >= 1 row
    in ``rest``)."""
    rng = np.random.default_rng(seed)
    if y is None:
        perm = rng.permutation(n)
        k = max(1, int(round(fraction * n)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    held = []
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(y):
        groups.setdefault(str(v), []).append(i)
    for key in sorted(groups):
        idx = rng.permutation(groups[key])
        k = int(round(fraction * len(idx))) if len(idx) > 1 else 0
        held += idx[:k].tolist()
    held_arr = np.sort(np.asarray(held, np.int64))
    return np.setdiff1d(np.arange(n), held_arr), held_arr


class MultimodalPredictor:
    """Estimator-like multimodal model on a table.

    Args:
        target: column to predict.
        fusion: registered fusion method (``mmfuse list fusions``).
        schema: schema file path or mapping overriding the inferred one (see :mod:`mmfuse.tabular.schema`).
        base_dir: folder that relative paths start from (default: the table file's folder; for a DataFrame, the
            working folder).
        allow_outside: read paths that leave that folder (symlinks followed). Default: refused (as the row's
            issue) for table files and with ``base_dir``, so a table cannot make mmfuse read any file the user
            can; allowed for a DataFrame without ``base_dir``, whose paths the calling code wrote.
        time_limit: seconds of training; the best checkpoint so far is kept.
        val_fraction: validation share carved from the table when no ``val_table`` is given.
        drop_missing_target: leave out (and report) rows without a target instead of refusing the table.
        cache_dir: embedding-cache folder (default ``$MMFUSE_CACHE_DIR`` or ``~/.cache/mmfuse/embeddings``).
        use_cache: ``False`` recomputes every embedding.
        train: extra :class:`~mmfuse.config.TrainConfig` fields (``max_epochs``, ``batch_size``, ``lr``, ...).
        model: extra :class:`~mmfuse.config.ModelConfig` fields (``hidden``, ``modality_dropout``, ...).
        limits: :class:`~mmfuse.tabular.readers.Limits` (or its fields as a mapping): bytes per file, pixels per
            image; a cell beyond them is that row's issue.
    """

    def __init__(
        self,
        target: str | None = None,
        fusion: str = "concat",
        schema: str | Path | dict[str, Any] | None = None,
        base_dir: str | Path | None = None,
        allow_outside: bool = False,
        time_limit: float | None = None,
        val_fraction: float = 0.15,
        drop_missing_target: bool = False,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: bool = True,
        seed: int = 0,
        train: dict[str, Any] | TrainConfig | None = None,
        model: dict[str, Any] | None = None,
        limits: Limits | dict[str, Any] | None = None,
    ) -> None:
        self.target, self.fusion, self.schema_override = target, fusion, schema
        self.base_dir, self.allow_outside, self.time_limit, self.val_fraction = (
            base_dir,
            allow_outside,
            time_limit,
            val_fraction,
        )
        self.drop_missing_target, self.progress, self.seed = drop_missing_target, progress, seed
        self.cache = EmbeddingCache(cache_dir, enabled=use_cache)
        self.train_options = train.to_dict() if isinstance(train, TrainConfig) else dict(train or {})
        self.model_options = dict(model or {})
        self.limits = (
            limits
            if isinstance(limits, Limits)
            else Limits(**{k: v for k, v in dict(limits or {}).items() if v is not None})
        )
        self.pipeline: TablePipeline | None = None
        self.model = None
        self.meta: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.fit_issues: list[Issue] = []

    # ------------------------------------------------------------------ preparation
    def _pipeline_for(self, df: Any, folder: Path | None) -> TablePipeline:
        override = self.schema_override
        if isinstance(override, (str, Path)):
            override = load_mapping(override)
        schema = resolve_schema(df, self.target, override)
        pipe = TablePipeline(schema, cache=self.cache, progress=self.progress, limits=self.limits)
        self._set_base(folder, pipe)
        return pipe

    def infer_schema(self, table: Any) -> Schema:
        """The schema ``fit`` would use on ``table`` (inferred, then overridden by the schema file)."""
        df, folder = _table(table)
        return self._pipeline_for(df, folder).schema

    def prepare(
        self, table: Any, val_table: Any = None, test_table: Any = None, test_fraction: float = 0.0
    ) -> tuple[Splits, dict[str, TableData]]:
        """Resolve the schema, split, fit the preprocessing on training rows and encode every part.

        Returns:
            ``(Splits, {"train": TableData, "val": ..., "test": ...})`` (test empty when neither ``test_table``
            nor ``test_fraction`` is given).
        """
        from mmfuse.registry import FUSIONS

        FUSIONS.get(self.fusion)  # an unknown name fails now, with the valid ones listed
        df, folder = _table(table)
        self.pipeline = pipe = self._pipeline_for(df, folder)
        keep, self.fit_issues = pipe.check_target(df, self.drop_missing_target)
        strat = [str(v) for v in df[pipe.schema.target].iloc[keep]] if pipe.kind.single_label else None
        parts: dict[str, tuple[Any, np.ndarray, Path | None]] = {}
        rest = keep
        if test_table is None and test_fraction > 0:
            a, b = split_rows(strat, len(keep), test_fraction, self.seed + 1)
            parts["test"], rest = (df, keep[b], folder), keep[a]
            strat = None if strat is None else [strat[i] for i in a]
        if val_table is None:
            a, b = split_rows(strat, len(rest), self.val_fraction, self.seed)
            parts["train"], parts["val"] = (df, rest[a], folder), (df, rest[b], folder)
        else:
            vdf, vfolder = _table(val_table)
            vkeep, vissues = pipe.check_target(vdf, self.drop_missing_target)
            self.fit_issues += vissues
            parts["train"], parts["val"] = (df, rest, folder), (vdf, vkeep, vfolder)
        if test_table is not None:
            tdf, tfolder = _table(test_table)
            parts["test"] = (tdf, pipe.check_target(tdf, self.drop_missing_target)[0], tfolder)
        pipe.fit(parts["train"][0], parts["train"][1])
        data = {}
        for name, (d, rows, where) in parts.items():
            self._set_base(where)
            data[name] = pipe.transform(d, rows)
        for name in ("train", "val"):
            if len(data[name].rows) == 0:
                raise DataError(f"The {name} part has no row; give a larger table (or a --val-table).")
        _refuse_unusable_modalities(data["train"], pipe)
        task = pipe.schema.task
        classes = pipe.target_state.get("classes", [])
        spec = DatasetSpec(
            name=pipe.schema.target,
            task=task,
            num_outputs=len(classes) if classes else 1,
            encoders=pipe.encoders_config(),
            class_names=list(classes),
            metric=pipe.kind.main_metric,
        )
        empty = data.get("test", data["val"]).dataset
        return Splits(
            data["train"].dataset, data["val"].dataset, data["test"].dataset if "test" in data else empty, spec
        ), data

    def model_config(self, spec: DatasetSpec, fusion: str | None = None) -> ModelConfig:
        base = {
            "encoders": spec.encoders,
            "num_outputs": spec.num_outputs,
            "task": spec.task,
            "fusion": fusion or self.fusion,
        }
        return from_dict(ModelConfig, {**base, **self.model_options})

    def train_config(self) -> TrainConfig:
        base = {**TRAIN_DEFAULTS, "seed": self.seed, "progress_bar": self.progress, "max_time": self.time_limit}
        return from_dict(TrainConfig, {**base, **{k: v for k, v in self.train_options.items() if v is not None}})

    # ------------------------------------------------------------------ fit / predict
    def fit(self, table: Any, val_table: Any = None, checkpoint_dir: str | Path | None = None) -> MultimodalPredictor:
        """Train on ``table`` (a DataFrame or a CSV/Parquet path); validation on ``val_table`` or a carved part.

        Training on several processes (``train={"devices": 2, "strategy": "ddp"}``) needs ``checkpoint_dir``, a
        path every process can reach (the CLI passes the output folder; the checkpoints live beside it); every
        process returns a trained predictor, and ``meta["global_rank"]`` says which one should save.
        """
        from mmfuse.training.fit import fit, validation_temperature

        t0 = time.perf_counter()
        splits, data = self.prepare(table, val_table)
        encode_s = time.perf_counter() - t0
        model_cfg, train_cfg = self.model_config(splits.spec), self.train_config()
        result = fit(model_cfg, train_cfg, splits.train, splits.val, checkpoint_dir=checkpoint_dir)
        self.model = result.model
        self.meta = {
            "model": result.model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "history": result.history,
            "train_time_s": result.train_time_s,
            "encode_time_s": encode_s,
            "best_val": result.best_score,
            "epochs": result.epochs_run,
            "rows": {k: int(len(v.rows)) for k, v in data.items()},
            "kind": "mmfuse-table-predictor",
            "global_rank": result.global_rank,
        }
        if task_kind(splits.spec.task).single_label:  # temperature scaling on the validation rows (Guo et al. 2017)
            self.meta["calibration"] = validation_temperature(self.model, data["val"].dataset)
        val = self._report(data["val"], contributions=False)
        self.metrics = {
            "validation": val["metrics"],
            "rows": self.meta["rows"],
            "cache": {"hits": self.cache.hits, "misses": self.cache.misses, "repaired": self.cache.repaired},
            "issues": {
                "train": data["train"].issue_counts(),
                "val": data["val"].issue_counts(),
                "target": len(self.fit_issues),
            },
            "issue_log": [
                it.to_dict()
                for it in sorted(
                    self.fit_issues + data["train"].issues + data["val"].issues, key=lambda it: (it.row, it.column)
                )[:200]
            ],
        }
        return self

    def _set_base(self, folder: Path | None, pipe: TablePipeline | None = None) -> None:
        """Relative paths start at ``base_dir`` when given, else at the folder of the table being read (``folder``,
        ``None`` for a DataFrame); the path policy of the class docstring follows."""
        pipe = pipe or self.pipeline
        if pipe is None:
            return
        pipe.base_dir = Path(self.base_dir) if self.base_dir is not None else (folder or Path.cwd())
        pipe.restrict = not self.allow_outside and (self.base_dir is not None or folder is not None)

    def _require(self) -> TablePipeline:
        if self.model is None or self.pipeline is None:
            raise ConfigError(
                "This predictor is not trained; call fit(...) or MultimodalPredictor.load(model_dir) first."
            )
        return self.pipeline

    @property
    def temperature(self) -> float:
        """The validation-fitted temperature (1.0 for a model saved without one, or a non-classifier)."""
        return float(self.meta.get("calibration", {}).get("temperature", 1.0))

    def _predictions(self, data: TableData) -> Any:
        from mmfuse.evaluation.predict import predict

        return predict(self.model, data.dataset, batch_size=256)

    def _outputs(self, data: TableData, calibrate: bool = False, pred: Any = None) -> np.ndarray:
        """Probabilities ``(N, C)`` (classification/multilabel) or values ``(N, 1)`` in target units; ``calibrate``
        divides classification logits by the validation-fitted temperature first."""
        pred = (pred if pred is not None else self._predictions(data)).prediction
        pipe = self._require()
        return _to_outputs(pred, pipe.schema.task, pipe, self.temperature if calibrate else 1.0)

    def predict(self, table: Any, with_ids: bool = False, calibrate: bool = False, explain: bool = False) -> Any:
        """A DataFrame with one row per table row, in the table's order: ``prediction``, ``prob_<class>`` columns
        (classification / multi-label), ``uncertainty`` (classification, in [0, 1]: an evidential fusion's
        ``u = K / S``, else the normalised predictive entropy) and ``notes`` naming any modality that was missing
        or unreadable (or repaired).

        ``calibrate`` applies the temperature fitted on the validation rows at ``fit`` (it changes the
        probabilities and the entropy, never the predicted class). ``explain`` adds ``shapley_<modality>``: each
        modality's exact Shapley value for the predicted class's probability (regression: the value), summing
        per row to the prediction with every modality minus the prediction with none
        (:mod:`mmfuse.evaluation.attribution`).

        A DataFrame's own index is kept (``df["pred"] = p.predict(df)["prediction"]`` lands on the right rows,
        whatever the index). ``with_ids`` puts the table's id columns first (the columns the schema reads as
        identifiers), or ``row`` (0-based position, header excluded) when it has none: what the CLI writes.
        """
        import pandas as pd

        pipe = self._require()
        index = table.index if isinstance(table, pd.DataFrame) else None
        df, folder = _table(table)
        self._set_base(folder)
        data = pipe.transform(df, with_target=False)
        pred = self._predictions(data)
        out = self._outputs(data, calibrate, pred)
        kind, classes = pipe.kind, pipe.target_state.get("classes", [])
        frame = pd.DataFrame(index=df.index)
        if kind.target == "values":
            frame["prediction"] = out[:, 0]
        elif kind.target == "multi_hot":
            frame["prediction"] = [json.dumps([c for c, p in zip(classes, row) if p > 0.5]) for row in out]
        else:
            frame["prediction"] = [_label_value(classes[k]) for k in out.argmax(1)]
        for k, c in enumerate(classes):
            frame[f"prob_{c}"] = out[:, k]
        if kind.single_label:
            from mmfuse.training.calibration import normalised_entropy

            frame["uncertainty"] = (
                pred.evidential_uncertainty if pred.evidential_uncertainty is not None else normalised_entropy(out)
            )
        if explain:
            from mmfuse.evaluation.attribution import modality_shapley

            phi, mods, _ = modality_shapley(self.model, data.dataset, kind.name)
            scale = pipe.target_state.get("std", 1.0)  # regression: in the target's units (1.0 for other kinds)
            for j, m in enumerate(mods):
                frame[f"shapley_{m}"] = phi[:, j] * scale
        frame["notes"] = data.notes(len(df))
        if with_ids:
            ids = [c for c, k in pipe.schema.columns.items() if k == "id" and c in df.columns]
            front = df[ids].copy() if ids else pd.DataFrame({"row": np.arange(len(df))})
            frame = pd.concat(
                [front.reset_index(drop=True), frame.drop(columns=[c for c in ids if c in frame.columns])], axis=1
            )
        if index is not None:
            frame.index = index
        return frame

    def labelled(self, table: Any) -> tuple[TableData, int, int]:
        """The rows of ``table`` that have a target, encoded as the model's contract dataset (``data.dataset``, what
        :mod:`mmfuse.evaluation` measures), with the issue log; also the table's row count and rows without target."""
        pipe = self._require()
        df, folder = _table(table)
        self._set_base(folder)
        keep, dropped = pipe.check_target(df, self.drop_missing_target)
        data = pipe.transform(df, keep)
        data.issues = sorted(dropped + data.issues, key=lambda it: (it.row, it.column))
        return data, len(df), len(dropped)

    def evaluate(self, table: Any) -> dict[str, Any]:
        """Metrics, confusion matrix (classification), per-modality contribution and the issue report on ``table``."""
        pipe = self._require()
        data, n_rows, n_dropped = self.labelled(table)
        keep = data.rows
        report = self._report(data)
        report["rows"] = {"table": int(n_rows), "evaluated": int(len(keep)), "target_missing": n_dropped}
        if len(keep):
            from mmfuse.evaluation.attribution import modality_shapley, shapley_summary

            phi, mods, _ = modality_shapley(self.model, data.dataset, pipe.schema.task)
            report["shapley"] = shapley_summary(phi, mods)
        return report

    def _report(self, data: TableData, contributions: bool = True) -> dict[str, Any]:
        from mmfuse.evaluation.predict import masks_transform, predict
        from mmfuse.evaluation.report import mean_modality_weights

        pipe = self._require()
        task, kind = pipe.schema.task, pipe.kind
        y = data.dataset.target.numpy()
        pred = self._predictions(data)
        out = self._outputs(data, pred=pred)
        metrics = _metrics(out, y, task, pipe)
        report: dict[str, Any] = {"task": task, "metrics": metrics}
        classes = pipe.target_state.get("classes", [])
        if kind.single_label and len(y):
            from mmfuse.training.calibration import normalised_entropy, trust_report

            unc = pred.evidential_uncertainty if pred.evidential_uncertainty is not None else normalised_entropy(out)
            report["calibration"] = {
                "uncertainty": "evidential" if pred.evidential_uncertainty is not None else "entropy",
                "temperature": self.temperature,
                "raw": trust_report(out, y, unc),
                "calibrated": trust_report(self._outputs(data, True, pred), y, unc),
            }
        if kind.single_label:
            from sklearn.metrics import confusion_matrix

            report["confusion_matrix"] = {
                "labels": classes,
                "matrix": confusion_matrix(y, out.argmax(1), labels=list(range(len(classes)))).tolist(),
            }
        if contributions and len(y):
            main = kind.main_metric
            weights = mean_modality_weights(self.model, data.dataset) or {}
            contrib = {}
            for m in self.model.modalities:
                pred = predict(self.model, data.dataset, 256, transform=masks_transform({m: True})).prediction
                alt = _metrics(_to_outputs(pred, task, pipe), y, task, pipe)[main]
                contrib[m] = {
                    f"{main}_without": alt,
                    "drop": kind.improvement(metrics[main], alt),
                    "fusion_weight": weights.get(m),
                }
            report["contribution"] = contrib
        report["issues"] = {
            "total": len(data.issues),
            "rows_affected": len({it.row for it in data.issues}),
            "by_column": data.issue_counts(),
            "log": [it.to_dict() for it in data.issues[:200]],
        }
        return report

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, overwrite: bool = False, inputs: Any = ()) -> Path:
        """Write the model directory crash-safely (:func:`mmfuse.files.write_dir`; an earlier model at ``path`` is
        replaced only with ``overwrite``, and ``path`` may never be or contain one of ``inputs``)."""
        from safetensors.torch import save

        from mmfuse.files import write_dir

        pipe = self._require()
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        files = {
            "model.safetensors": save(state),
            "config.json": _dumps(
                {**self.meta, "predictor": {"target": pipe.schema.target, "fusion": self.meta["model"]["fusion"]}}
            ),
            "schema.json": _dumps(pipe.schema.to_dict()),
            "labels.json": _dumps(pipe.to_dict()),
            "metrics.json": _dumps(self.metrics),
            "summary.txt": self.summary(),
        }
        return write_dir(path, files, kind="model", overwrite=overwrite, inputs=inputs)

    def summary(self) -> str:
        pipe = self._require()
        v = self.metrics.get("validation", {})
        lines = [
            f"mmfuse table model: predicts {pipe.schema.target!r} ({pipe.schema.task}) "
            f"with fusion {self.meta['model']['fusion']!r}",
            pipe.schema.describe(),
            f"rows: {self.meta.get('rows')}; epochs: {self.meta.get('epochs')}; training "
            f"{self.meta.get('train_time_s', 0):.1f} s",
            "validation: " + ", ".join(f"{k}={val:.4f}" for k, val in v.items()),
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def load(
        cls,
        path: str | Path,
        base_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        progress: bool = False,
        limits: Limits | dict[str, Any] | None = None,
        allow_outside: bool = False,
    ) -> MultimodalPredictor:
        """Rebuild a saved predictor (JSON + safetensors only; nothing is unpickled)."""
        from mmfuse.training.serialization import build_saved_model, load_state, read_config

        path = Path(path)
        meta = read_config(path)  # the manifest's check of every file first
        missing = [f for f in FILES if not (path / f).is_file()]
        if missing:
            raise DataError(
                f"{str(path)!r} is not a table model directory (missing {', '.join(missing)}); "
                f"pass the folder written by 'mmfuse fit'."
            )
        try:
            schema = Schema.from_dict(json.loads((path / "schema.json").read_text()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{str(path / 'schema.json')!r} is malformed ({type(exc).__name__}: {str(exc)[:80]}); "
                f"write the model again with 'mmfuse fit'."
            ) from None
        try:
            state = json.loads((path / "labels.json").read_text())
            metrics = json.loads((path / "metrics.json").read_text())
            self = cls(
                target=schema.target,
                fusion=meta["model"]["fusion"],
                base_dir=base_dir,
                allow_outside=allow_outside,
                cache_dir=cache_dir,
                progress=progress,
                limits=limits,
            )
            self.pipeline = TablePipeline(schema, cache=self.cache, progress=progress, limits=self.limits).load_state(
                state
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{str(path / 'labels.json')!r} is malformed ({type(exc).__name__}: {str(exc)[:80]}); "
                f"write the model again with 'mmfuse fit'."
            ) from None
        self.model = build_saved_model(path, meta)
        load_state(self.model, path / "model.safetensors")
        self.model.eval()
        self.meta, self.metrics = meta, metrics
        return self


def _refuse_unusable_modalities(train: TableData, pipe: TablePipeline) -> None:
    """A modality that no training row could use is refused (one sentence with the most common reason);
    anything less is a per-row issue, counted and reported."""
    n = len(train.rows)
    for name, mask in train.dataset.masks.items():
        if n and not bool(mask.any()):
            cols = pipe.state[name]["columns"]
            reasons: dict[str, int] = {}
            for it in train.issues:
                if it.column in cols or it.column.startswith(f"{cols[0]}.."):
                    reasons[it.reason] = reasons.get(it.reason, 0) + 1
            top = max(reasons, key=lambda r: reasons[r]) if reasons else "no value"
            raise DataError(
                f"Column {cols[0]!r} (modality {name!r}) has no usable value in any of the "
                f"{n} training rows (most often: {top}); "
                "fix the paths or values, or drop the column in a schema."
            )


def _label_value(key: str) -> Any:
    try:
        return int(key)
    except ValueError:
        return key


def _to_outputs(pred: np.ndarray, task: str, pipe: TablePipeline, temperature: float = 1.0) -> np.ndarray:
    """Model outputs -> probabilities (softmax at ``temperature`` / sigmoid) or values in the target's units."""
    kind = task_kind(task)
    return kind.activate(pred, temperature) if kind.probabilistic else pipe.decode_prediction(pred)


def _metrics(out: np.ndarray, y: np.ndarray, task: str, pipe: TablePipeline) -> dict[str, float]:
    """The kind's metrics (:func:`mmfuse.evaluation.predict.task_metrics`, the one implementation) of outputs in target
    units."""
    from mmfuse.evaluation.predict import Predictions, task_metrics

    if len(y) == 0:
        return {}
    kind = task_kind(task)
    p = np.clip(out, 1e-12, 1.0)
    if kind.activation == "softmax":
        z = np.log(p)  # log-probabilities: softmax gives ``out`` back
    elif kind.activation == "sigmoid":
        z = np.log(p) - np.log(np.clip(1.0 - out, 1e-12, 1.0))  # logits: ``z > 0`` exactly where ``out > 0.5``
    else:
        z, y = out, pipe.decode_prediction(y.reshape(len(y), -1))
    return task_metrics(Predictions(z, y, {}, 0.0), task)


def _dumps(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    return json.dumps(obj, indent=2, sort_keys=True, default=default)
