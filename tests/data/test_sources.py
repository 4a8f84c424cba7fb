"""MNIST and FSDD readers: real files, downloads from local ``file://`` copies, corrupt and missing files."""

from __future__ import annotations

import shutil
import tarfile

import numpy as np
import pytest

from mmfuse.data import fsdd, mnist
from mmfuse.data.download import manifest_digest
from mmfuse.errors import DataError


def test_mnist_real_files(data_dir):
    arrays = mnist.load_mnist(data_dir, download=False)
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["test_images"].shape == (10000, 28, 28)
    assert arrays["train_images"].dtype == np.uint8
    assert np.bincount(arrays["test_labels"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_downloads_and_verifies_from_a_mirror(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_URL", (data_dir / "mnist").as_uri() + "/")
    arrays = mnist.load_mnist(tmp_path)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(mnist.MNIST_FILES)
    assert int(arrays["train_labels"][0]) == 5


def test_mnist_bad_mirror_file_is_discarded(data_dir, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in mnist.MNIST_FILES:
        shutil.copy(data_dir / "mnist" / name, mirror / name)
    shutil.copy(mirror / "t10k-labels-idx1-ubyte.gz", mirror / "train-labels-idx1-ubyte.gz")  # wrong content
    monkeypatch.setattr(mnist, "MNIST_URL", mirror.as_uri() + "/")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*instead of a25bea73"):
        mnist.load_mnist(tmp_path / "data")
    assert not (tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte.gz").exists()


def test_mnist_corrupt_local_file_is_named(data_dir, tmp_path):
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        mnist.load_mnist(tmp_path, download=False)


def test_fsdd_real_recordings(data_dir):
    recs, waves = fsdd.load_fsdd(data_dir, download=False)
    assert len(recs) == 3000 and all(w.dtype == np.int16 and w.ndim == 1 for w in waves)
    splits = [fsdd.split_of(r.index) for r in recs]
    assert (splits.count("test"), splits.count("val"), splits.count("train")) == (300, 300, 2400)
    assert manifest_digest((data_dir / fsdd.FOLDER).glob("*.wav")) == fsdd.RECORDINGS_SHA256


@pytest.fixture
def small_fsdd(data_dir, tmp_path, monkeypatch):
    """Pretend FSDD has 4 recordings; returns their names and a copy of them."""
    keep = [fsdd.Recording(d, "theo", i) for d in (1, 7) for i in (0, 12)]
    monkeypatch.setattr(fsdd, "all_recordings", lambda: keep)
    src = tmp_path / "src"
    src.mkdir()
    for r in keep:
        shutil.copy(data_dir / fsdd.FOLDER / r.name, src / r.name)
    return keep, src


def test_fsdd_archive_download_is_verified_then_renamed(small_fsdd, tmp_path, monkeypatch):
    keep, src = small_fsdd
    archive = tmp_path / "fsdd.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for r in keep:
            tar.add(src / r.name, arcname=f"free-spoken-digit-dataset-x/recordings/{r.name}")
        tar.add(src / keep[0].name, arcname="free-spoken-digit-dataset-x/other/ignored.wav")
    monkeypatch.setattr(fsdd, "FSDD_URL", archive.as_uri())
    monkeypatch.setattr(fsdd, "RECORDINGS_SHA256", manifest_digest(src.iterdir()))
    recs, waves = fsdd.load_fsdd(tmp_path / "data")
    assert [r.name for r in recs] == [r.name for r in keep] and len(waves) == 4
    assert sorted(p.name for p in (tmp_path / "data" / "fsdd").iterdir()) == ["recordings"]  # archive and temp removed

    monkeypatch.setattr(fsdd, "RECORDINGS_SHA256", "0" * 64)
    with pytest.raises(DataError, match=r"do not match the expected.*MMFUSE_DATA_DIR"):
        fsdd.load_fsdd(tmp_path / "other")
    assert list((tmp_path / "other" / "fsdd").iterdir()) == []


def test_fsdd_missing_and_corrupt_recordings_are_named(small_fsdd, tmp_path):
    keep, src = small_fsdd
    folder = tmp_path / "data" / "fsdd" / "recordings"
    shutil.copytree(src, folder)
    (folder / keep[2].name).unlink()
    with pytest.raises(DataError, match=rf"{keep[2].name} is missing"):
        fsdd.load_fsdd(tmp_path / "data")
    shutil.copy(src / keep[2].name, folder / keep[2].name)
    (folder / keep[1].name).write_bytes(b"RIFF not really a wav")
    with pytest.raises(DataError, match=rf"Cannot decode .*{keep[1].name}"):
        fsdd.load_fsdd(tmp_path / "data")


def test_fsdd_absent_with_downloads_off_says_where(tmp_path):
    with pytest.raises(DataError, match=r"fsdd/recordings is missing.*MMFUSE_DATA_DIR"):
        fsdd.load_fsdd(tmp_path, download=False)
