"""Readers for the cells of a table: file paths (image, audio, ``.npy`` sequence), text and vectors.

Every reader raises :class:`ReadIssue` with a short reason for a cell it cannot use (missing file,
corrupt image, empty text, NaN); the dataset builder turns that into a missing modality for the row
and a line of the issue log, instead of a traceback. Files are read once as bytes: the bytes give
the content hash (cache key) and are decoded from memory. ``.npy`` files are loaded with
``allow_pickle=False``, so no pickled code can run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
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
    """``None``, NaN or a blank string."""
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def resolve_path(cell: Any, base_dir: Path, restrict: bool, row: int, column: str) -> Path:
    """Absolute path of a path cell; relative paths are taken from ``base_dir``.

    Raises:
        DataError: ``restrict`` is set (``--base-dir`` given) and the path leaves ``base_dir``.
    """
    path = Path(str(cell).strip()).expanduser()
    full = (path if path.is_absolute() else base_dir / path).resolve()
    if restrict and not full.is_relative_to(base_dir.resolve()):
        raise DataError(
            f"Row {row}, column {column!r}: path {str(cell)!r} points outside the base directory {str(base_dir)!r}; "
            "move the file inside it or give a different --base-dir."
        )
    return full


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing or unreadable file raises :class:`ReadIssue`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReadIssue("file not found") from None
    except IsADirectoryError:
        raise ReadIssue("path is a directory") from None
    except OSError as exc:
        raise ReadIssue(f"cannot read file ({exc.strerror or exc})") from None


def digest(data: bytes | str) -> str:
    """SHA-256 hex digest of bytes (or of a string's UTF-8 encoding)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def decode_image(data: bytes) -> Any:
    """A fully decoded PIL image (corrupt or truncated data raises :class:`ReadIssue`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        raise ReadIssue("not a readable image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ReadIssue(f"corrupt image ({exc})") from None
    if image.width == 0 or image.height == 0:
        raise ReadIssue("empty image")
    return image


def image_array(image: Any, size: int, channels: int) -> np.ndarray:
    """Resize (bilinear) to ``size x size``; ``(channels, size, size)`` float32 in [0, 1]."""
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
    x = np.asarray(image, np.float32) / 255.0
    return x[None] if channels == 1 else x.transpose(2, 0, 1)


def decode_audio(data: bytes, sample_rate: int, n_samples: int) -> np.ndarray:
    """Decode with soundfile, mix to mono, resample to ``sample_rate`` (polyphase), centre-crop or zero-pad to ``n_samples``.

    Returns:
        ``(n_samples,)`` float32 in [-1, 1].
    """
    import soundfile
    from scipy.signal import resample_poly

    try:
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad files
        raise ReadIssue(f"corrupt or unsupported audio ({str(exc).strip()[:80]})") from None
    if wave.size == 0:
        raise ReadIssue("audio file has no samples")
    wave = wave.mean(1)
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(rate) // g).astype(np.float32)
    if not np.isfinite(wave).all():
        raise ReadIssue("audio holds NaN/inf samples")
    if len(wave) >= n_samples:
        start = (len(wave) - n_samples) // 2
        return wave[start : start + n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def log_mel(waves: np.ndarray, sample_rate: int, n_mels: int = 40, n_fft: int = 512, hop_length: int = 128) -> np.ndarray:
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
        raise ReadIssue(f"not a numeric .npy array ({str(exc)[:60]})") from None  # object arrays need pickle: refused
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
    """A CSV / TSV / Parquet / JSON-lines file as a DataFrame (one clear sentence for a bad file)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Table {str(path)!r} does not exist; check the path.")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        return pd.read_csv(path, sep="\t" if suffix.startswith(".tsv") else ",")
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for malformed files
        raise DataError(f"Cannot read table {str(path)!r} ({type(exc).__name__}: {str(exc)[:120]}); give a CSV, TSV, Parquet or JSON-lines file.") from exc
