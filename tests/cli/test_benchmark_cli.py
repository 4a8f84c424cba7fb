"""``mmfuse benchmark``: options reach the benchmark function; options that do not apply are refused."""

from __future__ import annotations

import pytest

import mmfuse.benchmarks.avmnist_robustness as robustness_bench
from mmfuse.cli import main


def test_modality_dropout_reaches_the_robustness_benchmark(monkeypatch, tmp_path):
    seen = {}

    def fake_benchmark(
        out_dir=None, data_dir=None, quick=False, fusions=None, train_cfg=None, seed=0, data_options=None, dropout=0.3
    ):
        seen.update(out_dir=out_dir, fusions=fusions, dropout=dropout, quick=quick)
        return []

    monkeypatch.setattr(robustness_bench, "benchmark", fake_benchmark)
    assert (
        main(
            [
                "benchmark",
                "avmnist_robustness",
                "--quick",
                "--fusions",
                "concat",
                "--modality-dropout",
                "0.5",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert seen == {"out_dir": str(tmp_path), "fusions": ["concat"], "dropout": 0.5, "quick": True}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["benchmark", "avmnist", "--modality-dropout", "0.5"], ["does not apply", "'avmnist'", "avmnist_robustness"]),
        (["benchmark", "avmnist_robustness", "--modality-dropout", "1.0"], ["[0, 1)", "1.0"]),
        (["benchmark", "handwritten", "--jobs", "2"], ["--jobs", "'handwritten'", "avmnist"]),
        (["benchmark", "avmnist", "--jobs", "0"], ["--jobs", "0"]),
        (["benchmark", "avmnist", "--seeds", "0,x"], ["--seeds", "'0,x'"]),
    ],
)
def test_option_misuse_is_refused_in_one_line(argv, words, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


def test_retrieval_methods_are_selected_by_their_own_names(monkeypatch, tmp_path):
    import mmfuse.benchmarks.avmnist_retrieval as retrieval_bench

    seen = {}
    monkeypatch.setattr(retrieval_bench, "benchmark", lambda **kw: seen.update(fusions=kw["fusions"]) or [])
    assert (
        main(
            [
                "benchmark",
                "avmnist_retrieval",
                "--quick",
                "--fusions",
                "contrastive_margin,subspace",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert seen == {"fusions": ["contrastive_margin", "subspace"]}


def test_unknown_retrieval_method_is_refused_in_one_line(capsys):
    assert main(["benchmark", "avmnist_retrieval", "--fusions", "concat"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in ("'concat'", "avmnist_retrieval", "deep_cca", "subspace"):
        assert w in err, err


def test_retrieval_benchmark_refuses_unknown_methods_from_python(tmp_path):
    import mmfuse.benchmarks.avmnist_retrieval as retrieval_bench
    from mmfuse.errors import ConfigError

    with pytest.raises(ConfigError, match="'nope'.*valid names: deep_cca"):
        retrieval_bench.benchmark(out_dir=tmp_path, data_dir=tmp_path, fusions=["nope"])


def test_every_benchmark_module_is_declared_and_matches_its_declaration():
    import importlib
    import inspect
    import pkgutil

    import mmfuse.benchmarks as pkg
    from mmfuse.benchmarks import BENCHMARKS

    modules = {f"{pkg.__name__}.{i.name}" for i in pkgutil.iter_modules(pkg.__path__) if not i.name.startswith("_")}
    assert modules == {info.module for info in BENCHMARKS.values()}  # one home: every module declared, nothing else
    for name, info in BENCHMARKS.items():
        mod = importlib.import_module(info.module)
        assert set(mod.DEFAULTS) == {"quick", "full"}, name
        params = inspect.signature(mod.benchmark).parameters
        assert {"out_dir", "data_dir", "quick", "fusions", "train_cfg", "seed"} <= set(params), name
        assert set(info.options) <= set(params), f"{name} declares options its benchmark() does not take"


def test_seeds_run_the_benchmark_per_seed_and_write_mean_and_spread(monkeypatch, tmp_path, capsys):
    import json

    import mmfuse.benchmarks.avmnist as avmnist_bench

    calls = []

    def fake_benchmark(out_dir=None, data_dir=None, quick=False, fusions=None, train_cfg=None, seed=0, jobs=1):
        calls.append((str(out_dir), seed, train_cfg.seed, jobs))
        acc = {0: 0.90, 1: 0.92, 2: 0.94}[seed]
        return [
            {"method": "concat", "kind": "fusion", "fusion": "concat", "test_accuracy": acc},
            {"method": "gated", "kind": "fusion", "fusion": "gated", "test_accuracy": acc - 0.01},
            {"method": "audio_only", "kind": "unimodal", "fusion": "concat", "test_accuracy": 0.7 + seed / 100},
        ]

    monkeypatch.setattr(avmnist_bench, "benchmark", fake_benchmark)
    assert main(["benchmark", "avmnist", "--seeds", "0,1,2", "--jobs", "2", "-o", str(tmp_path / "r")]) == 0
    assert calls == [(str(tmp_path / "r" / f"seed-{s}"), s, s, 2) for s in (0, 1, 2)]
    payload = json.loads((tmp_path / "r" / "results.json").read_text())
    rows = {r["method"]: r for r in payload["rows"]}
    assert payload["seeds"] == [0, 1, 2] and len(payload["per_seed"]) == 3
    assert rows["concat"]["test_accuracy"] == pytest.approx(0.92)
    assert rows["concat"]["test_accuracy_std"] == pytest.approx(0.01633, abs=1e-4)
    # concat and gated differ by 0.01 < their spread: the order between them is not claimed
    assert rows["concat"]["rank"] == rows["gated"]["rank"] == "=1"
    assert rows["audio_only"]["rank"] == "3"
    assert "rank" in capsys.readouterr().out
