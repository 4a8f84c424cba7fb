"""TablePipeline: statistics from training rows only, missing cells -> masked modality + issue, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from mmfuse.errors import ConfigError, DataError
from mmfuse.tabular import EmbeddingCache, TablePipeline, resolve_schema


def write_files(root, n: int, rng) -> pd.DataFrame:
    (root / "img").mkdir()
    (root / "wav").mkdir()
    (root / "seq").mkdir()
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(root / "img" / f"{i}.png")
        soundfile.write(root / "wav" / f"{i}.wav", rng.normal(0, 0.1, 4000 + 100 * i).astype(np.float32), 8000)
        np.save(root / "seq" / f"{i}.npy", rng.normal(size=(3 + i % 4, 2)).astype(np.float32))
        rows.append(
            {
                "photo": f"img/{i}.png",
                "clip": f"wav/{i}.wav",
                "track": f"seq/{i}.npy",
                "size": float(i),
                "shade": "ab"[i % 2],
                "label": i % 2,
            }
        )
    return pd.DataFrame(rows)


SCHEMA = {
    "modalities": {"photo": {"encoder": "cnn", "size": 8}, "clip": {"sample_rate": 8000, "seconds": 0.5, "n_mels": 16}}
}


@pytest.fixture
def table(tmp_path):
    return write_files(tmp_path, 8, np.random.default_rng(0)), tmp_path


def pipeline(df, root, override=SCHEMA, target="label"):
    schema = resolve_schema(df, target, override)
    return TablePipeline(schema, root, restrict=True, cache=EmbeddingCache(root / "cache"), progress=False)


def test_encodes_every_modality_with_training_statistics(table):
    df, root = table
    pipe = pipeline(df, root).fit(df, np.arange(6))
    data = pipe.transform(df)
    ds = data.dataset
    assert sorted(ds.inputs) == ["clip", "photo", "tabular", "track"]
    assert tuple(ds.inputs["photo"].shape) == (8, 1, 8, 8)
    assert tuple(ds.inputs["clip"].shape) == (8, 16, 1 + 4000 // 80)
    assert ds.inputs["track"].shape[2] == 2
    assert data.issues == [] and all(bool(m.all()) for m in ds.masks.values())
    mu, sd = pipe.state["tabular"]["numeric"]["size"]
    assert (mu, sd) == pytest.approx((2.5, np.std(np.arange(6))))  # rows 0-5 only
    assert ds.inputs["tabular"][:, 0].tolist() == pytest.approx(((np.arange(8) - mu) / sd).tolist(), abs=1e-5)
    assert pipe.encoders_config()["photo"] == {"name": "cnn", "in_channels": 1, "out_dim": 64}
    assert pipe.encoders_config()["clip"]["name"] == "spectrogram_cnn"
    assert (root / "cache").is_dir() and any((root / "cache").rglob("*.npy"))  # spectrograms cached


def test_bad_cells_become_masked_modalities_with_issues(table):
    df, root = table
    pipe = pipeline(df, root).fit(df)
    bad = df.copy()
    (root / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "wav" / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    bad.loc[0, "photo"] = "img/corrupt.png"
    bad.loc[1, "photo"] = "img/absent.png"
    bad.loc[2, "clip"] = "wav/corrupt.wav"
    bad.loc[3, "clip"] = np.nan
    bad.loc[4, "size"] = np.nan
    bad.loc[5, "shade"] = "zz"  # unseen category
    data = pipe.transform(bad)
    ds = data.dataset
    assert ds.masks["photo"].tolist() == [False, False] + [True] * 6
    assert ds.masks["clip"].tolist() == [True, True, False, False] + [True] * 4
    assert float(ds.inputs["photo"][0].abs().sum()) == 0.0  # absent rows hold zeros
    reasons = {(it.row, it.column): (it.reason, it.action) for it in data.issues}
    assert reasons[(1, "photo")] == ("file not found", "missing")
    assert reasons[(0, "photo")][0].startswith(("corrupt image", "not a readable image"))
    assert reasons[(2, "clip")][0].startswith("corrupt or unsupported audio")
    assert reasons[(3, "clip")] == ("no value", "missing")
    assert reasons[(4, "size")][1] == "imputed" and ds.masks["tabular"][4]
    assert "not seen in training" in reasons[(5, "shade")][0]
    unk = pipe.state["tabular"]["categorical"]["shade"].index("<unk>")
    assert float(ds.inputs["tabular"][5, 1 + unk]) == 1.0  # one-hot on <unk>
    assert data.issue_counts() == {"clip": 2, "photo": 2, "shade": 1, "size": 1}
    notes = data.notes(len(bad))
    assert notes[1] == "photo: file not found" and notes[7] == ""


def test_target_refusals(table):
    df, root = table
    one = df.assign(label=1)
    with pytest.raises(DataError, match="single class"):
        pipeline(one, root).fit(one)
    nan = df.assign(label=df["label"].astype(float))
    nan.loc[[2, 5], "label"] = np.nan
    pipe = pipeline(nan, root)
    with pytest.raises(DataError, match=r"empty \(or infinite\) in 2 row\(s\) \(2, 5\).*--drop-missing-target"):
        pipe.check_target(nan)
    keep, issues = pipe.check_target(nan, drop_missing=True)
    assert keep.tolist() == [0, 1, 3, 4, 6, 7] and [(i.row, i.action) for i in issues] == [
        (2, "dropped"),
        (5, "dropped"),
    ]
    pipe.fit(nan, keep)
    unseen = df.assign(label=[0, 1, 7, 0, 1, 0, 1, 0])
    with pytest.raises(DataError, match="Row 2: target 'label' is 7, a class the model was not trained on"):
        pipe.transform(unseen)
    with pytest.raises(DataError, match="Column 'size' .* is missing from the table"):
        pipe.transform(df.drop(columns="size"))


def test_regression_and_multilabel_targets(table):
    df, root = table
    reg = df.assign(label=np.linspace(10, 20, 8))
    pipe = pipeline(reg, root).fit(reg)
    y = pipe.transform(reg).dataset.target.numpy()
    assert y.shape == (8, 1) and abs(y.mean()) < 1e-6
    assert np.allclose(pipe.decode_prediction(y), reg["label"].to_numpy()[:, None], atol=1e-4)
    ml = df.assign(label=[["a"], ["b"], ["a", "b"], [], ["a"], ["b"], ["a"], ["b"]])
    pipe = pipeline(ml, root).fit(ml)
    assert pipe.schema.task == "multilabel" and pipe.target_state["classes"] == ["a", "b"]
    assert pipe.transform(ml).dataset.target.numpy()[:4].tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]


def test_bad_options_and_base_dir(table):
    df, root = table
    with pytest.raises(ConfigError, match=r"Schema options \['size'\] do not apply to audio"):
        pipeline(df, root, {"modalities": {"clip": {"size": 3}}}).fit(df)
    with pytest.raises(ConfigError, match="Encoder 'resnet' is not available"):
        pipeline(df, root, {"modalities": {"photo": {"encoder": "resnet"}}}).fit(df)
    outside = df.copy()
    outside.loc[3, "track"] = "../elsewhere.npy"
    pipe = pipeline(df, root).fit(df)
    pipe.restrict = True
    data = pipe.transform(outside)  # one row's issue, not the table's failure
    assert [(it.row, it.column) for it in data.issues] == [(3, "track")] and "path leaves the folder" in data.issues[
        0
    ].reason
    assert not data.dataset.masks["track"][3] and data.dataset.masks["track"].sum() == len(df) - 1


def test_state_round_trips_through_json(table):
    import json

    df, root = table
    pipe = pipeline(df, root).fit(df)
    again = TablePipeline(resolve_schema(df, "label", SCHEMA), root, cache=pipe.cache, progress=False).load_state(
        json.loads(json.dumps(pipe.to_dict(), sort_keys=True))
    )
    a, b = pipe.transform(df).dataset, again.transform(df).dataset
    for m in a.inputs:
        assert np.array_equal(a.inputs[m].numpy(), b.inputs[m].numpy()), m


def test_identical_bad_files_each_get_the_specific_reason(table):
    """The cache decodes identical content once; every row with that content still gets its reason."""
    df, root = table
    pipe = pipeline(df, root).fit(df)
    data = (root / "wav" / "0.wav").read_bytes()[:300]  # a truncated WAV, copied twice
    for k in (1, 2):
        (root / f"cut{k}.wav").write_bytes(data)
    bad = df.assign(clip=["cut1.wav", "cut2.wav"] + df["clip"].tolist()[2:])
    issues = [(it.row, it.reason) for it in pipe.transform(bad).issues]
    assert [r for r, _ in issues] == [0, 1] and all(reason.startswith("truncated WAV") for _, reason in issues)
