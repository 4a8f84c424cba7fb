"""A table -> :class:`~mmfuse.data.base.TensorMultimodalDataset` plus a per-row issue log.

:class:`TablePipeline` is fitted on the training rows (label encoder, category vocabularies,
standardisation statistics, audio length, sequence length) and then turns any table with the same
columns into tensors. Per modality (see :mod:`mmfuse.tabular.schema`):

* ``text``: MiniLM sentence embeddings (384-d, frozen, cached) -> ``mlp``; or, with
  ``encoder: minilm``, token ids -> the fine-tuned ``minilm`` encoder.
* ``image``: EfficientNet-Lite0 embeddings (1280-d, frozen, cached) -> ``mlp``; or, with
  ``encoder: cnn``, pixels resized to ``size`` -> the trainable ``cnn``.
* ``audio``: soundfile -> mono -> polyphase resampling to ``sample_rate`` -> centre crop/zero pad to
  ``seconds`` -> standardised log-mel spectrogram (cached) -> ``spectrogram_cnn``.
* ``sequence``: ``.npy`` arrays ``(T, F)`` cropped/zero-padded to ``max_len`` -> ``gru``.
* ``vector``: list cells or grouped numeric columns, standardised with training statistics -> ``mlp``.
* ``tabular``: numeric columns standardised ``(x - mean_train) / std_train`` (NaN -> the training
  mean), categorical columns one-hot over the training vocabulary with index 0 = ``<unk>`` (unseen
  categories and NaN); an ``mlp`` on that vector, whose first linear layer is then a learned
  embedding table per categorical column (``W onehot(c) = E[c]``).

A cell that cannot be used makes its modality absent for that row (mask False, zero input) and adds an
:class:`~mmfuse.tabular.readers.Issue`; refusals raise :class:`~mmfuse.errors.DataError`.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.errors import ConfigError, DataError
from mmfuse.tabular import _wide as W
from mmfuse.tabular import readers as R
from mmfuse.tabular.cache import EmbeddingCache
from mmfuse.tabular.schema import Schema
from mmfuse.tasks import TaskKind, task_kind

OPTIONS = {
    "text": {"encoder", "out_dim", "max_length"},
    "image": {"encoder", "out_dim", "size", "channels"},
    "audio": {"out_dim", "sample_rate", "seconds", "n_mels"},
    "sequence": {"out_dim", "max_len"},
    "vector": {"out_dim"},
    "tabular": {"out_dim", "max_categories"},
}
ENCODER_CHOICES = {"text": ("minilm_frozen", "minilm"), "image": ("efficientnet_lite0", "cnn")}
POSITIVE_INT = ("out_dim", "size", "channels", "max_len", "n_mels", "sample_rate", "max_length", "max_categories")
DEFAULT_OUT = 64
MAX_CELL_ISSUES = 20  # a row with more imputed numeric cells gets one issue counting them
WIDE_STAGE = 1000  # stages over this many columns print a line when progress is on
UNK = "<unk>"


def label_key(value: Any) -> str:
    """Canonical string of a label (``1``, ``1.0`` and ``"1"`` agree)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _label_list(cell: Any, row: int, column: str) -> list[str]:
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            raise DataError(
                f"Row {row}: target {column!r} holds {cell!r}, not a list of labels; write "
                f'it as a JSON list such as ["a", "b"].'
            ) from None
    return [label_key(v) for v in cell]


@dataclass
class TableData:
    """A transformed table: the dataset, the issue log and the rows it covers."""

    dataset: TensorMultimodalDataset
    issues: list[R.Issue] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # table positions of the dataset's rows

    def issue_counts(self) -> dict[str, int]:
        """``{column: number of issues}``."""
        out: dict[str, int] = {}
        for it in self.issues:
            out[it.column] = out.get(it.column, 0) + 1
        return dict(sorted(out.items()))

    def notes(self, n_rows: int) -> list[str]:
        """One note per table row: ``"column: reason; ..."`` (empty when the row had no issue)."""
        notes: list[list[str]] = [[] for _ in range(n_rows)]
        for it in self.issues:
            notes[it.row].append(f"{it.column}: {it.reason}{'' if it.action == 'missing' else f' ({it.action})'}")
        return ["; ".join(n) for n in notes]


