"""``MultimodalPredictor``: fit on a table, predict, evaluate, save and load (the API behind ``mmfuse fit``).

    >>> p = MultimodalPredictor(target="label", fusion="concat").fit("train.csv")   # doctest: +SKIP
    >>> p.evaluate("test.csv")["metrics"]                                            # doctest: +SKIP
    >>> p.save("model/"); MultimodalPredictor.load("model/").predict("new.csv")       # doctest: +SKIP

The table's columns become modalities (:mod:`mmfuse.tabular.schema`); frozen encoders' outputs are
cached on disk (:mod:`mmfuse.tabular.cache`). By default the model is *selected*
(:mod:`mmfuse.evaluation.selection`): linear scikit-learn models and fusion methods sized to the table are scored
on out-of-fold predictions (k-fold cross-validation for small tables), greedily ensembled, and refitted on every
training row; ``preset`` says how many candidates and folds. Naming one ``fusion`` trains that method alone
with :func:`mmfuse.training.fit` and early stopping on a validation part (``val_table``, else a seeded,
stratified ``val_fraction`` of the rows).

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
from mmfuse.evaluation.selection import DEFAULT_PRESET, split_rows
from mmfuse.tabular import EmbeddingCache, Schema, TableData, TablePipeline, read_table, resolve_schema
from mmfuse.tabular.encoding import Encoding
from mmfuse.tabular.readers import Issue, Limits
from mmfuse.tabular.source import RowGroups, open_table
from mmfuse.tasks import task_kind

TRAIN_DEFAULTS = {"max_epochs": 20, "batch_size": 64, "patience": 4}  # TrainConfig fields the table API changes
FILES = ("model.safetensors", "config.json", "schema.json", "labels.json", "metrics.json", "summary.txt")


def _table(table: Any, stream: bool = False) -> tuple[Any, Path | None]:
    """``(frame with positions 0..N-1 as index, folder of the table file or None)``; a table with no row is refused.

    ``stream``: a Parquet file of several row groups stays on disk as a :class:`~mmfuse.tabular.source.RowGroups`
    (read one row group at a time by the pipeline; what ``fit`` and ``compare`` read)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        df, folder, name = table.reset_index(drop=True), None, "The DataFrame"
    else:
        df, folder, name = (
            open_table(table) if stream else read_table(table).reset_index(drop=True),
            Path(table).resolve().parent,
            f"Table {str(table)!r}",
        )
    if len(df) == 0:
        raise DataError(f"{name} has no data rows (only a header); give a table with at least one row.")
    return df, folder


