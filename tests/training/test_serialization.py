from __future__ import annotations

import os
import stat

import pytest

from mmfuse.training.serialization import write_atomic_dir


def test_atomic_dir_has_normal_permissions_and_replaces_the_old_one(tmp_path):
    umask = os.umask(0o022)
    try:
        out = write_atomic_dir(tmp_path / "model", {"a.json": "{}", "sub/b.bin": b"\x00\x01"})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not mkdtemp's 0700
    assert (out / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    write_atomic_dir(out, {"c.json": "[]"})
    assert sorted(p.name for p in out.iterdir()) == ["c.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_a_crash_while_writing_leaves_the_old_directory_intact(tmp_path):
    out = write_atomic_dir(tmp_path / "model", {"a.json": "{}"})
    with pytest.raises(TypeError):
        write_atomic_dir(out, {"a.json": "[1]", "bad": 3})  # type: ignore[dict-item]
    assert (out / "a.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
