"""Where the built-in data sets live, and how missing files are fetched and verified.

The data folder is, in order: the ``data_dir`` argument of a loader, the environment variable
``MMFUSE_DATA_DIR``, then ``~/.cache/mmfuse/data``. Inside it every data set has its own folder
(``mnist/``, ``fsdd/recordings/``, ``handwritten/``, ``mosi/``). A file that is absent is downloaded
from its original public source into a temporary file next to its final place, its checksum is
verified, and only then is it renamed into place (``os.replace`` is atomic), so an interrupted or
corrupt download never leaves a file that looks valid. Every failure raises
:class:`mmfuse.errors.DataError` with one sentence naming the file, the URL and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from http.client import HTTPException
from pathlib import Path
from urllib.request import urlopen

from mmfuse.errors import DataError

ENV_VAR = "MMFUSE_DATA_DIR"
DEFAULT_DIR = "~/.cache/mmfuse/data"
TIMEOUT_S = 60.0  # network timeout of one download


def data_root(data_dir: str | Path | None = None) -> Path:
    """The data folder: ``data_dir``, else ``$MMFUSE_DATA_DIR``, else ``~/.cache/mmfuse/data``."""
    chosen = data_dir if data_dir is not None else os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(chosen).expanduser()


def advice(root: Path, folder: str) -> str:
    """The what-to-do clause shared by every data error."""
    return f"put the files in {root / folder} or set {ENV_VAR}"


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file: ``"sha256"``, ``"md5"``, or ``"gunzip-md5"`` (MD5 of the decompressed content)."""
    opener = gzip.open if algorithm == "gunzip-md5" else open
    h = hashlib.new("md5" if algorithm.endswith("md5") else algorithm)
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_digest(paths: Iterable[Path]) -> str:
    """SHA-256 of the text ``"<name> <sha256 of file>\\n"`` over ``paths`` sorted by name (one digest for a folder)."""
    lines = "".join(f"{p.name} {file_digest(p)}\n" for p in sorted(paths, key=lambda p: p.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def check_digest(path: Path, expected: str, algorithm: str, root: Path, folder: str) -> None:
    """Raise :class:`DataError` naming ``path`` when its digest is not ``expected`` (or it cannot be read)."""
    try:
        got = file_digest(path, algorithm)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"Cannot read {path} ({exc}); replace it with the original file: {advice(root, folder)}."
        ) from exc
    if got != expected:
        raise DataError(
            f"{path} has {algorithm} {got} instead of {expected} (corrupt or a different version); "
            f"delete it to download it again, or {advice(root, folder)}."
        )


def fetch(
    url: str, dest: Path, root: Path, folder: str, expected: str | None = None, algorithm: str = "sha256"
) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verify its digest, then rename it into place.

    Args:
        url: source address (``https://``, or ``file://`` in tests).
        dest: final path; its folder is created.
        root, folder: data folder and the data set's sub-folder, for the error message.
        expected: hex digest the file must have (None: no check).
        algorithm: digest kind, see :func:`file_digest`.

    Returns:
        ``dest``. On any failure nothing is left at ``dest`` and :class:`DataError` is raised.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DataError(
            f"Cannot write {dest.name} into {dest.parent} ({exc}); pass a writable data_dir or set {ENV_VAR}."
        ) from exc
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urlopen(url, timeout=TIMEOUT_S) as response:
                shutil.copyfileobj(response, out, 1 << 20)
        except (OSError, ValueError, HTTPException) as exc:  # URLError and HTTPError are OSErrors
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"Could not download {dest.name} from {url} ({reason}); {advice(root, folder)}.") from exc
        if expected is not None:
            try:
                got = file_digest(tmp, algorithm)
            except (OSError, EOFError) as exc:  # e.g. a truncated gzip file
                raise DataError(
                    f"Downloaded {dest.name} from {url} cannot be read ({exc}), so it was discarded; "
                    f"{advice(root, folder)}."
                ) from exc
            if got != expected:
                raise DataError(
                    f"Downloaded {dest.name} from {url} has {algorithm} {got} instead of {expected}, "
                    f"so it was discarded; "
                    f"{advice(root, folder)}."
                )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def ensure_file(
    root: Path, folder: str, name: str, url: str, expected: str | None, algorithm: str = "sha256", download: bool = True
) -> Path:
    """``root/folder/name``, downloaded from ``url`` first when it is absent (and ``download`` is on)."""
    path = root / folder / name
    if path.is_file():
        return path
    if not download:
        raise DataError(f"{path} is missing and downloads are off; {advice(root, folder)}.")
    return fetch(url, path, root, folder, expected, algorithm)
