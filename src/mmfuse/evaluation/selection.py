"""Honest model selection for a table: capacity that follows the data, cross-validated candidates, greedy
ensemble selection, and a refit on every training row.

The procedure (what ``mmfuse fit`` does unless one ``--fusion`` is named):

1. **Candidates** (:data:`PRESETS`): linear models from scikit-learn (:mod:`mmfuse.evaluation.classical`:
   ``sklearn_concat`` and one per modality) and fusion methods sized by :func:`capacity`.
2. **Out-of-fold predictions.** Tables under :data:`CV_MAX_ROWS` rows are split by stratified ``k``-fold
   cross-validation (repeated with other seeds where the preset says so); larger ones by one seeded, stratified
   validation split; a user's ``val_table`` is that split. In every fold a fusion model early-stops (on the
   validation loss: accuracy on a few dozen rows ties for many epochs, and the first of the tied epochs
   under-trains the refit) on a further 15 % of the fold's *training* rows, so the held-out fold is scored and
   never chosen on; a linear
   model picks its regularisation by inner cross-validation on the fold's training rows. Each candidate gets
   out-of-fold (OOF) predictions for every row, a score (the task kind's main metric on them) and its spread
   over folds.
3. **Ensemble selection** (Caruana et al., ICML 2004; the method AutoGluon's weighted ensemble uses): start
   from the best single candidate, then greedily add, with replacement, the candidate whose inclusion most
   improves the OOF score of the averaged outputs (``p = sum_i w_i p_i``, ``w_i`` = times chosen / rounds);
   the best round is kept. The pass is bagged (the paper's section 3.3: 20 passes over random halves of the
   candidates, weights averaged) against overfitting a few hundred OOF rows, and the bagged weights stand only
   if their blend scores at least the best single candidate, so the ensemble is never below its best member on
   OOF data. Scores compare the main metric first and then a proper loss (NLL for classification, MSE for
   regression), so accuracy ties are broken by calibration; among exact ties the simpler candidate (earlier in
   the list) wins.
4. **Refit** on all training rows: each member with a weight is trained again, a fusion model for the median
   number of epochs at which its folds' validation was best (no early stopping: no row is left to stop on), a
   linear model with its regularisation chosen again by inner CV.

Nothing here reads a test table; the caller keeps test rows out of ``dataset``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import Dataset, Subset

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.tasks import task_kind

CV_MAX_ROWS = 5000  # at most this many rows: k-fold cross-validation; more: one validation split
EARLY_STOP_FRACTION = 0.15  # share of a fold's training rows a fusion model early-stops on


@dataclass(frozen=True)
class Preset:
    """How much selection to do: which candidates, how many folds and repeats, how many ensemble rounds."""

    name: str
    fusions: tuple[str, ...]
    per_modality_linear: bool  # besides sklearn_concat, one linear model per modality
    folds: int  # k of the cross-validation for small tables (0: one validation split whatever the size)
    repeats: int  # cross-validation repeats (other seeds) for tables up to REPEAT_MAX_ROWS rows
    rounds: int = 25  # ensemble-selection rounds


REPEAT_MAX_ROWS = 2000
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("fast", ("concat",), False, 0, 1),
        Preset("medium", ("concat", "late_mean"), True, 5, 1),
        Preset(
            "best",
            ("concat", "late_mean", "gated", "modality_attention", "low_rank_tensor", "weighted_sum", "hybrid"),
            True,
            5,
            2,
            50,
        ),
    )
}
DEFAULT_PRESET = "medium"


def preset(name: str) -> Preset:
    from mmfuse.errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; valid presets: {', '.join(PRESETS)}.")
    return PRESETS[name]


# ---------------------------------------------------------------------------------------------- capacity
def capacity(encoders: dict[str, dict[str, Any]], n_rows: int, num_outputs: int) -> tuple[dict, dict, list[str]]:
    """Model and training defaults that follow the table: ``(model options, train options, plan lines)``.

    With ``n`` training rows, ``K`` outputs and a vector modality of ``D`` columns (an ``mlp`` encoder):

    * encoder path: one linear layer (``hidden=[]``) when the table is small (``n < 2000``) or the modality is
      wide (``D >= n``), else one hidden layer of 128; input dropout 0.2 on a wide modality (``D >= n``);
    * fused width ``hidden = min(512, max(64, 2K))``, so 68 classes never pass through 64 units;
    * regularisation: dropout 0.5 / 0.3 / 0.1 and AdamW weight decay 1e-2 / 1e-3 / 1e-4 for ``n < 1000`` /
      ``n < 5000`` / larger;
    * batch ``min(64, max(16, n // 10))``; epochs so that training sees about 600 batches, within [20, 200],
      with patience ``max(5, epochs // 8)`` (early stopping ends most runs far sooner).

    Options the user gives (``--set``, ``--hidden``, ``--max-epochs``, ...) override these.
    """
    n, k = max(int(n_rows), 1), max(int(num_outputs), 1)
    dropout, wd = (0.5, 1e-2) if n < 1000 else (0.3, 1e-3) if n < 5000 else (0.1, 1e-4)
    enc: dict[str, dict[str, Any]] = {}
    paths = []
    for m, e in encoders.items():
        e = dict(e)
        if e.get("name") == "mlp":
            d = int(e.get("in_dim", 0))
            wide = d >= n
            e["hidden"] = [] if (n < 2000 or wide) else [128]
            e["dropout"] = dropout
            if wide:
                e["input_dropout"] = 0.2
            paths.append(f"{m}: {d} -> " + ("linear" if not e["hidden"] else "128") + f" -> {e.get('out_dim', 64)}")
        enc[m] = e
    hidden = min(512, max(64, 2 * k))
    batch = min(64, max(16, n // 10))
    steps = max(1, math.ceil(n / batch))
    epochs = int(min(200, max(20, math.ceil(600 / steps))))
    model = {"encoders": enc, "hidden": hidden}
    train = {"batch_size": batch, "max_epochs": epochs, "patience": max(5, epochs // 8), "weight_decay": wd}
    lines = [
        f"capacity for {n} training rows, {k} outputs: fused width {hidden}, dropout {dropout}, weight decay {wd}, "
        f"batch {batch}, up to {epochs} epochs (patience {train['patience']})",
        *(f"  {p}" for p in paths),
    ]
    return model, train, lines


# ---------------------------------------------------------------------------------------------- splits
def split_rows(y: Sequence[Any] | None, n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
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


def plan_folds(
    strata: Sequence[Any] | None, n: int, p: Preset, seed: int, val_fraction: float = 0.15
) -> tuple[list[list[tuple[np.ndarray, np.ndarray]]], str]:
    """``([repeat][fold] = (train rows, held-out rows)], protocol sentence)`` for ``n`` rows (module docstring)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if p.folds and n <= CV_MAX_ROWS:
        k = p.folds
        if strata is not None:
            counts = np.unique([str(s) for s in strata], return_counts=True)[1]
            k = int(min(k, counts.min())) if counts.min() >= 2 else 0
        if k >= 2:
            repeats = p.repeats if n <= REPEAT_MAX_ROWS else 1
            out = []
            for r in range(repeats):
                if strata is not None:
                    labels = np.asarray([str(s) for s in strata])
                    splitter = StratifiedKFold(k, shuffle=True, random_state=seed + r)
                    out.append([(a, b) for a, b in splitter.split(np.zeros(n), labels)])
                else:
                    out.append([(a, b) for a, b in KFold(k, shuffle=True, random_state=seed + r).split(np.zeros(n))])
            kind = "stratified " if strata is not None else ""
            rep = f", {repeats} repeats" if repeats > 1 else ""
            return out, f"{k}-fold {kind}cross-validation{rep} on {n:,} training rows"
    a, b = split_rows(strata, n, val_fraction, seed)
    why = "" if p.folds else f" (preset {p.name!r})"
    if p.folds and n > CV_MAX_ROWS:
        why = f" (over {CV_MAX_ROWS:,} rows)"
    return [[(a, b)]], f"one validation split of {len(b):,} of {n:,} training rows{why}"


# ---------------------------------------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """A fusion method (``fusion``) or a linear model on some modalities (``modalities``)."""

    name: str
    fusion: str | None = None
    modalities: list[str] | None = None

    @property
    def linear(self) -> bool:
        return self.fusion is None


@dataclass
class Scored:
    """A candidate's out-of-fold record."""

    candidate: Candidate
    oof: np.ndarray | None = None  # (N, C): probabilities (or values), averaged over repeats
    fold_scores: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    score: float | None = None  # main metric on the OOF predictions
    metrics: dict[str, float] = field(default_factory=dict)

    def row(self, main: str) -> dict[str, Any]:
        c = self.candidate
        out: dict[str, Any] = {
            "method": c.name,
            "kind": "classical" if c.linear else "fusion",
            "fusion": c.fusion or "-",
            "cv_" + main: self.score,
            "cv_std": float(np.std(self.fold_scores)) if self.fold_scores else None,
            "folds": len(self.fold_scores),
            "epochs": int(np.median(self.best_epochs)) if self.best_epochs else None,
            "seconds": round(self.seconds, 2),
        }
        if self.error:
            out["error"] = self.error
        return out


FEATURE_ENCODERS = ("mlp", "identity")  # encoders whose input is a feature vector a linear model can read


def candidates_for(
    p: Preset, encoders: dict[str, dict[str, Any]], fusions: Sequence[str] | None = None
) -> list[Candidate]:
    """The preset's candidates, simplest first: linear models, then the preset's fusions (or ``fusions``).

    Linear models read only the modalities whose inputs are feature vectors (numbers, cached frozen embeddings:
    ``mlp`` / ``identity`` encoders), never token ids, pixels or waveforms that a trainable encoder reads.
    """
    from mmfuse.evaluation.classical import linear_groups

    features = [m for m, e in encoders.items() if e.get("name") in FEATURE_ENCODERS]
    groups = linear_groups(features) if features else {}
    if not p.per_modality_linear and groups:
        groups = {"sklearn_concat": groups["sklearn_concat"]}
    names = p.fusions if fusions is None else fusions
    return [Candidate(n, modalities=m) for n, m in groups.items()] + [Candidate(f, fusion=f) for f in names]


@dataclass
class Selection:
    """What :func:`select` found."""

    scored: list[Scored]
    weights: dict[str, float]  # candidate name -> ensemble weight (one entry: a single model)
    oof: np.ndarray  # the chosen model's OOF outputs
    metrics: dict[str, float]  # the chosen model's OOF metrics
    protocol: str
    reason: str
    covered: np.ndarray  # the rows with an out-of-fold prediction (every row under CV; the held-out part otherwise)


def held_out(folds: list[list[tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
    """The rows that get an out-of-fold prediction: those held out by the first repeat's folds (sorted)."""
    return np.unique(np.concatenate([va for _, va in folds[0]]))


def _key(out: np.ndarray, y: np.ndarray, task: str) -> tuple[float, float]:
    """Ascending sort key of OOF outputs: the main metric (sign so that lower is better), then a proper loss."""
    from mmfuse.evaluation.predict import output_metrics

    kind = task_kind(task)
    m = output_metrics(out, y, task)
    main = -m[kind.main_metric] if kind.higher_is_better else m[kind.main_metric]
    second = m.get("nll", m.get("mse", -m.get("subset_accuracy", 0.0)))
    return (round(main, 12), round(second, 12))


def ensemble_selection(oofs: Sequence[np.ndarray], y: np.ndarray, task: str, rounds: int = 25) -> np.ndarray:
    """Caruana et al. (2004) greedy ensemble selection with replacement over OOF outputs (module docstring, step 3).

    Returns weights (one per member of ``oofs``, summing to 1) of the best round; round 1 is the best single
    member, so the result is never worse than it on ``y``. Ties keep the earlier (simpler) member.
    """
    keys = [_key(o, y, task) for o in oofs]
    first = min(range(len(oofs)), key=lambda i: (keys[i], i))
    counts = np.zeros(len(oofs))
    counts[first] = 1
    total = oofs[first].astype(np.float64)
    best_key, best_counts = keys[first], counts.copy()
    for r in range(1, rounds):
        trials = [_key((total + o) / (r + 1), y, task) for o in oofs]
        i = min(range(len(oofs)), key=lambda j: (trials[j], j))
        counts[i] += 1
        total = total + oofs[i]
        if trials[i] < best_key:
            best_key, best_counts = trials[i], counts.copy()
    return best_counts / best_counts.sum()


def bagged_ensemble_selection(
    oofs: Sequence[np.ndarray], y: np.ndarray, task: str, rounds: int = 25, bags: int = 20, seed: int = 0
) -> np.ndarray:
    """Bagged ensemble selection (Caruana et al. 2004, section 3.3): :func:`ensemble_selection` on ``bags`` random
    halves of the candidates, weights averaged. A greedy pass over a few hundred OOF rows overfits them (on a
    100-row table one pass chose 0.94 on test where the best single model had 0.95); averaging over bags
    smooths the weights. The bagged weights are kept when their blend scores at least the best single candidate on
    the OOF rows; otherwise the plain pass is used, so the result is never below its best member there.
    """
    n = len(oofs)
    if n < 3:
        return ensemble_selection(oofs, y, task, rounds)
    rng = np.random.default_rng(seed)
    weights = np.zeros(n)
    for _ in range(bags):
        idx = np.sort(rng.choice(n, max(2, n // 2), replace=False))
        weights[idx] += ensemble_selection([oofs[i] for i in idx], y, task, rounds)
    weights /= weights.sum()
    best_single = min(_key(o, y, task) for o in oofs)
    blend = np.sum([w * o for w, o in zip(weights, oofs)], 0)
    return weights if _key(blend, y, task) <= best_single else ensemble_selection(oofs, y, task, rounds)


def _outputs(model: nn.Module, dataset: Dataset, task: str) -> np.ndarray:
    from mmfuse.evaluation.predict import predict

    return task_kind(task).activate(predict(model, dataset, batch_size=256).prediction)


class Selector:
    """Runs the module docstring's procedure on ``dataset`` (every training row, test rows kept out).

    Args:
        dataset: contract dataset of the training rows.
        y: targets ``(N,)`` or ``(N, T)`` in the dataset's encoding (what the models are trained on).
        task: the task kind's name.
        num_outputs: classes / targets / labels.
        model_config: ``fusion name -> ModelConfig`` (capacity and user options applied).
        train_config: the TrainConfig for fusion candidates (epochs, batch, seed, ...).
        log: receives one line per step.
        jobs: candidates scored at once in worker processes (:mod:`mmfuse.evaluation.jobs`); the scores are those
            of one process up to the last bits of floating-point sums.
    """

    def __init__(
        self,
        dataset: Dataset,
        y: np.ndarray,
        task: str,
        num_outputs: int,
        model_config: Callable[[str], ModelConfig],
        train_config: TrainConfig,
        log: Callable[[str], None] = print,
        jobs: int = 1,
    ) -> None:
        self.dataset, self.y, self.task, self.num_outputs = dataset, y, task_kind(task).name, num_outputs
        self.model_config, self.train_config, self.log, self.jobs = model_config, train_config, log, jobs
        self._features: dict[tuple[str, ...], np.ndarray] = {}

    def features(self, modalities: list[str]) -> np.ndarray:
        from mmfuse.evaluation.classical import features

        key = tuple(modalities)
        if key not in self._features:
            self._features[key] = features(self.dataset, modalities)[0]
        return self._features[key]

    # one candidate on one fold -------------------------------------------------------------------
    def train(
        self, c: Candidate, rows: np.ndarray, stop_rows: np.ndarray | None, epochs: int | None, max_time: float | None
    ) -> tuple[nn.Module, int | None, dict[str, Any]]:
        """``(model, best epoch, member entry of ModelConfig.members)`` trained on ``rows``; a fusion model
        early-stops on ``stop_rows``, or trains ``epochs`` epochs when they are ``None``."""
        from mmfuse.evaluation.classical import fit_linear
        from mmfuse.training.fit import fit

        if c.linear:
            mods = list(c.modalities or [])
            x = self.features(mods)
            lin = fit_linear(x[rows], self.y[rows], mods, self.task, self.num_outputs)
            entry = {"linear": {"modalities": mods, "in_features": lin.in_features, "num_outputs": self.num_outputs}}
            return lin, None, entry
        cfg = self.model_config(str(c.fusion))
        tcfg = dataclasses.replace(self.train_config, max_time=max_time, progress_bar=False)
        if tcfg.monitor is None:  # early stopping on the loss: on a few dozen rows accuracy ties for many epochs
            tcfg = dataclasses.replace(tcfg, monitor="loss")
        if stop_rows is None:
            tcfg = dataclasses.replace(tcfg, max_epochs=max(1, int(epochs or 1)))
        result = fit(
            cfg,
            tcfg,
            Subset(self.dataset, rows.tolist()),
            None if stop_rows is None else Subset(self.dataset, stop_rows.tolist()),
        )
        return result.model, result.best_epoch, {"model": result.model_cfg.to_dict()}

    def _strata(self, rows: np.ndarray) -> list[str] | None:
        return [str(int(v)) for v in self.y[rows]] if task_kind(self.task).single_label else None

    def score(self, c: Candidate, folds: list[list[tuple[np.ndarray, np.ndarray]]], deadline: float | None) -> Scored:
        """Out-of-fold outputs of ``c`` over every repeat and fold."""
        t0 = time.perf_counter()
        s = Scored(c)
        kind = task_kind(self.task)
        try:
            repeats: list[np.ndarray] = []
            for r, rep in enumerate(folds):
                oof: np.ndarray | None = None
                for f, (tr, va) in enumerate(rep):
                    left = None if deadline is None else deadline - time.perf_counter()
                    if left is not None and left <= 0:
                        raise TimeoutError("skipped: the time limit was reached")
                    stop = None
                    fit_rows = tr
                    if not c.linear:
                        a, b = split_rows(self._strata(tr), len(tr), EARLY_STOP_FRACTION, 1000 * r + f)
                        fit_rows, stop = tr[a], tr[b]
                    model, best, _ = self.train(c, fit_rows, stop, None, left)
                    out = _outputs(model, Subset(self.dataset, va.tolist()), self.task)
                    if oof is None:
                        oof = np.zeros((len(self.y), out.shape[1]))
                    oof[va] = out
                    s.fold_scores.append(_metric(out, self.y[va], self.task, kind.main_metric))
                    if best is not None:
                        s.best_epochs.append(best)
                if oof is not None:
                    repeats.append(oof)
            s.oof = np.mean(repeats, 0)
            covered = held_out(folds)
            s.metrics = _metrics(s.oof[covered], self.y[covered], self.task)
            s.score = s.metrics[kind.main_metric]
        except Exception as exc:  # noqa: BLE001 - a failed candidate is a leaderboard row, not the run's end
            s.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
        s.seconds = time.perf_counter() - t0
        return s

    # the whole procedure --------------------------------------------------------------------------
    def select(
        self,
        candidates: list[Candidate],
        folds: list[list[tuple[np.ndarray, np.ndarray]]],
        protocol: str,
        rounds: int = 25,
        time_limit: float | None = None,
    ) -> Selection:
        """Score every candidate in order, then ensemble-select. With ``time_limit``, no fold starts after three
        quarters of it (a quarter is kept for the refit) except the first candidate's, so there is always a model;
        the candidates left out are rows whose error says so."""
        kind = task_kind(self.task)
        main = kind.main_metric
        start = time.perf_counter()
        deadline = None if time_limit is None else start + 0.75 * time_limit  # a quarter is kept for the refit
        self.log(f"selection: {protocol}; {len(candidates)} candidates, scored on out-of-fold {main}")

        def done(i: int, s: Scored) -> None:
            if s.error:
                self.log(f"  [{i + 1}/{len(candidates)}] {s.candidate.name}: failed ({s.error})")
            else:
                spread = f" ± {np.std(s.fold_scores):.4f}" if len(s.fold_scores) > 1 else ""
                self.log(
                    f"  [{i + 1}/{len(candidates)}] {s.candidate.name}: {main} {s.score:.4f}{spread} "
                    f"({s.seconds:.1f} s)"
                )

        scored = self._score_all(candidates, folds, deadline, done)
        ok = [s for s in scored if s.oof is not None]
        if not ok:
            from mmfuse.errors import DataError

            raise DataError(
                "Every candidate failed during selection (first: "
                f"{scored[0].candidate.name}: {scored[0].error}); see the lines above."
            )
        covered = held_out(folds)
        y = self.y[covered]
        full = [s.oof for s in ok if s.oof is not None]
        oofs = [o[covered] for o in full]
        w = bagged_ensemble_selection(oofs, y, self.task, rounds) if len(ok) > 1 else np.ones(1)
        weights = {ok[i].candidate.name: float(v) for i, v in enumerate(w) if v > 0}
        blend = np.sum([v * o for v, o in zip(w, full)], 0)
        metrics = _metrics(blend[covered], y, self.task)
        best = min(range(len(ok)), key=lambda i: (_key(oofs[i], y, self.task), i))
        if len(weights) == 1:
            reason = f"{ok[best].candidate.name} has the best out-of-fold {main} ({ok[best].score:.4f}); "
            reason += "no blend of candidates improved on it"
        else:
            reason = (
                f"the weighted blend of {len(weights)} candidates scores {metrics[main]:.4f} out-of-fold, "
                f"the best single one ({ok[best].candidate.name}) {ok[best].score:.4f}"
            )
        self.log(f"chosen: {_describe(weights)} - {reason}")
        return Selection(scored, weights, blend, metrics, protocol, reason, covered)

    def _score_all(
        self,
        candidates: list[Candidate],
        folds: list[list[tuple[np.ndarray, np.ndarray]]],
        deadline: float | None,
        done: Callable[[int, Scored], None],
    ) -> list[Scored]:
        """Every candidate scored, in order, over ``self.jobs`` processes; the first (simplest) always runs, the
        others only before ``deadline``."""
        from mmfuse.evaluation.jobs import run_jobs

        items = [(c, deadline if i else None) for i, c in enumerate(candidates)]
        if self.jobs == 1:
            return run_jobs(_score_item, items, 1, (self, folds), done)
        # workers get a picklable copy: the fusion configs resolved here, no logging (this process logs)
        configs = _Configs({str(c.fusion): self.model_config(str(c.fusion)) for c in candidates if not c.linear})
        copy = Selector(self.dataset, self.y, self.task, self.num_outputs, configs, self.train_config, _quiet)
        return run_jobs(_score_item, items, self.jobs, (copy, folds), done)

    def refit(self, selection: Selection, max_time: float | None = None) -> tuple[nn.Module, ModelConfig]:
        """Train every member with a weight again on all rows; returns ``(model, its ModelConfig)`` — one model, or
        an :class:`~mmfuse.models.ensemble.Ensemble` of them."""
        from mmfuse.models.ensemble import Ensemble

        by_name = {s.candidate.name: s for s in selection.scored}
        rows = np.arange(len(self.y))
        members, entries = [], []
        for name, w in selection.weights.items():
            s = by_name[name]
            epochs = int(np.median(s.best_epochs)) if s.best_epochs else self.train_config.max_epochs
            self.log(f"refit {name} on all {len(rows):,} rows" + ("" if s.candidate.linear else f", {epochs} epochs"))
            model, _, entry = self.train(s.candidate, rows, None, epochs, max_time)
            members.append(model)
            entries.append({"weight": w, **entry})
        if len(members) == 1 and "model" in entries[0]:
            from mmfuse.config import from_dict

            return members[0].eval(), from_dict(ModelConfig, entries[0]["model"])
        first = next((e["model"] for e in entries if "model" in e), None)
        encoders = first["encoders"] if first else self.model_config("concat").encoders
        cfg = ModelConfig(
            encoders=encoders, num_outputs=self.num_outputs, task=self.task, fusion="ensemble", members=entries
        )
        return Ensemble(members, [e["weight"] for e in entries], self.task).eval(), cfg


class _Configs(dict):
    """``fusion name -> ModelConfig`` as a picklable callable (the Selector's ``model_config`` in a worker)."""

    def __call__(self, fusion: str) -> ModelConfig:
        return self[fusion]


def _quiet(line: str) -> None:
    pass


def _score_item(
    state: tuple[Selector, list[list[tuple[np.ndarray, np.ndarray]]]], item: tuple[Candidate, float | None]
) -> Scored:
    selector, folds = state
    candidate, deadline = item
    return selector.score(candidate, folds, deadline)


def _describe(weights: dict[str, float]) -> str:
    return " + ".join(f"{w:.2f} x {n}" for n, w in sorted(weights.items(), key=lambda kv: -kv[1]))


def _metrics(out: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    from mmfuse.evaluation.predict import output_metrics

    return output_metrics(out, y, task)


def _metric(out: np.ndarray, y: np.ndarray, task: str, name: str) -> float:
    return float(_metrics(out, y, task)[name])
