"""On-disk cache of frozen-encoder outputs, keyed by content hash and encoder version.

An entry is one ``.npy`` file at ``<root>/<encoder slug>/<key[:2]>/<key>.npy`` with
``key = sha256(encoder_id || 0x00 || content_sha256)``: the same image, recording or sentence
under the same encoder (weights + preprocessing, see :mod:`mmfuse.encoders.pretrained`) is
computed once and reused across runs, tables and fusion methods. Entries are written to a
temporary file (a fresh ``mkstemp`` name beside the entry) and renamed into place with ``os.replace``, so a
crash never leaves a partial entry and concurrent writers, the processes of a distributed encode
(:mod:`mmfuse.tabular.encoding`) or two runs sharing the folder, never tear or lose one: a reader sees
no file or a whole one, and two writers of one key write the same bytes. Entries are read with
``allow_pickle=False``. The root is ``$MMFUSE_CACHE_DIR`` or ``~/.cache/mmfuse/embeddings``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np

ENV_VAR = "MMFUSE_CACHE_DIR"


def default_root() -> Path:
    """``$MMFUSE_CACHE_DIR``, else ``~/.cache/mmfuse/embeddings``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mmfuse" / "embeddings"


class EmbeddingCache:
    """Content-addressed store of per-item arrays.

    Args:
        root: cache folder (default: :func:`default_root`).
        enabled: ``False`` computes everything and stores nothing (``--no-cache``).

    Attributes ``hits`` and ``misses`` count items served from disk and computed by
    :func:`mmfuse.tabular.encoding.encode`, since creation;
    ``repaired`` counts entries that were unreadable, of the wrong shape or not finite (a torn or foreign
    file): they are recomputed and written again, never used.
    """

    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.repaired = 0

    @staticmethod
    def key(encoder_id: str, content_hash: str) -> str:
        """``sha256(encoder_id || 0x00 || content_hash)``."""
        return hashlib.sha256(f"{encoder_id}\0{content_hash}".encode()).hexdigest()

    def _path(self, encoder_id: str, key: str) -> Path:
        slug = (
            re.sub(r"[^0-9A-Za-z.+-]+", "_", encoder_id.split("/")[0])[:40]
            + "-"
            + hashlib.sha256(encoder_id.encode()).hexdigest()[:12]
        )
        return self.root / slug / key[:2] / f"{key}.npy"

    def get(self, encoder_id: str, content_hash: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The stored array, or ``None`` when absent; an entry that is unreadable, not float32, not finite or
        (when ``shape`` is given) of another shape is counted in ``repaired`` and treated as absent."""
        if not self.enabled:
            return None
        path = self._path(encoder_id, self.key(encoder_id, content_hash))
        if not path.exists():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            value = None
        if (
            value is None
            or value.dtype != np.float32
            or (shape is not None and value.shape != tuple(shape))
            or not np.isfinite(value).all()
        ):
            self.repaired += 1
            return None
        return value

    def put(self, encoder_id: str, content_hash: str, value: np.ndarray) -> None:
        """Store ``value`` atomically (temporary file + rename)."""
        if not self.enabled:
            return
        path = self._path(encoder_id, self.key(encoder_id, content_hash))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(value), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
