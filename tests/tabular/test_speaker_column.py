"""An audio column with ``encoder: ge2e``: frozen GE2E embeddings at 16 kHz, cached, read by an ``mlp``."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile

from conftest import real_data_dir
from mmfuse.errors import ConfigError
from mmfuse.tabular import EmbeddingCache, TablePipeline, resolve_schema

FSDD = real_data_dir() / "fsdd" / "recordings"
SCHEMA = {"modalities": {"clip": {"encoder": "ge2e", "out_dim": 8}}}


@pytest.fixture
def table(tmp_path):
    """10 FSDD recordings of two speakers (a copy: the table's folder also holds the cache) and one empty cell."""
    if not FSDD.is_dir():
        pytest.skip(f"FSDD not found in {FSDD}; set MMFUSE_DATA_DIR")
    (tmp_path / "wav").mkdir()
    rows = []
    for speaker in ("george", "jackson"):
        for d in range(5):
            name = f"{d}_{speaker}_20.wav"
            (tmp_path / "wav" / name).write_bytes((FSDD / name).read_bytes())
            rows.append({"clip": f"wav/{name}", "speaker": speaker})
    rows.append({"clip": "", "speaker": "george"})
    return pd.DataFrame(rows), tmp_path


def pipeline(df, root, override=SCHEMA):
    return TablePipeline(
        resolve_schema(df, "speaker", override), root, restrict=True, cache=EmbeddingCache(root / "cache")
    )


def test_ge2e_column_is_embedded_cached_and_read_by_an_mlp(table):
    pytest.importorskip("resemblyzer")
    pytest.importorskip("webrtcvad")
    from mmfuse.encoders.speaker import embed_waves, speaker_encoder_version

    df, root = table
    pipe = pipeline(df, root).fit(df)
    assert pipe.state["clip"]["encoder"] == "ge2e" and pipe.state["clip"]["dim"] == 256
    assert pipe.encoders_config()["clip"] == {"name": "mlp", "in_dim": 256, "out_dim": 8, "hidden": [128]}
    data = pipe.transform(df)
    x, present = data.dataset.inputs["clip"].numpy(), data.dataset.masks["clip"].numpy()
    assert x.shape == (11, 256) and present.tolist() == [True] * 10 + [False]
    assert [it.row for it in data.issues] == [10] and not x[10].any()
    assert np.allclose(np.linalg.norm(x[:10], axis=1), 1, atol=1e-5)
    waves = [soundfile.read(root / p, dtype="float32")[0] for p in df["clip"][:10]]
    assert np.allclose(x[:10], embed_waves(waves, 8000), atol=1e-4)  # 8 kHz files resampled to 16 kHz
    assert pipe.cache.misses == 10 and len(list((root / "cache").rglob("*.npy"))) == 10

    again = pipeline(df, root)
    again.load_state(pipe.to_dict())  # the saved state (labels.json) is accepted
    assert np.array_equal(again.transform(df).dataset.inputs["clip"].numpy(), x)
    assert (again.cache.hits, again.cache.misses) == (10, 0)
    assert {p.parent.parent.name.split("-")[0] for p in (root / "cache").rglob("*.npy")} == {"ge2e"}
    assert speaker_encoder_version().startswith("ge2e/pretrained.pt:")  # weights file + preprocessing in the key


def test_spectrogram_options_are_refused_with_ge2e(table):
    df, root = table
    with pytest.raises(ConfigError, match=r"\['seconds'\] of audio modality 'clip' do not apply with encoder 'ge2e'"):
        pipeline(df, root, {"modalities": {"clip": {"encoder": "ge2e", "seconds": 1.0}}}).fit(df)
    default = pipeline(df, root, {}).fit(df)  # the default stays the trainable log-mel CNN
    assert default.state["clip"]["encoder"] == "spectrogram_cnn"
    assert default.encoders_config()["clip"]["name"] == "spectrogram_cnn"


def test_missing_package_names_the_column(table, monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    assert importlib.util.find_spec("resemblyzer") is None
    df, root = table
    with pytest.raises(ConfigError) as info:
        pipeline(df, root).fit(df)
    message = str(info.value)
    assert message == (
        "Audio column 'clip' uses encoder 'ge2e', which needs the resemblyzer and webrtcvad packages; "
        "install them with pip install 'mmfuse[speaker]'."
    )