class TablePipeline:
    """Fitted table preprocessing (state learned on training rows only).

    Args:
        schema: the resolved :class:`~mmfuse.tabular.schema.Schema`.
        base_dir: folder that relative paths start from (default: the table's folder).
        restrict: paths that leave ``base_dir`` (symlinks followed) are the row's issue, not read.
        cache: embedding cache of frozen-encoder outputs and spectrograms.
        progress: show progress bars while encoding.
        limits: what one cell may cost (file size, image pixels); beyond it, the cell is that row's issue.
    """

    def __init__(
        self,
        schema: Schema,
        base_dir: str | Path = ".",
        restrict: bool = False,
        cache: EmbeddingCache | None = None,
        progress: bool = True,
        limits: R.Limits | None = None,
    ) -> None:
        self.schema = schema
        self.limits = limits or R.LIMITS
        self.base_dir = Path(base_dir)
        self.restrict = restrict
        self.cache = cache or EmbeddingCache()
        self.progress = progress
        self.target_state: dict[str, Any] = {}
        self.state: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ target
    def check_target(self, df: Any, drop_missing: bool = False) -> tuple[Any, list[R.Issue]]:
        """Rows with a target; NaN targets are refused (listing rows) unless ``drop_missing`` records them."""
        col = self.schema.target
        if col not in df.columns:
            raise DataError(
                f"Target column {col!r} is not in the table; the model was trained to predict "
                f"it, so add the column (or use 'mmfuse predict')."
            )
        missing = [
            i
            for i, v in enumerate(df[col].tolist())
            if not isinstance(v, (list, np.ndarray)) and (R.is_missing(v) or _is_inf(v))
        ]
        if missing and not drop_missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise DataError(
                f"Target column {col!r} is empty (or infinite) in {len(missing)} row(s) "
                f"({shown}); fill them in or pass "
                "--drop-missing-target to leave them out (they are then listed in the report)."
            )
        issues = [R.Issue(i, col, "target is empty or infinite", action="dropped") for i in missing]
        keep = np.setdiff1d(np.arange(len(df)), missing)
        return keep, issues

    @property
    def kind(self) -> TaskKind:
        return task_kind(self.schema.task)

    def fit_target(self, values: list[Any]) -> None:
        col = self.schema.target
        if self.kind.target == "values":
            y = self._numeric_target(values, 0)
            self.target_state = {"mean": float(y.mean()), "std": float(y.std()) if y.std() > 0 else 1.0}
            return
        multi = self.kind.target == "multi_hot"
        keys = [k for i, v in enumerate(values) for k in (_label_list(v, i, col) if multi else [label_key(v)])]
        classes = sorted(set(keys), key=lambda k: (0, float(k)) if _is_number(k) else (1, k))
        if len(classes) < 2:
            raise DataError(
                f"Target column {col!r} has a single class ({classes[0] if classes else 'none'!r}) "
                f"in the training rows; a classifier needs at least two."
            )
        self.target_state = {"classes": classes}

    def _numeric_target(self, values: list[Any], offset: int) -> np.ndarray:
        try:
            return np.asarray(values, np.float64)
        except (TypeError, ValueError):
            for i, v in enumerate(values):
                if not _is_number(str(v)):
                    raise DataError(
                        f"Row {offset + i}: regression target {self.schema.target!r} holds {v!r}, "
                        f"not a number; fix it or declare task: classification."
                    ) from None
            raise

    def encode_target(self, values: list[Any], rows: np.ndarray) -> np.ndarray:
        """Class indices ``(N,)``, multi-hot ``(N, K)`` or standardised values ``(N, 1)``."""
        col = self.schema.target
        if self.kind.target == "values":
            y = np.asarray([float(v) for v in values], np.float64) if values else np.zeros(0)
            return ((y - self.target_state["mean"]) / self.target_state["std"]).astype(np.float32)[:, None]
        index = {c: i for i, c in enumerate(self.target_state["classes"])}
        if self.kind.target == "multi_hot":
            out = np.zeros((len(values), len(index)), np.float32)
            for j, (v, r) in enumerate(zip(values, rows)):
                for k in _label_list(v, int(r), col):
                    if k in index:
                        out[j, index[k]] = 1.0
            return out
        out = np.zeros(len(values), np.int64)
        for j, (v, r) in enumerate(zip(values, rows)):
            k = label_key(v)
            if k not in index:
                raise DataError(
                    f"Row {int(r)}: target {col!r} is {v!r}, a class the model was not trained "
                    f"on (classes: {self.target_state['classes'][:10]}); remove the row or retrain."
                )
            out[j] = index[k]
        return out

    def decode_prediction(self, prediction: np.ndarray) -> np.ndarray:
        """Regression outputs back in the target's units ``(N, 1)``; other tasks unchanged."""
        if self.kind.target == "values":
            return prediction * self.target_state["std"] + self.target_state["mean"]
        return prediction

    # ------------------------------------------------------------------ fit / transform
    def fit(self, df: Any, rows: np.ndarray | None = None) -> TablePipeline:
        """Learn the target encoding and every modality's state from training rows ``rows`` of ``df``."""
        rows = np.arange(len(df)) if rows is None else rows
        every = len(rows) == len(df) and bool(np.all(np.asarray(rows) == np.arange(len(df))))
        part = df if every else df.iloc[rows]
        self.fit_target(part[self.schema.target].tolist())
        self.state = {}
        for name, (kind, cols) in self.schema.modalities().items():
            opts = dict(self.schema.options.get(name, {}))
            bad = sorted(set(opts) - OPTIONS[kind])
            if bad:
                raise ConfigError(
                    f"Schema options {bad} do not apply to {kind} modality {name!r}; valid options: "
                    f"{sorted(OPTIONS[kind])}."
                )
            for key, value in opts.items():
                if key in POSITIVE_INT and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                    raise ConfigError(
                        f"Schema option {key!r} of modality {name!r} is {value!r}; give a positive whole number."
                    )
                if key == "seconds" and (
                    isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600
                ):
                    raise ConfigError(
                        f"Schema option 'seconds' of modality {name!r} is {value!r}; give a duration "
                        f"in (0, 600] seconds."
                    )
            if opts.get("channels", 1) not in (1, 3):
                raise ConfigError(
                    f"Schema option 'channels' of modality {name!r} is {opts['channels']!r}; "
                    f"use 1 (grey) or 3 (colour)."
                )
            enc = opts.get("encoder", ENCODER_CHOICES.get(kind, ("",))[0])
            if kind in ENCODER_CHOICES and enc not in ENCODER_CHOICES[kind]:
                raise ConfigError(
                    f"Encoder {enc!r} is not available for {kind} modality {name!r}; choose "
                    f"one of {list(ENCODER_CHOICES[kind])}."
                )
            st = {"kind": kind, "columns": cols, "out_dim": int(opts.get("out_dim", DEFAULT_OUT)), "encoder": enc}
            fitter = getattr(self, f"_fit_{kind}", None)
            if fitter is not None:
                st.update(fitter(part, cols, opts, rows))
            self.state[name] = st
        return self

    def transform(self, df: Any, rows: np.ndarray | None = None, with_target: bool = True) -> TableData:
        """Tensors of rows ``rows`` of ``df`` (default all), with the issue log (row numbers are table positions)."""
        rows = np.arange(len(df)) if rows is None else np.asarray(rows, np.int64)
        every = len(rows) == len(df) and bool(np.all(rows == np.arange(len(df))))
        part = df if every else df.iloc[rows]  # every row: no copy of a wide table
        for name, st in self.state.items():
            absent = [c for c in st["columns"] if c not in df.columns]
            if absent:
                raise DataError(
                    f"Column {absent[0]!r} (modality {name!r}) is missing from the table; the "
                    f"model was trained with it, so add it (empty cells are allowed)."
                )
        issues: list[R.Issue] = []
        inputs, masks = {}, {}
        for name, st in self.state.items():
            x, mask = getattr(self, f"_tx_{st['kind']}")(part, st, rows, issues)
            inputs[name], masks[name] = x, mask
        if with_target:
            target = self.encode_target(part[self.schema.target].tolist(), rows)
        else:
            target = np.zeros(len(rows), np.int64)
        issues.sort(key=lambda it: (it.row, it.column))
        return TableData(TensorMultimodalDataset(inputs, target, masks), issues, rows)

    def encoders_config(self) -> dict[str, dict[str, Any]]:
        """The ModelConfig ``encoders`` entry of every modality."""
        out = {}
        for name, st in self.state.items():
            kind, d = st["kind"], st["out_dim"]
            if kind == "text" and st["encoder"] == "minilm":
                out[name] = {"name": "minilm", "out_dim": d, "trainable": True}
            elif kind == "image" and st["encoder"] == "cnn":
                out[name] = {"name": "cnn", "in_channels": st["channels"], "out_dim": d}
            elif kind == "audio":
                out[name] = {"name": "spectrogram_cnn", "out_dim": d}
            elif kind == "sequence":
                out[name] = {"name": "gru", "in_dim": st["dim"], "out_dim": d}
            else:  # frozen embeddings, vectors and the tabular block
                out[name] = {"name": "mlp", "in_dim": st["dim"], "out_dim": d, "hidden": [128]}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target_state, "modalities": self.state}

    def load_state(self, data: dict[str, Any]) -> TablePipeline:
        """Restore the fitted state (``labels.json``); raises ``ValueError`` naming the first field that is wrong."""
        target, modalities = dict(data["target"]), {str(k): dict(v) for k, v in dict(data["modalities"]).items()}
        if self.kind.target == "values":
            if (
                not all(isinstance(target.get(k), (int, float)) and math.isfinite(target[k]) for k in ("mean", "std"))
                or target["std"] <= 0
            ):
                raise ValueError("target needs finite 'mean' and a positive 'std'")
        elif (
            not isinstance(target.get("classes"), list)
            or len(target["classes"]) < 2
            or not all(isinstance(c, str) for c in target["classes"])
        ):
            raise ValueError("target 'classes' must be a list of at least two class names")
        expected = self.schema.modalities()
        if sorted(modalities) != sorted(expected):
            raise ValueError(f"modalities {sorted(modalities)} do not match the schema's {sorted(expected)}")
        for name, st in modalities.items():
            if st.get("kind") != expected[name][0] or sorted(st.get("columns") or []) != sorted(expected[name][1]):
                raise ValueError(f"modality {name!r} does not match the schema (kind/columns)")
            sizes = [
                k
                for k in ("out_dim", "dim", "size", "channels", "max_len", "n_mels", "sample_rate", "max_length")
                if k in st
            ]
            if not isinstance(st.get("out_dim"), int) or any(
                not isinstance(st[k], int) or isinstance(st[k], bool) or st[k] <= 0 for k in sizes
            ):
                raise ValueError(f"modality {name!r} has a size that is not a positive whole number")
        self.target_state, self.state = target, modalities
        return self

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def _stage(self, what: str, columns: int) -> Iterator[None]:
        """A line on stderr before and after a stage over ``WIDE_STAGE`` columns or more (when ``progress``
        is on): a 100,000-column table takes seconds per stage, and silence reads as a hang."""
        show = self.progress and columns >= WIDE_STAGE
        if show:
            print(f"mmfuse: {what} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        if show:
            print(f"mmfuse: {what}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    def _paths(self, part: Any, col: str, rows: np.ndarray, issues: list[R.Issue]) -> dict[int, Path]:
        """``{j: path}`` of the usable path cells of ``col`` (j = position in ``rows``)."""
        out = {}
        for j, (cell, r) in enumerate(zip(part[col].tolist(), rows)):
            if R.is_missing(cell):
                issues.append(R.Issue(int(r), col, "no value"))
                continue
            try:
                out[j] = R.resolve_path(cell, self.base_dir, self.restrict)
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(r), col, str(exc), str(cell).strip()))
        return out

    def _hashed(self, part: Any, col: str, rows: np.ndarray, issues: list[R.Issue]) -> dict[int, tuple[Path, str]]:
        out = {}
        for j, path in self._paths(part, col, rows, issues).items():
            try:
                out[j] = (path, R.digest(R.read_bytes(path, self.limits)))
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(rows[j]), col, str(exc), str(path)))
        return out

    def _cached(
        self,
        encoder_id: str,
        items: dict[int, tuple[Path, str]],
        n: int,
        shape: tuple[int, ...],
        decode: Callable[[list[Path]], tuple[np.ndarray, list[str | None]]],
        col: str,
        rows: np.ndarray,
        issues: list[R.Issue],
        desc: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cached outputs of ``decode`` for ``items``; rows it fails on become issues (every row with the same
        content gets the reason: the cache decodes identical files once)."""
        js = sorted(items)
        failures: dict[str, str] = {}  # content hash -> reason

        def compute(idx: list[int]) -> np.ndarray:
            values, reasons = decode([items[js[i]][0] for i in idx])
            for i, reason in zip(idx, reasons):
                if reason is not None:
                    failures[items[js[i]][1]] = reason
            return values

        x = np.zeros((n, *shape), np.float32)
        mask = np.zeros(n, bool)
        if js:
            values = self.cache.lookup(
                encoder_id,
                [items[j][1] for j in js],
                compute,
                batch_size=32,
                progress=self.progress,
                desc=desc,
                shape=shape,
            )
            for j, v in zip(js, values):
                if items[j][1] in failures or not np.isfinite(v).all():
                    issues.append(
                        R.Issue(int(rows[j]), col, failures.get(items[j][1], "could not be decoded"), str(items[j][0]))
                    )
                else:
                    x[j], mask[j] = v, True
        return x, mask

    # ------------------------------------------------------------------ text
    def _fit_text(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        if opts.get("encoder", "minilm_frozen") == "minilm":  # fine-tuned: token ids
            return {"max_length": int(opts.get("max_length", 64))}
        return {"dim": 384}  # frozen: cached sentence embeddings

    def _tx_text(self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]) -> tuple[np.ndarray, np.ndarray]:
        col = st["columns"][0]
        texts: dict[int, str] = {}
        for j, (cell, r) in enumerate(zip(part[col].tolist(), rows)):
            try:
                texts[j] = R.clean_text(cell)
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(r), col, str(exc)))
        n, js = len(rows), sorted(texts)
        mask = np.zeros(n, bool)
        mask[js] = True
        if st["encoder"] == "minilm":
            from mmfuse.encoders.pretrained import tokenize

            ids = np.zeros((n, st["max_length"]), np.int64)
            if js:
                ids[js] = tokenize([texts[j] for j in js], st["max_length"])
            return ids, mask
        from mmfuse.encoders.pretrained import embed_texts, text_encoder_version

        x = np.zeros((n, 384), np.float32)
        if js:
            strings = [texts[j] for j in js]
            x[js] = self.cache.lookup(
                text_encoder_version(),
                [R.digest(s) for s in strings],
                lambda idx: embed_texts([strings[i] for i in idx], progress=False),
                batch_size=64,
                progress=self.progress,
                desc=f"MiniLM {col}",
                shape=(384,),
            )
        return x, mask

    # ------------------------------------------------------------------ image
    def _fit_image(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        if opts.get("encoder", "efficientnet_lite0") == "efficientnet_lite0":
            return {"dim": 1280}
        channels = opts.get("channels")
        if channels is None:  # grey unless a training image has colour
            channels = 1
            for path in list(self._paths(part, cols[0], rows, []).values())[:50]:
                try:
                    if R.decode_image(R.read_bytes(path, self.limits), self.limits).mode not in (
                        "1",
                        "L",
                        "I",
                        "I;16",
                        "F",
                        "LA",
                    ):
                        channels = 3
                        break
                except R.ReadIssue:
                    continue
        return {"size": int(opts.get("size", 32)), "channels": int(channels)}

    def _tx_image(self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]) -> tuple[np.ndarray, np.ndarray]:
        col, n = st["columns"][0], len(rows)
        if st["encoder"] == "efficientnet_lite0":
            from mmfuse.encoders.pretrained import embed_images, image_encoder_version

            def decode(paths: list[Path]) -> tuple[np.ndarray, list[str | None]]:
                images, reasons = [], []
                for p in paths:
                    try:
                        images.append(R.decode_image(R.read_bytes(p, self.limits), self.limits))
                        reasons.append(None)
                    except R.ReadIssue as exc:
                        reasons.append(str(exc))
                good = iter(embed_images(images, progress=False) if images else [])
                return np.stack(
                    [next(good) if r is None else np.full(1280, np.nan, np.float32) for r in reasons]
                ), reasons

            encoder_id = (
                f"{image_encoder_version()}/downscale{self.limits.max_side}"  # huge images are downscaled first
            )
            return self._cached(
                encoder_id,
                self._hashed(part, col, rows, issues),
                n,
                (1280,),
                decode,
                col,
                rows,
                issues,
                f"EfficientNet {col}",
            )
        x = np.zeros((n, st["channels"], st["size"], st["size"]), np.float32)
        mask = np.zeros(n, bool)
        for j, path in self._paths(part, col, rows, issues).items():
            try:
                x[j], mask[j] = (
                    R.image_array(
                        R.decode_image(R.read_bytes(path, self.limits), self.limits), st["size"], st["channels"]
                    ),
                    True,
                )
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(rows[j]), col, str(exc), str(path)))
        return x, mask

    # ------------------------------------------------------------------ audio
    def _fit_audio(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        import soundfile

        sr = int(opts.get("sample_rate", 16000))
        seconds = opts.get("seconds")
        if seconds is None:  # 95th percentile of the training durations (file headers only), in [0.5, 10] s
            durations = []
            for path in list(self._paths(part, cols[0], rows, []).values())[:500]:
                try:
                    R.check_regular(path, self.limits)  # a FIFO or device would block soundfile
                    durations.append(soundfile.info(str(path)).duration)
                except Exception:  # noqa: BLE001 - unreadable files are reported by transform
                    continue
            seconds = round(float(np.clip(np.percentile(durations, 95) if durations else 1.0, 0.5, 10.0)), 1)
        n_fft = 2 ** int(math.ceil(math.log2(0.025 * sr)))
        return {
            "sample_rate": sr,
            "seconds": float(seconds),
            "n_mels": int(opts.get("n_mels", 40)),
            "n_fft": n_fft,
            "hop_length": max(1, int(0.01 * sr)),
        }

    def _tx_audio(self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]) -> tuple[np.ndarray, np.ndarray]:
        col = st["columns"][0]
        sr, n_samples = st["sample_rate"], int(round(st["seconds"] * st["sample_rate"]))
        frames = 1 + n_samples // st["hop_length"]
        shape = (st["n_mels"], frames)

        def decode(paths: list[Path]) -> tuple[np.ndarray, list[str | None]]:
            waves, reasons = np.zeros((len(paths), n_samples), np.float32), []
            for k, p in enumerate(paths):
                try:
                    waves[k] = R.decode_audio(R.read_bytes(p, self.limits), sr, n_samples)
                    reasons.append(None)
                except R.ReadIssue as exc:
                    reasons.append(str(exc))
            spec = R.log_mel(waves, sr, st["n_mels"], st["n_fft"], st["hop_length"])
            spec[[r is not None for r in reasons]] = np.nan
            return spec, reasons

        frontend = f"mels{st['n_mels']}/fft{st['n_fft']}/hop{st['hop_length']}"
        encoder_id = f"logmel/sr{sr}/n{n_samples}/{frontend}/resample_poly-centre-crop/std"
        return self._cached(
            encoder_id,
            self._hashed(part, col, rows, issues),
            len(rows),
            shape,
            decode,
            col,
            rows,
            issues,
            f"log-mel {col}",
        )

    # ------------------------------------------------------------------ sequence (.npy)
    def _fit_sequence(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        lengths, dim = [], None
        for path in list(self._paths(part, cols[0], rows, []).values())[:500]:
            try:
                arr = R.decode_sequence(R.read_bytes(path, self.limits))
            except R.ReadIssue:
                continue
            lengths.append(arr.shape[0])
            dim = dim or arr.shape[1]
        if dim is None:
            raise DataError(
                f"No readable .npy file in sequence column {cols[0]!r} of the training rows; "
                f"check the paths (relative to {str(self.base_dir)!r})."
            )
        return {"dim": int(dim), "max_len": int(opts.get("max_len", min(512, int(np.percentile(lengths, 95)))))}

    def _tx_sequence(
        self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]
    ) -> tuple[np.ndarray, np.ndarray]:
        col, n, T, F = st["columns"][0], len(rows), st["max_len"], st["dim"]
        x, mask = np.zeros((n, T, F), np.float32), np.zeros(n, bool)
        for j, path in self._paths(part, col, rows, issues).items():
            try:
                arr = R.decode_sequence(R.read_bytes(path, self.limits))
                if arr.shape[1] != F:
                    raise R.ReadIssue(f"array has {arr.shape[1]} features per step, the model expects {F}")
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(rows[j]), col, str(exc), str(path)))
                continue
            x[j, : min(T, len(arr))], mask[j] = arr[:T], True
        return x, mask

    # ------------------------------------------------------------------ vector
    def _vectors(
        self, part: Any, cols: list[str], grouped: bool, rows: np.ndarray, issues: list[R.Issue], dim: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw vectors ``(N, D)`` (NaN where empty) and the rows that have one."""
        n = len(rows)
        if grouped:  # numeric columns: a row is absent when all of them are empty
            if all(W.numeric_dtype_columns(part, cols)):
                x = np.empty((n, len(cols)), np.float32)
                with self._stage(f"reading {len(cols):,} columns {cols[0]}..{cols[-1]} of {n:,} rows", len(cols)):
                    for sl, v in W.numeric_chunks(part, cols, np.float32):
                        x[:, sl] = v
            else:
                x = part[cols].apply(_to_float).to_numpy(np.float32)
            mask = ~np.isnan(x).all(1)
            for j in np.flatnonzero(~mask):
                issues.append(R.Issue(int(rows[j]), f"{cols[0]}..{cols[-1]}", "all values empty"))
            return x, mask
        x, reasons, dim = W.vectors(part[cols[0]], dim)  # Arrow lists, JSON strings, arrays: no per-cell parsing
        if x is not None:
            mask = np.ones(n, bool)
            for j, reason in sorted(reasons.items()):
                mask[j] = False
                issues.append(R.Issue(int(rows[j]), cols[0], reason))
            return x, mask
        vecs, mask = {}, np.zeros(n, bool)
        for j, (cell, r) in enumerate(zip(part[cols[0]].tolist(), rows)):
            try:
                if not isinstance(cell, (list, tuple, np.ndarray)) and R.is_missing(cell):
                    raise R.ReadIssue("no value")
                v = R.parse_vector(cell)
                if dim is not None and v.size != dim:
                    raise R.ReadIssue(f"vector has {v.size} values, expected {dim}")
                dim = v.size if dim is None else dim
                vecs[j], mask[j] = v, True
            except R.ReadIssue as exc:
                issues.append(R.Issue(int(r), cols[0], str(exc)))
        x = np.full((n, dim or 1), np.nan, np.float32)
        for j, v in vecs.items():
            x[j] = v
        return x, mask

    def _fit_vector(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        grouped = any(cols == list(g) for g in self.schema.groups.values())
        x, mask = self._vectors(part, cols, grouped, rows, [], None)
        if not mask.any():
            raise DataError(
                f"Vector column(s) {cols[0]!r}{'..' + repr(cols[-1]) if grouped else ''} "
                f"hold no usable value in the training rows; drop them in the schema."
            )
        mean, std = np.nanmean(x[mask], 0), np.nanstd(x[mask], 0)
        return {
            "grouped": grouped,
            "dim": int(x.shape[1]),
            "mean": np.nan_to_num(mean).tolist(),
            "std": np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0).tolist(),
        }

    def _tx_vector(self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]) -> tuple[np.ndarray, np.ndarray]:
        cols = st["columns"]
        x, mask = self._vectors(part, cols, st["grouped"], rows, issues, st["dim"])
        z = (x - np.asarray(st["mean"], np.float32)) / np.asarray(st["std"], np.float32)  # (x - mean_train) / std_train
        for j in np.flatnonzero(mask & np.isnan(z).any(1)):
            issues.append(
                R.Issue(
                    int(rows[j]),
                    f"{cols[0]}..{cols[-1]}",
                    f"{int(np.isnan(z[j]).sum())} empty value(s) set to the training mean",
                    action="imputed",
                )
            )
        z = np.nan_to_num(z, nan=0.0)
        z[~mask] = 0.0
        return z.astype(np.float32), mask

    # ------------------------------------------------------------------ tabular (numeric + categorical)
    def _fit_tabular(self, part: Any, cols: list[str], opts: dict, rows: np.ndarray) -> dict[str, Any]:
        cap = int(opts.get("max_categories", 255))
        numeric, categorical = {}, {}
        num = [c for c in cols if self.schema.columns[c] == "numeric"]
        typed = [c for c, ok in zip(num, W.numeric_dtype_columns(part, num)) if ok]
        with self._stage(f"statistics of {len(typed):,} numeric columns over {len(part):,} rows", len(typed)):
            for sl, v in W.numeric_chunks(part, typed, np.float64):  # (N, k) blocks, not 100,000 Series
                seen = np.isfinite(v).any(0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty column: the mean of nothing
                    mu, sd = np.nanmean(v, 0), np.nanstd(v, 0)
                for c, ok, m, d in zip(typed[sl], seen, mu.tolist(), sd.tolist()):
                    numeric[c] = [m, d if d > 0 else 1.0] if ok else [0.0, 1.0]
        typed_set = set(typed)
        for c in cols:
            if c in typed_set:
                continue
            if self.schema.columns[c] == "numeric":
                v = _to_float(part[c]).to_numpy(np.float64)
                mu, sd = (np.nanmean(v), np.nanstd(v)) if np.isfinite(v).any() else (0.0, 1.0)
                numeric[c] = [float(mu), float(sd) if sd > 0 else 1.0]
            else:
                counts = part[c].dropna().map(label_key).value_counts()
                categorical[c] = [UNK] + sorted(counts.index[:cap].tolist())
        return {
            "numeric": numeric,
            "categorical": categorical,
            "dim": len(numeric) + sum(len(v) for v in categorical.values()),
        }

    def _tx_tabular(
        self, part: Any, st: dict, rows: np.ndarray, issues: list[R.Issue]
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(rows)
        present = np.zeros(n, bool)
        names = sorted(st["numeric"])  # sorted: the layout never depends on JSON key order
        x_num = np.zeros((n, len(names)), np.float32)
        typed = dict(zip(names, W.numeric_dtype_columns(part, names)))
        fast = [c for c in names if typed[c]]
        stats = np.asarray([st["numeric"][c] for c in names], np.float64).reshape(-1, 2)
        where = {c: k for k, c in enumerate(names)}
        bad: list[tuple[int, int]] = []  # (row position j, column index k) of cells that are not finite numbers
        with self._stage(f"standardising {len(fast):,} numeric columns of {n:,} rows", len(fast)):
            for sl, v in W.numeric_chunks(part, fast, np.float32):  # (N, k): one block per CHUNK columns
                idx = np.fromiter((where[c] for c in fast[sl]), np.int64, len(fast[sl]))
                ok = np.isfinite(v)
                present |= ok.any(1)
                mu, sd = stats[idx, 0].astype(np.float32), stats[idx, 1].astype(np.float32)
                x_num[:, idx] = np.where(ok, (v - mu) / sd, 0.0)  # (x - mean_train) / std_train, NaN -> the mean
                jj, kk = np.nonzero(~ok)
                bad += zip(jj.tolist(), idx[kk].tolist())
        for c in names:
            if typed[c]:
                continue
            k, (mu, sd) = where[c], st["numeric"][c]
            v = _to_float(part[c]).to_numpy(np.float64)
            ok = np.isfinite(v)
            present |= ok
            x_num[:, k] = np.where(ok, (v - mu) / sd, 0.0)
            bad += [(int(j), k) for j in np.flatnonzero(~ok)]
        self._numeric_issues(part, names, rows, sorted(bad), issues)
        blocks = [x_num]
        for c in sorted(st["categorical"]):
            vocab = st["categorical"][c]
            index = {k: i for i, k in enumerate(vocab)}
            onehot = np.zeros((n, len(vocab)), np.float64)
            for j, (cell, r) in enumerate(zip(part[c].tolist(), rows)):
                if R.is_missing(cell):
                    issues.append(R.Issue(int(r), c, f"no value, encoded as {UNK}", action="imputed"))
                    k = 0
                else:
                    present[j] = True
                    k = index.get(label_key(cell), 0)
                    if k == 0:
                        issues.append(
                            R.Issue(
                                int(r), c, f"category {cell!r} not seen in training, encoded as {UNK}", action="imputed"
                            )
                        )
                onehot[j, k] = 1.0
            blocks.append(onehot)
        x = x_num if len(blocks) == 1 else np.concatenate(blocks, 1).astype(np.float32)
        x[~present] = 0.0
        return x, present

    def _numeric_issues(
        self, part: Any, names: list[str], rows: np.ndarray, bad: list[tuple[int, int]], issues: list[R.Issue]
    ) -> None:
        """One imputed-cell issue per cell, or, for a row with more than ``MAX_CELL_ISSUES`` such cells (a sparse
        table written with empty cells), one issue counting them: the log stays readable and small."""
        per_row: dict[int, list[int]] = {}
        for j, k in bad:
            per_row.setdefault(j, []).append(k)
        for j, ks in per_row.items():
            if len(ks) > MAX_CELL_ISSUES:
                issues.append(
                    R.Issue(
                        int(rows[j]),
                        f"{names[ks[0]]}..{names[ks[-1]]}",
                        f"{len(ks):,} of {len(names):,} numeric values empty or not numbers, set to the training mean",
                        action="imputed",
                    )
                )
                continue
            for k in ks:
                raw = part[names[k]].iloc[j]
                issues.append(
                    R.Issue(int(rows[j]), names[k], f"{_bad_number(raw)} set to the training mean", action="imputed")
                )


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _to_float(s: Any) -> Any:
    """Numbers of a column; empty, unparsable and infinite cells become NaN (then imputed and reported)."""
    import pandas as pd

    x = pd.to_numeric(s, errors="coerce").astype(float)
    return x.where(np.isfinite(x))


def _is_inf(cell: Any) -> bool:
    return isinstance(cell, (float, np.floating)) and math.isinf(cell)


def _bad_number(cell: Any) -> str:
    """How a numeric cell that is not a finite number reads in the issue log."""
    if R.is_missing(cell):
        return "no value"
    try:
        if math.isinf(float(cell)):
            return f"infinite value {cell!r}"
    except (TypeError, ValueError):
        pass
    text = str(cell)
    return f"non-numeric value {text[:40]!r}"
