"""Per-cell readers: bad files become a reason (ReadIssue), paths outside --base-dir are refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from PIL import Image

from mmfuse.errors import DataError
from mmfuse.tabular import readers as R


def png_bytes(size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(size * size).reshape(size, size) % 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(seconds: float, rate: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    soundfile.write(buf, np.stack([wave] * channels, 1) if channels > 1 else wave, rate, format="WAV")
    return buf.getvalue()


def test_image_decoding_and_corruption():
    img = R.decode_image(png_bytes())
    x = R.image_array(img, 4, 1)
    assert x.shape == (1, 4, 4) and 0 <= x.min() and x.max() <= 1
    assert R.image_array(img, 4, 3).shape == (3, 4, 4)
    with pytest.raises(R.ReadIssue, match="not a readable image"):
        R.decode_image(b"this is not an image")
    with pytest.raises(R.ReadIssue, match="corrupt image"):
        R.decode_image(png_bytes(64)[:80])  # truncated PNG


def test_audio_resampled_cropped_and_padded():
    short = R.decode_audio(wav_bytes(0.5, 8000), 16000, 16000)
    assert short.shape == (16000,) and np.all(short[8000:] == 0)  # 0.5 s at 16 kHz, then zero padding
    long = R.decode_audio(wav_bytes(2.0, 8000, channels=2), 16000, 16000)
    assert long.shape == (16000,) and np.abs(long).max() > 0.5
    with pytest.raises(R.ReadIssue, match="corrupt or unsupported audio"):
        R.decode_audio(b"RIFF\x00\x00garbage", 16000, 100)
    spec = R.log_mel(np.stack([short, long]), 16000, n_mels=20, n_fft=512, hop_length=160)
    assert spec.shape == (2, 20, 101)
    assert np.allclose(spec.mean((1, 2)), 0, atol=1e-4) and np.allclose(spec.std((1, 2)), 1, atol=1e-2)


def test_sequence_never_unpickles(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.ones((5, 3), np.float32))
    assert R.decode_sequence(buf.getvalue()).shape == (5, 3)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(R.ReadIssue, match="not a numeric .npy array"):
        R.decode_sequence(buf.getvalue())
    with pytest.raises(R.ReadIssue, match="npy"):
        R.decode_sequence(b"\x93NUMPY garbage")


def test_missing_files_text_and_vectors(tmp_path):
    with pytest.raises(R.ReadIssue, match="file not found"):
        R.read_bytes(tmp_path / "nope.png")
    with pytest.raises(R.ReadIssue, match="directory"):
        R.read_bytes(tmp_path)
    for cell in (None, float("nan"), "   "):
        assert R.is_missing(cell)
    with pytest.raises(R.ReadIssue, match="empty text"):
        R.clean_text("  ")
    assert R.clean_text(" hi ") == "hi"
    assert R.parse_vector("[1, 2.5]").tolist() == [1.0, 2.5]
    with pytest.raises(R.ReadIssue, match="NaN"):
        R.parse_vector([1.0, float("nan")])
    with pytest.raises(R.ReadIssue, match="JSON list"):
        R.parse_vector("1;2")


def test_paths_outside_base_dir_are_refused(tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (base / "link.png").symlink_to(tmp_path / "secret.png")  # inside by name, outside once resolved
    assert R.resolve_path("a/b.png", base, True) == (base / "a/b.png").resolve()
    for cell in ("../secret.png", str(tmp_path / "secret.png"), "link.png"):
        with pytest.raises(R.ReadIssue, match="path leaves the folder .* --allow-outside"):
            R.resolve_path(cell, base, True)
        assert R.resolve_path(cell, base, False) == (tmp_path / "secret.png").resolve()


def test_read_table_formats_and_errors(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    assert R.read_table(tmp_path / "t.csv").equals(df) and R.read_table(tmp_path / "t.parquet").equals(df)
    with pytest.raises(DataError, match="does not exist"):
        R.read_table(tmp_path / "missing.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="Cannot read table"):
        R.read_table(tmp_path / "bad.parquet")
