"""Readers for the cells of a table: file paths (image, audio, ``.npy`` sequence), text and vectors.

Every reader raises :class:`ReadIssue` with a short reason for a cell it cannot use (missing file,
corrupt image, empty text, NaN); the dataset builder turns that into a missing modality for the row
and a line of the issue log, instead of a traceback. Files are read once as bytes: the bytes give
the content hash (cache key) and are decoded from memory. ``.npy`` files are loaded with
``allow_pickle=False``, so no pickled code can run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.errors import DataError


class ReadIssue(Exception):
    """A cell that cannot be used; the message is the reason shown in the issue log."""


@dataclass
class Issue:
    """One line of the issue log: a modality that is missing or was repaired for one row."""

    row: int  # row position in the table (0-based, header excluded)
    column: str
    reason: str
    file: str | None = None
    action: str = "missing"  # "missing" (modality masked out) or "imputed" (value replaced)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_missing(cell: Any) -> bool:
    """``None``, NaN, ``pd.NA`` (an empty cell of an Arrow column) or a blank string."""
    if cell is None or type(cell).__name__ == "NAType":
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def resolve_path(cell: Any, base_dir: Path, restrict: bool) -> Path:
    """Absolute path of a path cell; relative paths are taken from ``base_dir``, symlinks resolved.

    Raises:
        ReadIssue: ``restrict`` is set and the resolved path (after following every symlink) leaves
            ``base_dir``: that row's issue, so a table cannot make mmfuse read any file the user can.
    """
    path = Path(str(cell).strip()).expanduser()
    full = (path if path.is_absolute() else base_dir / path).resolve()
    if restrict and not full.is_relative_to(base_dir.resolve()):
        raise ReadIssue(
            f"path leaves the folder {str(base_dir)!r} (give --allow-outside, or a --base-dir "
            f"that holds it, to read it)"
        )
    return full


@dataclass(frozen=True)
class Limits:
    """What one cell may cost; a file beyond a limit is that row's issue, never the run's failure.

    ``max_file_mb``: bytes read from one file; ``max_image_pixels``: width x height, read from the image
    header before anything is decoded (PIL's own bomb limit is the default); ``max_side``: a larger
    decoded image is downscaled (antialiased, aspect kept) before the next one is decoded, so memory
    holds one full-size image at a time.
    """

    max_file_mb: float = 512.0
    max_image_pixels: int = 89_478_485
    max_side: int = 1024

    def __post_init__(self) -> None:
        if not self.max_file_mb > 0 or not self.max_image_pixels > 0 or not self.max_side > 0:
            raise DataError(
                f"Read limits must be positive (max_file_mb={self.max_file_mb}, "
                f"max_image_pixels={self.max_image_pixels}, max_side={self.max_side})."
            )


LIMITS = Limits()
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def check_regular(path: Path, limits: Limits = LIMITS) -> int:
    """Size in bytes of regular file ``path`` (symlinks followed); anything else raises :class:`ReadIssue`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ReadIssue("file not found") from None
    except OSError as exc:
        raise ReadIssue(f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    kind = _not_regular(st.st_mode)
    if kind is not None:
        raise ReadIssue(f"path is {kind}, not a regular file")
    if st.st_size > limits.max_file_mb * 2**20:
        raise ReadIssue(
            f"file is {st.st_size / 2**20:.0f} MB, over the {limits.max_file_mb:g} MB "
            f"limit (raise --max-file-mb to read it)"
        )
    return st.st_size


def read_bytes(path: Path, limits: Limits = LIMITS) -> bytes:
    """The bytes of regular file ``path``; a missing, special (FIFO, device, socket, folder), unreadable or
    over-size file raises :class:`ReadIssue`. Opened non-blocking and checked on the open descriptor, so a
    named pipe never hangs and a file swapped after the check is still caught."""
    cap = int(limits.max_file_mb * 2**20)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ReadIssue("file not found") from None
    except IsADirectoryError:
        raise ReadIssue("path is a directory, not a regular file") from None
    except OSError as exc:
        raise ReadIssue(f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        kind = _not_regular(st.st_mode)
        if kind is not None:
            raise ReadIssue(f"path is {kind}, not a regular file")
        if st.st_size > cap:
            raise ReadIssue(
                f"file is {st.st_size / 2**20:.0f} MB, over the {limits.max_file_mb:g} MB "
                f"limit (raise --max-file-mb to read it)"
            )
        chunks, total = [], 0
        while True:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > cap:
                raise ReadIssue(f"file grew past the {limits.max_file_mb:g} MB limit while being read")
        return b"".join(chunks)
    except OSError as exc:
        raise ReadIssue(f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)


def digest(data: bytes | str) -> str:
    """SHA-256 hex digest of bytes (or of a string's UTF-8 encoding)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def decode_image(data: bytes, limits: Limits = LIMITS) -> Any:
    """A fully decoded PIL image, downscaled to at most ``limits.max_side`` pixels a side.

    The pixel count is read from the header and checked against ``limits.max_image_pixels`` before any
    decoding (a decompression bomb is one row's issue); corrupt or truncated data raises :class:`ReadIssue`.
    """
    from PIL import Image, UnidentifiedImageError

    bomb_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked from the header
    try:
        image = Image.open(io.BytesIO(data))
        w, h = image.size
        if w * h > limits.max_image_pixels:
            raise ReadIssue(
                f"image is {w} x {h} = {w * h / 1e6:.0f} Mpixel, over the {limits.max_image_pixels / 1e6:.0f} "
                f"Mpixel limit "
                "(raise --max-image-pixels to read it)"
            )
        if max(w, h) > limits.max_side:
            image.draft(image.mode, (limits.max_side, limits.max_side))  # JPEG: decode at reduced scale
        image.load()
        if max(image.size) > limits.max_side:
            image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    except UnidentifiedImageError:
        raise ReadIssue("not a readable image") from None
    except ReadIssue:
        raise
    # noqa: BLE001 - PIL raises many types (OSError, ValueError, SyntaxError, struct.error ...)
    except Exception as exc:
        raise ReadIssue(f"corrupt image ({_reason(exc)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit
    if image.width == 0 or image.height == 0:
        raise ReadIssue("empty image")
    return image


def _reason(exc: BaseException) -> str:
    """A short, deterministic reason: no object addresses (``<_io.BytesIO object at 0x...>``), one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", text)
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x…", text)
    return text[:80]


def image_array(image: Any, size: int, channels: int) -> np.ndarray:
    """Resize (bilinear) to ``size x size``; ``(channels, size, size)`` float32 in [0, 1]."""
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(image, np.float32) / 255.0
    return x[None] if channels == 1 else x.transpose(2, 0, 1)


def decode_audio(data: bytes, sample_rate: int, n_samples: int | None) -> np.ndarray:
    """Decode with soundfile, mix to mono, resample to ``sample_rate`` (polyphase), centre-crop or zero-pad to
    ``n_samples`` (``None``: keep the whole recording).

    Returns:
        ``(n_samples,)`` float32 in [-1, 1].
    """
    import soundfile

    from mmfuse.encoders.audio import resample

    check_wav_complete(data)
    try:
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad files
        raise ReadIssue(f"corrupt or unsupported audio ({_reason(exc)})") from None
    if wave.size == 0:
        raise ReadIssue("audio file has no samples")
    wave = resample(wave.mean(1), rate, sample_rate).astype(np.float32)
    if not np.isfinite(wave).all():
        raise ReadIssue("audio holds NaN/inf samples")
    if n_samples is None:
        return wave.astype(np.float32)
    if len(wave) >= n_samples:
        start = (len(wave) - n_samples) // 2
        return wave[start : start + n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def check_wav_complete(data: bytes) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds.

    libsndfile reads such a file silently as a shorter recording; a cut-off upload or copy is a damaged
    file, so it becomes the row's issue. Streaming writers' placeholder sizes (0, 0xFFFFFFFF) are accepted.
    """
    import struct

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"data":
            held = len(data) - pos - 8
            if size not in (0, 0xFFFFFFFF) and size > held:
                raise ReadIssue(f"truncated WAV (its data chunk declares {size} bytes, the file holds {held})")
            return
        pos += 8 + size + (size & 1)  # chunks are padded to an even size


def log_mel(
    waves: np.ndarray, sample_rate: int, n_mels: int = 40, n_fft: int = 512, hop_length: int = 128
) -> np.ndarray:
    """Per-utterance standardised log-mel spectrograms ``(N, n_mels, frames)`` of waves ``(N, T)``.

    ``S = log(1e-6 + M |STFT(x)|^2)`` (Hann window, Slaney mel filters, as
    :class:`mmfuse.encoders.audio.LogMelSpectrogram`), then ``(S - mean(S)) / std(S)`` per utterance.
    """
    import torch

    from mmfuse.encoders.audio import LogMelSpectrogram

    frontend = LogMelSpectrogram(sample_rate, n_fft, hop_length, n_mels)
    with torch.no_grad():
        spec = frontend(torch.from_numpy(np.asarray(waves, np.float32)))
        spec = (spec - spec.mean((1, 2), keepdim=True)) / spec.std((1, 2), keepdim=True).clamp_min(1e-3)
    return spec.numpy().astype(np.float32)


def decode_sequence(data: bytes) -> np.ndarray:
    """A ``(T, F)`` float32 array from ``.npy`` bytes (``(T,)`` becomes ``(T, 1)``); never unpickles."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise ReadIssue(
            f"not a numeric .npy array ({_reason(exc)[:60]})"
        ) from None  # object arrays need pickle: refused
    except Exception:  # noqa: BLE001 - numpy raises several types for corrupt files
        raise ReadIssue("corrupt .npy file") from None
    if arr.dtype.kind not in "biuf":
        raise ReadIssue(f".npy array has dtype {arr.dtype}, not numbers")
    arr = arr.astype(np.float32)
    arr = arr[:, None] if arr.ndim == 1 else arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr
    if arr.shape[0] == 0:
        raise ReadIssue(".npy array is empty")
    if not np.isfinite(arr).all():
        raise ReadIssue(".npy array holds NaN/inf")
    return arr


def parse_vector(cell: Any) -> np.ndarray:
    """A 1-D float32 vector from a list/array cell or a JSON list string."""
    value = cell
    if isinstance(cell, str):
        try:
            value = json.loads(cell)
        except ValueError:
            raise ReadIssue("not a JSON list of numbers") from None
    try:
        with np.errstate(over="ignore"):  # a number beyond float32 becomes inf, refused just below
            arr = np.asarray(value, np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise ReadIssue("not a list of numbers") from None
    if arr.size == 0:
        raise ReadIssue("empty vector")
    if not np.isfinite(arr).all():
        raise ReadIssue("vector holds NaN/inf")
    return arr


def clean_text(cell: Any) -> str:
    """The cell as a stripped string; empty text raises :class:`ReadIssue`."""
    if is_missing(cell):
        raise ReadIssue("empty text" if isinstance(cell, str) else "no value")
    return str(cell).strip()


def read_table(path: str | Path) -> Any:
    """A CSV / TSV / Parquet / JSON-lines file as a DataFrame (one clear sentence for a bad file).

    A table of :data:`~mmfuse.tabular._wide.WIDE` columns or more has its float columns read into one float32
    block, and Parquet float-list columns stay Arrow columns (:mod:`mmfuse.tabular._wide`): a 100,000-column
    file then costs a small multiple of its values, not gigabytes of per-column objects.
    """
    import pandas as pd

    from mmfuse.tabular import _wide

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Table {str(path)!r} does not exist; check the path.")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return _wide.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        sep = "\t" if suffix.startswith(".tsv") else ","
        try:
            wide = _wide.read_wide_csv(path, sep)
        except (ValueError, UnicodeDecodeError, OSError, csv.Error):  # pandas' parser below says what is wrong
            wide = None
        return wide if wide is not None else pd.read_csv(path, sep=sep)
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for malformed files
        raise DataError(
            f"Cannot read table {str(path)!r} ({type(exc).__name__}: {str(exc)[:120]}); "
            f"give a CSV, TSV, Parquet or JSON-lines file."
        ) from exc
