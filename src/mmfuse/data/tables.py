"""Tables of real files built from the public data sets, for examples, tests and benchmarks of the table workflow.

:func:`digits_table` writes ``n`` rows into a folder: an MNIST training digit as a PNG, an FSDD recording of
the same digit as a WAV (a random one of its six speakers, training indices 5-49), a sentence naming the
digit, a numeric column, a categorical column and a unique ``sample`` id, with the target ``digit``. Paths
in the table are relative to the folder, as a user's table would have them. :func:`png_claiming` makes the header
of a decompression bomb.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def digits_table(
    root: str | Path, data_dir: str | Path | None, n: int, seed: int = 0, download: bool = False
):  # -> pd.DataFrame
    """Write the files of ``n`` rows under ``root`` (``img/``, ``wav/``) and return the table (not yet saved).

    Columns: ``sample`` (id), ``image``, ``audio``, ``text``, ``noise`` (standard normal, uninformative),
    ``colour`` (red/green/blue, uninformative), ``digit`` (0-9, the target).
    """
    import pandas as pd
    from PIL import Image

    from mmfuse.data.fsdd import recordings_folder
    from mmfuse.data.mnist import load_mnist

    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    mnist = load_mnist(data_dir, download=download)
    recordings = recordings_folder(data_dir, download=download)
    pick = rng.choice(len(mnist["train_labels"]), n, replace=False)
    rows = []
    for k, i in enumerate(pick):
        d = int(mnist["train_labels"][i])
        Image.fromarray(mnist["train_images"][i]).save(root / "img" / f"{k}.png")
        wav = f"{d}_{SPEAKERS[rng.integers(6)]}_{rng.integers(5, 50)}.wav"
        shutil.copyfile(recordings / wav, root / "wav" / wav)
        rows.append(
            {
                "sample": f"s{k:05d}",
                "image": f"img/{k}.png",
                "audio": f"wav/{wav}",
                "text": f"the speaker says {WORDS[d]}",
                "noise": float(rng.normal()),
                "colour": str(rng.choice(["red", "green", "blue"])),
                "digit": d,
            }
        )
    return pd.DataFrame(rows)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header (with valid CRCs) claims ``width x height`` grey pixels: the header of a decompression
    bomb, for tests and reliability benchmarks of the readers' pixel limit (its image data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
