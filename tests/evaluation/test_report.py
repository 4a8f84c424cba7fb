from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.data.base import DatasetSpec, Splits
from mmfuse.errors import DataError
from mmfuse.evaluation.report import (
    build_model_report,
    build_report,
    build_results_report,
    mean_modality_weights,
    write_report,
)
from mmfuse.evaluation.robustness import evaluate_robustness
from mmfuse.training import fit

ENC = {
    "a": {"name": "mlp", "in_dim": 5, "out_dim": 8, "hidden": [16]},
    "b": {"name": "mlp", "in_dim": 7, "out_dim": 8, "hidden": [16]},
}
TRAIN = TrainConfig(max_epochs=2, batch_size=64, progress_bar=False, seed=0)


def synthetic_splits() -> Splits:
    from conftest import synthetic_problem

    ds = synthetic_problem(n=500, seed=1)
    sub = lambda a, b: torch.utils.data.Subset(ds, range(a, b))  # noqa: E731
    spec = DatasetSpec("synthetic", "classification", 3, ENC, class_names=["low", "mid", "high"])
    return Splits(sub(0, 300), sub(300, 400), sub(400, 500), spec)


def images(page: str) -> list[bytes]:
    return [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def screenshot(html_path, tmp_path) -> np.ndarray:
    """Render ``html_path`` in headless chromium and return the screenshot as an array."""
    from PIL import Image

    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium); the report's "
            "real-browser rendering check needs it"
        )
    png = tmp_path / "shot.png"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,2000",
        f"file://{html_path.resolve()}",
    ]
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert png.is_file(), "chromium wrote no screenshot"
    return np.asarray(Image.open(png).convert("L"), dtype=float)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    splits = synthetic_splits()
    out = tmp_path_factory.mktemp("m") / "model"
    cfg = ModelConfig(encoders=ENC, num_outputs=3, fusion="modality_attention")
    fit(cfg, TRAIN, splits.train, splits.val, out_dir=out, extra_meta={"dataset": "synthetic"})
    return out, splits


def test_model_report_has_every_section_and_only_embedded_images(model_dir, tmp_path):
    path, splits = model_dir
    page = build_model_report(path, test=splits.test, class_names=splits.spec.class_names)
    for title in (
        "Test results",
        "Robustness",
        "Each modality removed",
        "Per-modality weights",
        "Learning curves",
        "Calibration and uncertainty",
        "Per-modality Shapley values",
    ):
        assert title in page
    assert 'alt="reliability diagram"' in page and "temperature-scaled (T = " in page
    pngs = images(page)
    assert len(pngs) >= 7 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from outside the page


def test_mean_modality_weights_average_the_fusion_weights(model_dir):
    from mmfuse.training.serialization import load_model_dir

    path, splits = model_dir
    model, _ = load_model_dir(path)
    w = mean_modality_weights(model, splits.test, batch_size=37)
    batch = next(iter(torch.utils.data.DataLoader(splits.test, batch_size=len(splits.test))))
    with torch.no_grad():
        out = model(batch["inputs"], batch["masks"])
        ref = model.fusion.modality_weights(out["embeddings"], out["masks"]).mean(0)
    assert w is not None and set(w) == {"a", "b"}
    np.testing.assert_allclose([w["a"], w["b"]], ref.numpy(), rtol=1e-5)


def test_report_renders_in_a_real_headless_browser(model_dir, tmp_path):
    path, splits = model_dir
    html_file = write_report(
        build_model_report(path, test=splits.test, class_names=splits.spec.class_names), tmp_path / "report.html"
    )
    shot = screenshot(html_file, tmp_path)
    assert shot.shape[0] >= 1000 and shot.shape[1] >= 1000
    assert shot.std() > 10, "the rendered page is blank"
    assert (shot < 200).mean() > 0.01, "almost nothing dark was drawn"


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    from mmfuse.evaluation.leaderboard import Method, run_method, write_results
    from mmfuse.evaluation.robustness import ModalitySubset

    splits = synthetic_splits()
    root = tmp_path_factory.mktemp("r") / "bench"
    methods = [
        Method("a_only", "concat", ["a"], kind="unimodal"),
        Method("concat", "concat"),
        Method("concat+moddrop", "concat", model_overrides={"modality_dropout": 0.5}),
        Method("modality_attention", "modality_attention"),
    ]
    only_a = Splits(*(ModalitySubset(d, ["a"]) for d in (splits.train, splits.val, splits.test)), splits.spec)
    rows = [run_method(only_a if m.kind == "unimodal" else splits, m, TRAIN, root, hidden=16) for m in methods]
    write_results(rows, root, "synthetic", total_s=1.0)
    from mmfuse.training.serialization import load_model_dir

    rob = {}
    for m in methods:
        model, _ = load_model_dir(root / "models" / m.name)
        rob[m.name] = evaluate_robustness(
            model, splits.test, "classification", missing_rates=[0, 0.5, 1], noise_levels=[0, 1, 2]
        ).to_dict()
    (root / "robustness.json").write_text(json.dumps({"reference": "concat", "methods": rob}))
    return root, splits


def test_results_report_has_leaderboard_curves_and_dropout_comparison(results_dir, tmp_path):
    root, splits = results_dir
    page = build_results_report(root, splits=splits)
    for title in (
        "Leaderboard",
        "Robustness",
        "without vs with modality dropout",
        "MultiBench summaries",
        "Best method",
        "Learning curves",
    ):
        assert title in page
    assert "a_only" in page and "modality_attention" in page
    html_file = write_report(page, tmp_path / "bench.html")
    assert screenshot(html_file, tmp_path).std() > 10


def test_results_report_without_data_keeps_the_data_free_sections(results_dir, monkeypatch):
    import mmfuse.evaluation.report as report

    root, _ = results_dir

    def unavailable(*a, **k):
        raise DataError("no such dataset")

    monkeypatch.setattr(report, "_load_splits", unavailable)
    page = build_report(root)
    assert "Leaderboard" in page and "Learning curves" in page and "could not be loaded" in page


def test_build_report_names_a_wrong_path(tmp_path):
    with pytest.raises(DataError, match="neither a benchmark results folder"):
        build_report(tmp_path)
