"""MNIST (LeCun, Bottou, Bengio & Haffner, 1998): 70,000 handwritten digits in the canonical IDX files.

Layout in the data folder: ``mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. Absent files are
downloaded from a public mirror of the canonical gzip files (:data:`MNIST_URL`). The gzip bytes of
mirrors differ (header timestamps), so every file is verified by the MD5 of its *decompressed*
content, which is the canonical one; the check runs at every load since the file is decompressed
anyway.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mmfuse.data.download import advice, data_root, ensure_file
from mmfuse.errors import DataError

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FOLDER = "mnist"
# canonical MD5 of the uncompressed IDX files, with their shapes
MNIST_FILES: dict[str, tuple[str, tuple[int, ...]]] = {
    "train-images-idx3-ubyte.gz": ("6bbc9ace898e44ae57da46a324031adb", (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": ("a25bea736e30d166cdddb491f175f624", (60000,)),
    "t10k-images-idx3-ubyte.gz": ("2646ac647ad5339dbf082846283269ea", (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": ("27ae3e4e09519cfbb04c329615203637", (10000,)),
}


def read_idx(path: Path, md5: str, shape: tuple[int, ...], root: Path) -> np.ndarray:
    """Decode one gzip IDX file of unsigned bytes after checking the MD5 of its content.

    IDX layout: 2 zero bytes, type code 0x08 (uint8), number of dimensions ``n``, then ``n`` big-endian
    int32 sizes, then the data in C order.

    Returns:
        uint8 array of ``shape``.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(
            f"Cannot decompress {path} ({exc}); delete it to download it again, or {advice(root, FOLDER)}."
        ) from exc
    got = hashlib.md5(raw).hexdigest()
    if got != md5:
        raise DataError(
            f"{path} decompresses to content with MD5 {got} instead of the canonical {md5}; "
            f"delete it to download it again, or {advice(root, FOLDER)}."
        )
    ndim = raw[3]  # the canonical MD5 guarantees type code 0x08 and sizes == shape
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(data_dir: str | Path | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """The four MNIST arrays, downloading absent files first.

    Args:
        data_dir: data folder (default: ``$MMFUSE_DATA_DIR``, else ``~/.cache/mmfuse/data``).
        download: fetch absent files from :data:`MNIST_URL`; when False they raise :class:`DataError`.

    Returns:
        ``{"train_images": uint8 (60000, 28, 28), "train_labels": uint8 (60000,),
        "test_images": uint8 (10000, 28, 28), "test_labels": uint8 (10000,)}``.
    """
    root = data_root(data_dir)
    keys = {
        "train-images": "train_images",
        "train-labels": "train_labels",
        "t10k-images": "test_images",
        "t10k-labels": "test_labels",
    }
    out = {}
    for name, (md5, shape) in MNIST_FILES.items():
        path = ensure_file(root, FOLDER, name, MNIST_URL + name, md5, "gunzip-md5", download)
        out[keys[name.rsplit("-", 2)[0]]] = read_idx(path, md5, shape, root)
    return out
