"""Property-based fuzzing of the cell readers: whatever the bytes, a decoder returns a usable value or raises
ReadIssue with a one-line, deterministic reason (the row's issue); nothing else ever escapes."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfuse.data.tables import png_claiming
from mmfuse.tabular import readers as R


def _png(w: int = 12, h: int = 9) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(w * h) % 256).astype(np.uint8).reshape(h, w)).save(buf, format="PNG")
    return buf.getvalue()


def _wav(n: int = 1600, rate: int = 8000) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, (0.1 * np.sin(np.arange(n) / 5.0)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(4, 3))
    return buf.getvalue()


VALID = {"image": _png(), "audio": _wav(), "sequence": _npy()}
LIMITS = R.Limits(max_file_mb=1, max_image_pixels=10_000, max_side=16)
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}|object at")


def decode(kind: str, data: bytes):
    if kind == "image":
        image = R.decode_image(data, LIMITS)
        assert image.width > 0 and image.height > 0 and max(image.size) <= LIMITS.max_side
        return R.image_array(image, 8, 1)
    if kind == "audio":
        return R.decode_audio(data, 8000, 800)
    return R.decode_sequence(data)


@st.composite
def damaged(draw):
    kind = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[kind])
    op = draw(st.sampled_from(["truncate", "flip", "insert", "random", "header"]))
    if op == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif op == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif op == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    elif op == "random":
        data = bytearray(draw(st.binary(max_size=512)))
    else:  # keep the magic, garble what follows it
        data = data[:8] + bytearray(draw(st.binary(min_size=0, max_size=128))) + data[136:]
    return kind, bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_give_a_value_or_a_read_issue(case):
    kind, data = case
    try:
        value = decode(kind, data)
    except R.ReadIssue as exc:
        reason = str(exc)
        assert reason and "\n" not in reason and len(reason) < 200 and not ADDRESS.search(reason), reason
        return
    assert np.isfinite(np.asarray(value, np.float64)).all()


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.one_of(st.floats(), st.integers(-10, 10), st.text(max_size=3)), max_size=6),
        st.none(),
    )
)
def test_vector_and_text_cells_give_a_value_or_a_read_issue(cell):
    for reader in (R.parse_vector, R.clean_text):
        try:
            value = reader(cell)
        except R.ReadIssue as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        if reader is R.parse_vector:
            assert value.ndim == 1 and value.size and np.isfinite(value).all()
        else:
            assert value.strip() == value and value


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (20_000, 20_000), (101, 100)])
def test_a_header_over_the_pixel_limit_is_refused_before_decoding(width, height):
    with pytest.raises(R.ReadIssue, match=r"over the 0 Mpixel limit \(raise --max-image-pixels"):
        R.decode_image(png_claiming(width, height), LIMITS)


def test_pil_bomb_limit_does_not_escape_with_the_default_limits():
    with pytest.raises(R.ReadIssue, match="Mpixel"):
        R.decode_image(png_claiming(100_000, 100_000))  # 10^10 pixels: PIL would raise DecompressionBombError


def test_a_large_image_is_downscaled_as_it_is_decoded():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3000, 1500), (10, 200, 30)).save(buf, format="PNG")
    image = R.decode_image(buf.getvalue())
    assert image.size == (1024, 512)


def test_a_truncated_wav_is_a_read_issue():
    data = _wav()
    with pytest.raises(R.ReadIssue, match=r"truncated WAV \(its data chunk declares 3200 bytes, the file holds 1600\)"):
        R.decode_audio(data[: 44 + 1600], 8000, 800)
    assert R.decode_audio(data, 8000, 800).shape == (800,)


def test_special_and_oversize_files_are_read_issues(tmp_path):
    import os

    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * (2 * 2**20))
    with pytest.raises(R.ReadIssue, match=r"file is 2 MB, over the 1 MB limit \(raise --max-file-mb"):
        R.read_bytes(big, LIMITS)
    with pytest.raises(R.ReadIssue, match="path is a character device, not a regular file"):
        R.read_bytes(R.Path("/dev/zero"))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(R.ReadIssue, match="path is a named pipe, not a regular file"):
        R.read_bytes(tmp_path / "pipe")  # never blocks waiting for a writer
    with pytest.raises(R.ReadIssue, match="path is a directory"):
        R.read_bytes(tmp_path)
    with pytest.raises(R.ReadIssue, match="path is a named pipe"):
        R.check_regular(tmp_path / "pipe")
