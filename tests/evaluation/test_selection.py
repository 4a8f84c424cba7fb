"""Selection: capacity rule, folds, greedy ensemble selection, refit on every row, and the selected table model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfuse.config import TrainConfig
from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.evaluation.predict import output_metrics
from mmfuse.evaluation.selection import (
    PRESETS,
    Candidate,
    Selector,
    bagged_ensemble_selection,
    capacity,
    ensemble_selection,
    plan_folds,
)


def test_capacity_follows_rows_columns_and_classes():
    enc = {"wide": {"name": "mlp", "in_dim": 5000, "out_dim": 64}, "small": {"name": "mlp", "in_dim": 6, "out_dim": 64}}
    model, train, lines = capacity(enc, 300, 68)
    assert model["hidden"] >= 68  # 68 classes never pass through a narrower fused layer
    assert model["encoders"]["wide"]["hidden"] == [] and model["encoders"]["wide"]["input_dropout"] > 0
    assert model["encoders"]["small"]["dropout"] == 0.5 and train["weight_decay"] == 1e-2
    big_model, big_train, _ = capacity(enc, 50_000, 2)
    assert big_model["encoders"]["small"]["hidden"] == [128] and big_model["hidden"] == 64
    assert big_train["weight_decay"] < train["weight_decay"] and "300 training rows" in lines[0]


def test_folds_cover_every_row_once_per_repeat_and_large_tables_use_one_split():
    y = [str(i % 3) for i in range(90)]
    folds, protocol = plan_folds(y, 90, PRESETS["best"], seed=0)
    assert len(folds) == 2 and all(len(rep) == 5 for rep in folds) and "stratified" in protocol
    for rep in folds:
        held = np.sort(np.concatenate([va for _, va in rep]))
        assert np.array_equal(held, np.arange(90))
        assert all(len(np.intersect1d(tr, va)) == 0 for tr, va in rep)
    one, protocol = plan_folds(None, 9000, PRESETS["medium"], seed=0)
    assert len(one) == 1 and len(one[0]) == 1 and "one validation split" in protocol


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5))
def test_ensemble_weights_sum_to_one_and_never_lose_to_the_best_member(seed, members):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 60)
    oofs = []
    for _ in range(members):
        z = rng.normal(size=(60, 3)) + 1.5 * np.eye(3)[y] * rng.random()
        oofs.append(np.exp(z) / np.exp(z).sum(1, keepdims=True))
    acc = lambda p: output_metrics(p, y, "classification")["accuracy"]  # noqa: E731
    for select in (ensemble_selection, bagged_ensemble_selection):
        w = select(oofs, y, "classification", rounds=10)
        assert w.shape == (members,) and np.isclose(w.sum(), 1.0) and (w >= 0).all()
        assert acc(sum(wi * o for wi, o in zip(w, oofs))) >= max(acc(o) for o in oofs) - 1e-12


def _toy(n=240, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 5)).astype("float32")
    b = rng.normal(size=(n, 3)).astype("float32")
    y = ((a[:, 0] + b[:, 0]) > 0).astype(int)
    return TensorMultimodalDataset({"a": a, "b": b}, y), y


def _selector(ds, y, log=None):
    from mmfuse.config import ModelConfig

    enc = {
        "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": []},
        "b": {"name": "mlp", "in_dim": 3, "out_dim": 8},
    }
    return Selector(
        ds,
        y,
        "classification",
        2,
        lambda f: ModelConfig(encoders=enc, num_outputs=2, fusion=f, hidden=16),
        TrainConfig(max_epochs=4, batch_size=32, patience=2, progress_bar=False),
        log or (lambda line: None),
    )


def test_refit_trains_every_member_on_every_row(monkeypatch):
    from mmfuse.evaluation import selection

    ds, y = _toy()
    sel = _selector(ds, y)
    cands = [Candidate("sklearn_concat", modalities=["a", "b"]), Candidate("concat", fusion="concat")]
    folds, protocol = plan_folds([str(v) for v in y], len(y), PRESETS["medium"], seed=0)
    chosen = sel.select(cands, folds, protocol)
    assert all(s.oof is not None and len(s.fold_scores) == 5 for s in chosen.scored)
    seen = []
    real = selection.Selector.train

    def spy(self, c, rows, stop_rows, epochs, max_time):
        seen.append((c.name, len(rows), stop_rows))
        return real(self, c, rows, stop_rows, epochs, max_time)

    monkeypatch.setattr(selection.Selector, "train", spy)
    model, cfg = sel.refit(chosen)
    assert [n for n, _, _ in seen] == list(chosen.weights)
    assert all(k == len(y) and stop is None for _, k, stop in seen)  # all rows, nothing held out to stop on
    out = model(ds.inputs, ds.masks)["prediction"]
    assert out.shape == (len(y), 2) and bool(torch.isfinite(out).all())


def test_a_failing_candidate_is_a_row_and_the_others_still_choose():
    ds, y = _toy(120)
    sel = _selector(ds, y)
    cands = [Candidate("sklearn_concat", modalities=["a", "b"]), Candidate("broken", fusion="no_such_fusion")]
    folds, protocol = plan_folds([str(v) for v in y], len(y), PRESETS["fast"], seed=0)
    chosen = sel.select(cands, folds, protocol)
    assert chosen.weights == {"sklearn_concat": 1.0}
    assert "no_such_fusion" in (chosen.scored[1].error or "")


def test_the_selected_table_model_saves_loads_and_predicts_the_same(tmp_path):
    from mmfuse import MultimodalPredictor

    rng = np.random.default_rng(1)
    n = 150
    df = pd.DataFrame({f"u_{j}": rng.normal(size=n) for j in range(4)})
    df["word"] = rng.choice(["p", "q", "r"], n)
    df["y"] = ((df["u_0"] + (df["word"] == "p")) > 0.3).astype(int)
    p = MultimodalPredictor(target="y", preset="fast", progress=False, train={"max_epochs": 3}, cache_dir=tmp_path)
    p.fit(df)
    sel = p.meta["selection"]
    assert sel["preset"] == "fast" and {r["method"] for r in sel["candidates"]} == {"sklearn_concat", "concat"}
    assert np.isclose(sum(sel["weights"].values()), 1.0)
    p.save(tmp_path / "m")
    q = MultimodalPredictor.load(tmp_path / "m")
    assert q.predict(df).equals(p.predict(df))
    assert "selection: one validation split" in (tmp_path / "m" / "summary.txt").read_text()
    assert (tmp_path / "m" / "oof.safetensors").is_file()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_lists_registered_fusions(name):
    from mmfuse.registry import FUSIONS

    assert set(PRESETS[name].fusions) <= set(FUSIONS.list())


def test_a_time_limit_keeps_the_first_candidate_and_skips_the_rest():
    ds, y = _toy(120)
    sel = _selector(ds, y)
    cands = [Candidate("sklearn_concat", modalities=["a", "b"]), Candidate("concat", fusion="concat")]
    folds, protocol = plan_folds([str(v) for v in y], len(y), PRESETS["medium"], seed=0)
    chosen = sel.select(cands, folds, protocol, time_limit=1e-6)
    assert chosen.weights == {"sklearn_concat": 1.0} and "time limit" in (chosen.scored[1].error or "")


def test_linear_candidates_read_only_feature_modalities():
    from mmfuse.evaluation.selection import candidates_for

    enc = {"text": {"name": "minilm"}, "photo": {"name": "cnn"}, "num": {"name": "mlp"}, "emb": {"name": "identity"}}
    names = [c.name for c in candidates_for(PRESETS["medium"], enc)]
    assert names == ["sklearn_concat", "sklearn_emb", "sklearn_num", "concat", "late_mean"]
    only_cnn = candidates_for(PRESETS["fast"], {"photo": {"name": "cnn"}})
    assert [c.name for c in only_cnn] == ["concat"]


def test_candidates_scored_in_worker_processes_match_one_process():
    ds, y = _toy(160)
    lines = []
    one, two = _selector(ds, y), _selector(ds, y, log=lines.append)
    two.jobs = 2
    cands = [
        Candidate("sklearn_concat", modalities=["a", "b"]),
        Candidate("concat", fusion="concat"),
        Candidate("broken", fusion="no_such_fusion"),
    ]
    folds, protocol = plan_folds([str(v) for v in y], len(y), PRESETS["fast"], seed=0)
    a, b = one.select(cands, folds, protocol), two.select(cands, folds, protocol)
    assert [s.candidate.name for s in b.scored] == [c.name for c in cands]  # the candidates' order, not finish order
    for sa, sb in zip(a.scored, b.scored):
        assert (sa.error is None) == (sb.error is None)
        if sa.oof is not None:  # one torch thread per worker: equal up to the order of float sums
            np.testing.assert_allclose(sa.oof, sb.oof, atol=1e-4)
    assert "no_such_fusion" in (b.scored[2].error or "") and any("broken: failed" in line for line in lines)