class MultimodalPredictor:
    """Estimator-like multimodal model on a table.

    Args:
        target: column to predict.
        fusion: one registered fusion method to train (``mmfuse list fusions``); ``None`` (default) selects
            among the preset's candidates and their ensembles (module docstring).
        preset: ``"fast"``, ``"medium"`` (default) or ``"best"``: candidates, folds and ensemble rounds of the
            selection (:data:`mmfuse.evaluation.selection.PRESETS`).
        fusions: the fusion candidates of the selection, replacing the preset's list.
        schema: schema file path or mapping overriding the inferred one (see :mod:`mmfuse.tabular.schema`).
        base_dir: folder that relative paths start from (default: the table file's folder; for a DataFrame, the
            working folder).
        allow_outside: read paths that leave that folder (symlinks followed). Default: refused (as the row's
            issue) for table files and with ``base_dir``, so a table cannot make mmfuse read any file the user
            can; allowed for a DataFrame without ``base_dir``, whose paths the calling code wrote.
        time_limit: seconds: of training for one ``fusion`` (the best checkpoint so far is kept); of the whole
            selection otherwise (no candidate starts after three quarters of it; the rest is the refit's).
        val_fraction: validation share carved from the table when no ``val_table`` is given.
        drop_missing_target: leave out (and report) rows without a target instead of refusing the table.
        cache_dir: embedding-cache folder (default ``$MMFUSE_CACHE_DIR`` or ``~/.cache/mmfuse/embeddings``).
        use_cache: ``False`` recomputes every embedding.
        train: extra :class:`~mmfuse.config.TrainConfig` fields (``max_epochs``, ``batch_size``, ``lr``, ...).
        model: extra :class:`~mmfuse.config.ModelConfig` fields (``hidden``, ``modality_dropout``, ...).
        limits: :class:`~mmfuse.tabular.readers.Limits` (or its fields as a mapping): bytes per file, pixels per
            image; a cell beyond them is that row's issue.
        jobs: selection candidates scored at once in worker processes, the CPU cores shared out (default 1).
    """

    def __init__(
        self,
        target: str | None = None,
        fusion: str | None = None,
        preset: str = DEFAULT_PRESET,
        fusions: list[str] | None = None,
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
        jobs: int = 1,
    ) -> None:
        from mmfuse.evaluation.jobs import check_jobs
        from mmfuse.evaluation.selection import preset as check_preset

        check_preset(preset)
        self.jobs = check_jobs(jobs, "jobs")
        self.target, self.fusion, self.preset, self.schema_override = target, fusion, preset, schema
        self.fusions = list(fusions) if fusions is not None else None
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
        self.model: Any = None  # nn.Module once fitted or loaded (MultimodalModel, Ensemble, ...)
        self.meta: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.fit_issues: list[Issue] = []
        self.plan: list[str] = []
        self.oof: dict[str, np.ndarray] = {}  # selection: table row of each scored row, and each candidate's OOF

    # ------------------------------------------------------------------ preparation
    def _pipeline_for(self, df: Any, folder: Path | None) -> TablePipeline:
        override = self.schema_override
        if isinstance(override, (str, Path)):
            override = load_mapping(override)
        schema = resolve_schema(df.head() if isinstance(df, RowGroups) else df, self.target, override)
        encoding = Encoding.from_options(self.train_options, self.progress)
        pipe = TablePipeline(schema, cache=self.cache, progress=self.progress, limits=self.limits, encoding=encoding)
        self._set_base(folder, pipe)
        return pipe

    def infer_schema(self, table: Any) -> Schema:
        """The schema ``fit`` would use on ``table`` (inferred, then overridden by the schema file)."""
        df, folder = _table(table, stream=True)
        return self._pipeline_for(df, folder).schema

    def prepare(
        self,
        table: Any,
        val_table: Any = None,
        test_table: Any = None,
        test_fraction: float = 0.0,
        holdout: bool = True,
    ) -> tuple[Splits, dict[str, TableData]]:
        """Resolve the schema, split, fit the preprocessing on training rows and encode every part.

        ``holdout=False`` carves no validation part from ``table`` (the selection cross-validates on every row;
        ``val`` is then empty unless ``val_table`` is given).

        Returns:
            ``(Splits, {"train": TableData, "val": ..., "test": ...})`` (test empty when neither ``test_table``
            nor ``test_fraction`` is given).
        """
        from mmfuse.registry import FUSIONS

        if self.fusion is not None:
            FUSIONS.get(self.fusion)  # an unknown name fails now, with the valid ones listed
        df, folder = _table(table, stream=True)
        self.pipeline = pipe = self._pipeline_for(df, folder)
        keep, self.fit_issues = pipe.check_target(df, self.drop_missing_target)
        strat = [str(v) for v in df[pipe.schema.target].iloc[keep]] if pipe.kind.single_label else None
        parts: dict[str, tuple[Any, np.ndarray, Path | None]] = {}
        rest = keep
        if test_table is None and test_fraction > 0:
            a, b = split_rows(strat, len(keep), test_fraction, self.seed + 1)
            parts["test"], rest = (df, keep[b], folder), keep[a]
            strat = None if strat is None else [strat[i] for i in a]
        if val_table is None and not holdout:
            parts["train"], parts["val"] = (df, rest, folder), (df, rest[:0], folder)
        elif val_table is None:
            a, b = split_rows(strat, len(rest), self.val_fraction, self.seed)
            parts["train"], parts["val"] = (df, rest[a], folder), (df, rest[b], folder)
        else:
            vdf, vfolder = _table(val_table, stream=True)
            vkeep, vissues = pipe.check_target(vdf, self.drop_missing_target)
            self.fit_issues += vissues
            parts["train"], parts["val"] = (df, rest, folder), (vdf, vkeep, vfolder)
        if test_table is not None:
            tdf, tfolder = _table(test_table, stream=True)
            parts["test"] = (tdf, pipe.check_target(tdf, self.drop_missing_target)[0], tfolder)
        pipe.fit(parts["train"][0], parts["train"][1])
        data = {}
        for name, (d, rows, where) in parts.items():
            self._set_base(where)
            data[name] = pipe.transform(d, rows)
        for name in ("train", "val") if (holdout or val_table is not None) else ("train",):
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

    def model_config(self, spec: DatasetSpec, fusion: str | None = None, sized: dict | None = None) -> ModelConfig:
        """ModelConfig of ``fusion`` on ``spec``: the table's encoders, then ``sized`` (the capacity rule's
        options, :func:`mmfuse.evaluation.selection.capacity`), then the user's model options."""
        base = {
            "encoders": spec.encoders,
            "num_outputs": spec.num_outputs,
            "task": spec.task,
            "fusion": fusion or self.fusion or "concat",
        }
        return from_dict(ModelConfig, {**base, **(sized or {}), **self.model_options})

    def train_config(self, sized: dict | None = None) -> TrainConfig:
        """TrainConfig: the table defaults, then ``sized`` (the capacity rule's), then the user's options."""
        base = {**TRAIN_DEFAULTS, **(sized or {}), "seed": self.seed, "progress_bar": self.progress}
        base["max_time"] = self.time_limit
        return from_dict(TrainConfig, {**base, **{k: v for k, v in self.train_options.items() if v is not None}})

    def capacity(self, spec: DatasetSpec, n_rows: int) -> tuple[dict, dict, list[str]]:
        """The capacity rule's ``(model options, train options, plan lines)`` for ``n_rows`` training rows; the
        plan says which of them the user's options replace."""
        from mmfuse.evaluation.selection import capacity

        model, train, lines = capacity(spec.encoders, n_rows, spec.num_outputs)
        given = sorted({*self.model_options, *(k for k, v in self.train_options.items() if v is not None)})
        given = [k for k in given if k in model or k in train]
        if given:
            lines.append(f"  (your options replace: {', '.join(given)})")
        return model, train, lines

    # ------------------------------------------------------------------ fit / predict
    def fit(self, table: Any, val_table: Any = None, checkpoint_dir: str | Path | None = None) -> MultimodalPredictor:
        """Train on ``table`` (a DataFrame or a CSV/Parquet path): one ``fusion`` with early stopping on
        ``val_table`` or a carved part, or (``fusion=None``) the selection of the module docstring, where
        ``val_table``, when given, replaces the cross-validation as the one held-out split.

        Training one fusion on several processes (``train={"devices": 2, "strategy": "ddp"}``) needs
        ``checkpoint_dir``, a path every process can reach (the CLI passes the output folder; the checkpoints live
        beside it); every process returns a trained predictor, and ``meta["global_rank"]`` says which one should
        save.
        """
        t0 = time.perf_counter()
        if self.fusion is None:
            self._refuse_processes()
        splits, data = self.prepare(table, val_table, holdout=self.fusion is not None)
        encode_s = time.perf_counter() - t0
        if self.fusion is None:
            self._select(splits, data, encode_s)
        else:
            self._fit_one(splits, data, encode_s, checkpoint_dir)
        self._record(data)
        return self

    def leaderboard(
        self, table: Any, val_table: Any = None, test_table: Any = None, test_fraction: float = 0.0
    ) -> list[dict[str, Any]]:
        """The selection of :meth:`fit` (this predictor is then the chosen model), with every candidate's row; with
        a test part (``test_table``, or a seeded stratified ``test_fraction`` of ``table`` kept out before anything
        is fitted), each candidate is refitted on every training row and scored on it, and so is the chosen
        model (row ``selected``). The test part is scored, never chosen on."""
        import dataclasses

        from mmfuse.evaluation.predict import predict

        self._refuse_processes()
        t0 = time.perf_counter()
        splits, data = self.prepare(table, val_table, test_table, test_fraction, holdout=False)
        self._select(splits, data, time.perf_counter() - t0)
        self._record(data)
        pipe, task = self._require(), splits.spec.task
        main = task_kind(task).main_metric
        rows = [dict(r) for r in self.meta["selection"]["candidates"]]
        chosen = {
            "method": "selected",
            "kind": "selection",
            "fusion": "+".join(self.meta["selection"]["weights"]),
            f"cv_{main}": self.meta["best_val"],
            "weight": 1.0,
        }
        rows.append(chosen)
        test = data.get("test")
        if test is not None and len(test.rows):
            y = test.dataset.target.numpy()

            def scores(model: Any) -> dict[str, float]:
                out = _to_outputs(predict(model, test.dataset, batch_size=256).prediction, task, pipe)
                return {f"test_{k}": v for k, v in _metrics(out, y, task, pipe).items()}

            chosen.update(scores(self.model))
            for r, s in zip(rows, self._selection.scored):
                if s.oof is None:
                    continue
                if list(self._selection.weights) == [s.candidate.name]:
                    r.update({k: v for k, v in chosen.items() if k.startswith("test_")})
                    continue
                one = dataclasses.replace(self._selection, weights={s.candidate.name: 1.0})
                r.update(scores(self._selector.refit(one)[0]))
        return rows

    def _record(self, data: dict[str, TableData]) -> None:
        """Rows, cache counters and the issue report of a fit, beside its metrics."""
        self.metrics.update(
            {
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
        )

    def _fit_one(
        self, splits: Splits, data: dict[str, TableData], encode_s: float, checkpoint_dir: str | Path | None
    ) -> None:
        from mmfuse.training.fit import fit, validation_temperature

        sized_model, sized_train, plan = self.capacity(splits.spec, len(data["train"].rows))
        self.plan = plan
        model_cfg, train_cfg = self.model_config(splits.spec, None, sized_model), self.train_config(sized_train)
        result = fit(model_cfg, train_cfg, splits.train, splits.val, checkpoint_dir=checkpoint_dir)
        self.model = result.model
        self.meta = {
            "model": result.model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "plan": plan,
            "history": result.history,
            "train_time_s": result.train_time_s,
            "encode_time_s": encode_s,
            "best_val": result.best_score,
            "epochs": result.epochs_run,
            "rows": {k: int(len(v.rows)) for k, v in data.items()},
            "kind": "mmfuse-table-predictor",
            "global_rank": result.global_rank,
            "inputs": _input_schema(data["train"]),
        }
        if task_kind(splits.spec.task).single_label:  # temperature scaling on the validation rows (Guo et al. 2017)
            self.meta["calibration"] = validation_temperature(self.model, data["val"].dataset)
        self.metrics = {"validation": self._report(data["val"], contributions=False)["metrics"]}

    def _refuse_processes(self) -> None:
        devices = str(self.train_options.get("devices", 1))
        if devices not in ("1", "auto") or int(self.train_options.get("num_nodes", 1) or 1) > 1:
            raise ConfigError(
                "Model selection trains its candidates one after another in one process; name one fusion "
                "(--fusion concat) to train it on several devices or nodes."
            )

    def _select(self, splits: Splits, data: dict[str, TableData], encode_s: float) -> None:
        """The selection of :mod:`mmfuse.evaluation.selection` on every training row (and ``val_table``'s)."""
        from torch.utils.data import ConcatDataset

        from mmfuse.evaluation.selection import Selector, candidates_for, plan_folds, preset
        from mmfuse.training.calibration import calibration_metrics, fit_temperature, softmax

        t0 = time.perf_counter()
        pipe, spec, kind = self._require_pipeline(), splits.spec, task_kind(splits.spec.task)
        p = preset(self.preset)
        parts = [data["train"]] + ([data["val"]] if len(data["val"].rows) else [])
        dataset = parts[0].dataset if len(parts) == 1 else ConcatDataset([d.dataset for d in parts])
        y = np.concatenate([d.dataset.target.numpy() for d in parts])
        n = len(y)
        if len(parts) == 2:
            n_train = len(data["train"].rows)
            folds = [[(np.arange(n_train), np.arange(n_train, n))]]
            protocol = f"the validation table ({n - n_train:,} rows) held out from {n_train:,} training rows"
        else:
            strata = [str(int(v)) for v in y] if kind.single_label else None
            folds, protocol = plan_folds(strata, n, p, self.seed, self.val_fraction)
        sized_model, sized_train, plan = self.capacity(spec, n)
        log = print if self.progress else (lambda line: None)
        for line in plan:
            log(line)
        train_cfg = self.train_config(sized_train)
        selector = Selector(
            dataset,
            y,
            spec.task,
            spec.num_outputs,
            lambda fusion: self.model_config(spec, fusion, sized_model),
            train_cfg,
            log,
            self.jobs,
        )
        candidates = candidates_for(p, spec.encoders, self.fusions)
        chosen = selector.select(candidates, folds, protocol, p.rounds, self.time_limit)
        self._selector, self._selection = selector, chosen
        left = None if self.time_limit is None else max(1.0, self.time_limit - (time.perf_counter() - t0))
        self.model, model_cfg = selector.refit(chosen, left)
        covered = chosen.covered
        oof = chosen.oof[covered]
        out = oof if kind.probabilistic else pipe.decode_prediction(oof)
        main = kind.main_metric
        validation = _metrics(out, y[covered], spec.task, pipe)  # the chosen model's OOF metrics in target units
        board = [s.row(main) for s in chosen.scored]
        scale = pipe.target_state.get("std", 1.0) if kind.target == "values" else 1.0
        for r, s in zip(board, chosen.scored):  # regression scores back in the target's units
            for k in (f"cv_{main}", "cv_std"):
                if isinstance(r.get(k), float):
                    r[k] *= scale
            r["weight"] = chosen.weights.get(s.candidate.name, 0.0)
        self.plan = plan
        self.meta = {
            "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "plan": plan,
            "selection": {
                "preset": p.name,
                "protocol": protocol,
                "rows_scored": int(len(covered)),
                "candidates": board,
                "weights": chosen.weights,
                "reason": chosen.reason,
            },
            "history": [],
            "train_time_s": time.perf_counter() - t0,
            "encode_time_s": encode_s,
            "best_val": validation[main],
            "epochs": max((r["epochs"] or 0 for r in board if r["method"] in chosen.weights), default=0),
            "rows": {k: int(len(v.rows)) for k, v in data.items()},
            "kind": "mmfuse-table-predictor",
            "global_rank": 0,
            "inputs": _input_schema(data["train"]),
        }
        if kind.single_label:  # temperature scaling (Guo et al. 2017) on the out-of-fold predictions
            z, yy = np.log(np.clip(oof, 1e-12, 1.0)), y[covered].astype(int)
            t = fit_temperature(z, yy)
            self.meta["calibration"] = {
                "temperature": t,
                "fitted_on": "out-of-fold predictions",
                "validation_before": calibration_metrics(softmax(z), yy),
                "validation_after": calibration_metrics(softmax(z, t), yy),
            }
        self.metrics = {"validation": validation, "selection": board}
        table_rows = np.concatenate([d.rows for d in parts])[covered]
        self.oof = {
            "rows": table_rows,
            **{s.candidate.name: s.oof[covered] for s in chosen.scored if s.oof is not None},
        }

    def _require_pipeline(self) -> TablePipeline:
        if self.pipeline is None:
            raise ConfigError("No table was prepared; call fit(...) first.")
        return self.pipeline

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

    def _predictions(self, data: TableData, backend: str = "torch", onnx_path: str | Path | None = None) -> Any:
        from mmfuse.evaluation.predict import predict

        if backend == "onnx":  # the graph of 'mmfuse export' through onnxruntime, on the same encoded rows
            from mmfuse.export import predict_onnx

            return predict_onnx(onnx_path, data.dataset, self.model)
        return predict(self.model, data.dataset, batch_size=256)

    def _outputs(self, data: TableData, calibrate: bool = False, pred: Any = None) -> np.ndarray:
        """Probabilities ``(N, C)`` (classification/multilabel) or values ``(N, 1)`` in target units; ``calibrate``
        divides classification logits by the validation-fitted temperature first."""
        pred = (pred if pred is not None else self._predictions(data)).prediction
        pipe = self._require()
        return _to_outputs(pred, pipe.schema.task, pipe, self.temperature if calibrate else 1.0)

    def predict(
        self,
        table: Any,
        with_ids: bool = False,
        calibrate: bool = False,
        explain: bool = False,
        backend: str = "torch",
        onnx_path: str | Path | None = None,
    ) -> Any:
        """A DataFrame with one row per table row, in the table's order: ``prediction``, ``prob_<class>`` columns
        (classification / multi-label), ``uncertainty`` (classification, in [0, 1]: an evidential fusion's
        ``u = K / S``, else the normalised predictive entropy) and ``notes`` naming any modality that was missing
        or unreadable (or repaired).

        ``calibrate`` applies the temperature fitted on the validation rows at ``fit`` (it changes the
        probabilities and the entropy, never the predicted class). ``explain`` adds ``shapley_<modality>``: each
        modality's exact Shapley value for the predicted class's probability (regression: the value), summing
        per row to the prediction with every modality minus the prediction with none
        (:mod:`mmfuse.evaluation.attribution`).

        ``backend="onnx"`` runs the model's ONNX graph (``onnx_path``, written by ``mmfuse export``) through
        onnxruntime on the encoded rows instead of torch; the frame is the same (within 1e-4). It cannot ``explain``.

        A DataFrame's own index is kept (``df["pred"] = p.predict(df)["prediction"]`` lands on the right rows,
        whatever the index). ``with_ids`` puts the table's id columns first (the columns the schema reads as
        identifiers), or ``row`` (0-based position, header excluded) when it has none: what the CLI writes.
        """
        import pandas as pd

        pipe = self._require()
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"Unknown backend {backend!r}; use 'torch' or 'onnx'.")
        if backend == "onnx" and explain:
            raise ConfigError(
                "Shapley values re-run the model with modalities removed, which needs the torch backend; "
                "predict with explain=False, or with backend='torch'."
            )
        index = table.index if isinstance(table, pd.DataFrame) else None
        df, folder = _table(table)
        self._set_base(folder)
        data = pipe.transform(df, with_target=False)
        pred = self._predictions(data, backend, onnx_path)
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
        files: dict[str, bytes | str] = {
            "model.safetensors": save(state),
            "config.json": _dumps(
                {**self.meta, "predictor": {"target": pipe.schema.target, "fusion": self.meta["model"]["fusion"]}}
            ),
            "schema.json": _dumps(pipe.schema.to_dict()),
            "labels.json": _dumps(pipe.to_dict()),
            "metrics.json": _dumps(self.metrics),
            "summary.txt": self.summary(),
        }
        if self.oof:  # the selection's out-of-fold predictions (row positions in the fitted table, outputs)
            import torch

            files["oof.safetensors"] = save({k: torch.as_tensor(np.asarray(v)) for k, v in self.oof.items()})
        return write_dir(path, files, kind="model", overwrite=overwrite, inputs=inputs)

    def summary(self) -> str:
        """What was fitted, how it was chosen (the plan, the candidates' scores), and its validation metrics."""
        pipe = self._require()
        v = self.metrics.get("validation", {})
        sel = self.meta.get("selection")
        what = f"the selection of preset {sel['preset']!r}" if sel else f"fusion {self.meta['model']['fusion']!r}"
        lines = [
            f"mmfuse table model: predicts {pipe.schema.target!r} ({pipe.schema.task}) with {what}",
            pipe.schema.describe(),
            *self.meta.get("plan", []),
            f"rows: {self.meta.get('rows')}; epochs: {self.meta.get('epochs')}; training "
            f"{self.meta.get('train_time_s', 0):.1f} s",
        ]
        if sel:
            lines += [
                f"selection: {sel['protocol']}",
                selection_table(sel["candidates"], pipe.schema.task),
                f"chosen: {sel['reason']}",
            ]
            lines.append("out-of-fold: " + ", ".join(f"{k}={val:.4f}" for k, val in v.items()))
        else:
            lines.append("validation: " + ", ".join(f"{k}={val:.4f}" for k, val in v.items()))
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


