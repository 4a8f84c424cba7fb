"""CMU-MOSI from the real feature and label files: both protocols, the table, derived labels, errors."""

from __future__ import annotations

import json
import shutil
import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse.data import download, mosi
from mmfuse.data.mosi import STANDARD_FOLDS, load_mosi, load_mosi_table, segment_labels_csv
from mmfuse.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def standard(data_dir):
    return load_mosi(data_dir)


@pytest.fixture(scope="module")
def original(data_dir):
    return load_mosi(data_dir, protocol="original")


def test_standard_protocol_sizes_targets_and_texts(standard):
    assert (len(standard.train), len(standard.val), len(standard.test)) == (1284, 229, 686)
    spec = standard.spec
    assert (spec.task, spec.num_outputs, spec.metric) == ("regression", 1, "mae")
    assert spec.encoders == {
        "audio": {"name": "mlp", "in_dim": 73, "input_norm": False}
    }  # no leaky text/video by default
    for ds in (standard.train, standard.val, standard.test):
        assert ds.target.dtype == torch.float32 and -3 <= float(ds.target.min()) and float(ds.target.max()) <= 3
        assert len(ds.texts) == len(ds) and all(isinstance(t, str) and t for t in ds.texts)
    videos = {f: set(getattr(standard, f).video_ids) for f in ("train", "val", "test")}
    assert (len(videos["train"]), len(videos["val"]), len(videos["test"])) == (52, 10, 31)
    assert videos["test"] == set(STANDARD_FOLDS["test"])
    item = standard.train[0]
    assert item["inputs"]["audio"].shape == (73,) and item["target"].shape == ()
    assert standard.train.texts[0] == "ANYHOW IT WAS REALLY GOOD" and float(item["target"]) == pytest.approx(2.4)


def test_original_protocol_is_speaker_independent(original):
    assert len(original.train) + len(original.val) == 1447 and len(original.test) == 752
    assert not set(original.train.video_ids) & set(original.val.video_ids)
    assert len(set(original.val.video_ids)) == 6 and len(set(original.test.video_ids)) == 31
    neg_pos = np.bincount(np.concatenate([original.train.target.numpy(), original.val.target.numpy()]))
    assert neg_pos.tolist() == [738, 709] and np.bincount(original.test.target.numpy()).tolist() == [285, 467]
    assert original.spec.class_names == ["negative", "positive"] and original.train.target.dtype == torch.long
    assert sorted(original.spec.encoders) == ["audio", "text", "video"]
    x = original.train.inputs["video"].numpy().astype(np.float64)
    assert np.allclose(x.mean(0), 0, atol=1e-4)  # standardised with training statistics


def test_binary_label_agrees_with_sentiment_sign(data_dir):
    table = load_mosi_table(data_dir, protocol="original", features=())
    scores = pd.read_csv(data_dir / "mosi" / "labels" / "mosi_segment_labels.csv").set_index("segment_id")["sentiment"]
    np.testing.assert_array_equal(table["label"].to_numpy(), (scores[table["segment_id"]].to_numpy() >= 0).astype(int))


def test_table_columns(data_dir):
    table = load_mosi_table(data_dir)
    assert list(table.columns[:3]) == ["segment_id", "video_id", "text"]
    assert list(table.columns[3:-2]) == [f"audio_{j}" for j in range(73)] and list(table.columns[-2:]) == [
        "label",
        "fold",
    ]
    assert table["fold"].value_counts().to_dict() == {"train": 1284, "test": 686, "val": 229}
    both = load_mosi_table(data_dir, features=("audio", "video"))
    assert both.shape == (2199, 3 + 73 + 100 + 2) and not both.isna().any().any()
    with pytest.raises(ConfigError, match="protocol"):
        load_mosi_table(data_dir, protocol="mosei")


def test_leaky_modalities_warn_and_transcript_embedder(data_dir):
    with pytest.warns(UserWarning, match="optimistic"):
        load_mosi(data_dir, modalities=("audio", "video"))
    lengths = load_mosi(data_dir, text_embedder=lambda texts: np.array([[len(t), t.count(" ")] for t in texts]))
    assert sorted(lengths.spec.encoders) == ["audio", "transcript"] and lengths.train.inputs["transcript"].shape == (
        1284,
        2,
    )
    with pytest.raises(ConfigError, match="text_embedder"):
        load_mosi(data_dir, modalities=("transcript",))


def test_standard_folds_constant_matches_the_published_json(data_dir):
    published = json.loads((data_dir / "mosi" / "labels" / "standard_folds.json").read_text())
    assert published == STANDARD_FOLDS
    labels = pd.read_csv(data_dir / "mosi" / "labels" / "mosi_segment_labels.csv")
    fold = {v: f for f, vs in STANDARD_FOLDS.items() for v in vs}
    assert (labels["video_id"].map(fold) == labels["standard_split"]).all()


def test_segment_labels_are_rederived_byte_for_byte(data_dir):
    published = (data_dir / "mosi" / "labels" / "mosi_segment_labels.csv").read_bytes()
    table = pd.read_csv(data_dir / "mosi" / "labels" / "mosi_segment_labels.csv")
    scores = {  # the .csd content, recovered from the published table (float32 as in the HDF5 file)
        v: (g["sentiment"].to_numpy(np.float32), g[["start_s", "end_s"]].to_numpy(np.float32))
        for v, g in table.groupby("video_id")
    }
    derived = segment_labels_csv(scores, dict(zip(table["segment_id"], table["bclstm_split"])))
    assert derived == published


def test_download_from_local_copies_then_labels_need_h5py_or_are_derived(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(mosi, "DECLARE_URL", (data_dir / "mosi").as_uri() + "/")
    monkeypatch.setattr(mosi, "CSD_URL", (data_dir / "mosi" / "labels" / "CMU_MOSI_Opinion_Labels.csd").as_uri())
    assert len(load_mosi(tmp_path, protocol="original").test) == 752
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match=r"mosi_segment_labels\.csv is missing.*needs h5py"):
            load_mosi(tmp_path)
        assert (tmp_path / "mosi" / "labels" / "CMU_MOSI_Opinion_Labels.csd").is_file()
        assert not (tmp_path / "mosi" / "labels" / "mosi_segment_labels.csv").exists()
    else:
        assert len(load_mosi(tmp_path).val) == 229
        assert json.loads((tmp_path / "mosi" / "labels" / "standard_folds.json").read_text()) == STANDARD_FOLDS


def test_unreachable_source_and_corrupt_file(data_dir, tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(download, "urlopen", offline)
    with pytest.raises(
        DataError, match=r"Could not download transcripts\.csv from https://raw\.githubusercontent.*MMFUSE_DATA_DIR"
    ):
        load_mosi(tmp_path / "empty")
    shutil.copytree(data_dir / "mosi", tmp_path / "copy" / "mosi")
    (tmp_path / "copy" / "mosi" / "audio" / "audio_test0.csv").chmod(0o644)
    with (tmp_path / "copy" / "mosi" / "audio" / "audio_test0.csv").open("a") as f:
        f.write('"1","2"\n')
    with pytest.raises(DataError, match=r"audio_test0\.csv has sha256"):
        load_mosi(tmp_path / "copy", protocol="original")
