"""Data folder resolution, download through a temporary file, and checksum verification (no network)."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
from pathlib import Path

import pytest

from mmfuse.data import download as dl
from mmfuse.errors import DataError


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_data_root_prefers_argument_then_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFUSE_DATA_DIR", str(tmp_path / "env"))
    assert dl.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert dl.data_root() == tmp_path / "env"
    monkeypatch.delenv("MMFUSE_DATA_DIR")
    assert dl.data_root() == Path("~/.cache/mmfuse/data").expanduser()


def test_fetch_file_url_with_good_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"multimodal" * 1000)
    dest = tmp_path / "data" / "set" / "file.bin"
    out = dl.fetch(src.as_uri(), dest, tmp_path / "data", "set", sha256(src.read_bytes()))
    assert out == dest and dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]  # no temporary file left


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"tampered")
    dest = tmp_path / "data" / "set" / "file.bin"
    with pytest.raises(DataError, match=r"file\.bin.*src\.bin.*instead of.*MMFUSE_DATA_DIR"):
        dl.fetch(src.as_uri(), dest, tmp_path / "data", "set", sha256(b"original"))
    assert list(dest.parent.iterdir()) == []


def test_fetch_gunzip_md5_checks_decompressed_content(tmp_path):
    content = b"\x00\x00\x08\x01" + bytes(range(200))
    src = tmp_path / "a.gz"
    src.write_bytes(gzip.compress(content, mtime=123))
    dest = tmp_path / "d" / "a.gz"
    dl.fetch(src.as_uri(), dest, tmp_path, "d", hashlib.md5(content).hexdigest(), "gunzip-md5")
    assert gzip.decompress(dest.read_bytes()) == content
    src.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot be read"):
        dl.fetch(src.as_uri(), tmp_path / "d" / "b.gz", tmp_path, "d", hashlib.md5(content).hexdigest(), "gunzip-md5")
    assert not (tmp_path / "d" / "b.gz").exists()


def test_unreachable_url_names_file_url_and_what_to_do(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(dl, "urlopen", offline)
    url = "https://example.org/data/x.csv"
    with pytest.raises(DataError) as err:
        dl.ensure_file(tmp_path, "mosi", "x.csv", url, "0" * 64)
    msg = str(err.value)
    assert "x.csv" in msg and url in msg and "network is unreachable" in msg
    assert str(tmp_path / "mosi") in msg and "MMFUSE_DATA_DIR" in msg
    assert list((tmp_path / "mosi").iterdir()) == []


def test_missing_local_file_with_downloads_off(tmp_path):
    with pytest.raises(DataError, match=r"x\.csv is missing.*MMFUSE_DATA_DIR"):
        dl.ensure_file(tmp_path, "mosi", "x.csv", "https://example.org/x.csv", None, download=False)


def test_existing_file_is_not_downloaded_again(tmp_path, monkeypatch):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "f.txt").write_text("here")
    monkeypatch.setattr(dl, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    assert dl.ensure_file(tmp_path, "set", "f.txt", "https://example.org/f.txt", None).read_text() == "here"


def test_check_digest_names_the_corrupt_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    dl.check_digest(path, sha256(b"abc"), "sha256", tmp_path, "set")
    with pytest.raises(DataError, match=r"f\.bin has sha256"):
        dl.check_digest(path, sha256(b"abd"), "sha256", tmp_path, "set")


def test_manifest_digest_depends_on_names_and_contents(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"1")
    (tmp_path / "b.wav").write_bytes(b"2")
    files = list(tmp_path.iterdir())
    expected = sha256(f"a.wav {sha256(b'1')}\nb.wav {sha256(b'2')}\n".encode())
    assert dl.manifest_digest(files) == dl.manifest_digest(files[::-1]) == expected
    (tmp_path / "b.wav").write_bytes(b"3")
    assert dl.manifest_digest(files) != expected


def test_unwritable_data_folder_is_reported(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(DataError, match=r"Cannot write f\.bin into .*not_a_folder.*MMFUSE_DATA_DIR"):
        dl.fetch("file:///nonexistent", blocker / "set" / "f.bin", blocker, "set")