def selection_table(rows: list[dict[str, Any]], task: str) -> str:
    """The selection's candidates as a text table, best cross-validated score first, failures last."""
    kind = task_kind(task)
    score, higher = f"cv_{kind.main_metric}", kind.higher_is_better
    ok = sorted((r for r in rows if r.get(score) is not None), key=lambda r: -r[score] if higher else r[score])
    lines = [f"  {'candidate':<22} {score:>14} {'± folds':>8} {'weight':>7} {'epochs':>7} {'seconds':>8}"]
    for r in ok:
        std = f"{r['cv_std']:.4f}" if r.get("cv_std") is not None and r["folds"] > 1 else "-"
        lines.append(
            f"  {r['method']:<22} {r[score]:>14.4f} {std:>8} {r.get('weight', 0):>7.2f} "
            f"{r['epochs'] if r['epochs'] is not None else '-':>7} {r['seconds']:>8.1f}"
        )
    lines += [f"  {r['method']:<22} failed: {r.get('error', '')}" for r in rows if r.get(score) is None]
    return "\n".join(lines)


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


def _input_schema(data: TableData) -> dict[str, dict[str, Any]]:
    """``{modality: {"shape": [dims after the batch's], "dtype": ...}}`` of the encoded rows: the model's inputs, which
    'mmfuse export' gives its ONNX graph."""
    return {
        m: {"shape": [int(d) for d in x.shape[1:]], "dtype": str(x.dtype).removeprefix("torch.")}
        for m, x in data.dataset.inputs.items()
    }


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
    """The kind's metrics (:func:`mmfuse.evaluation.predict.output_metrics`, the one implementation) of outputs in
    target units."""
    from mmfuse.evaluation.predict import output_metrics

    if len(y) == 0:
        return {}
    if not task_kind(task).probabilistic:
        y = pipe.decode_prediction(y.reshape(len(y), -1))
    return output_metrics(out, y, task)


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
