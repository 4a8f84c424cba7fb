"""mmfuse.files: atomic writes, output-folder policy, crash-safe swaps, stale leftovers, manifest checks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from mmfuse import files as F
from mmfuse.errors import ConfigError, DataError


def _model(path, text="v1", **kw):
    return F.write_dir(path, {"config.json": json.dumps({"v": text}), "sub/w.bin": text.encode()}, kind="model", **kw)


# ------------------------------------------------------------------ atomic files
def test_atomic_write_replaces_only_when_complete(tmp_path):
    out = tmp_path / "a.txt"
    F.atomic_write(out, "one")
    with pytest.raises(RuntimeError):
        with F.atomic_open(out) as f:
            f.write(b"half")
            raise RuntimeError("crash while writing")
    assert out.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary file left


def test_atomic_write_never_follows_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "pred.csv"
    # every name an older version used, and names of the new pattern with a guessed pid
    for name in (".pred.csv.tmp", ".pred.csv.tmp.npy", f".pred.csv.mmfuse-{os.getpid()}-x.tmp", ".results.json.tmp"):
        (tmp_path / name).symlink_to(victim)
    F.atomic_write(out, "a,b\n1,2\n")
    assert victim.read_text() == "precious"
    assert out.read_text() == "a,b\n1,2\n" and not out.is_symlink()


def test_atomic_write_has_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        F.atomic_write(tmp_path / "f.json", "{}")
        d = _model(tmp_path / "m")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE(d.stat().st_mode) == 0o755  # not mkdtemp's 0700


# ------------------------------------------------------------------ output policy
def test_new_and_empty_folders_are_written(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new", "empty"):
        _model(tmp_path / name)
        assert F.read_manifest(tmp_path / name)["kind"] == "model"


def test_an_earlier_model_needs_overwrite(tmp_path):
    _model(tmp_path / "m", "v1")
    with pytest.raises(ConfigError, match="already holds an mmfuse model; pass --overwrite"):
        _model(tmp_path / "m", "v2")
    _model(tmp_path / "m", "v2", overwrite=True)
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"v": "v2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # old folder and staging gone


def test_a_folder_of_user_files_is_refused_and_with_overwrite_left_untouched(tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "train.csv").write_text("x,y\n1,2\n")
    (data / "img" / "0.png").write_bytes(b"\x89PNG...")
    with pytest.raises(ConfigError, match="folder with other files in it"):
        _model(data)
    _model(data, overwrite=True)
    assert (data / "train.csv").read_text() == "x,y\n1,2\n" and (data / "img" / "0.png").read_bytes() == b"\x89PNG..."
    F.read_manifest(data)  # the model beside them loads
    _model(data, "v2", overwrite=True)  # replacing it again keeps the user's files
    assert (data / "train.csv").exists() and (data / "img" / "0.png").exists()
    assert json.loads((data / "config.json").read_text()) == {"v": "v2"}


def test_a_user_file_with_an_mmfuse_name_is_never_replaced(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text("mine")
    with pytest.raises(ConfigError, match="already has 'config.json', which mmfuse did not write"):
        _model(tmp_path / "d", overwrite=True)
    assert (tmp_path / "d" / "config.json").read_text() == "mine"


def test_an_output_that_is_or_contains_an_input_is_refused(tmp_path):
    table = tmp_path / "data" / "train.csv"
    table.parent.mkdir()
    table.write_text("x\n1\n")
    with pytest.raises(ConfigError, match="contains the input"):
        F.check_output_dir(tmp_path / "data", overwrite=True, inputs=[table])
    with pytest.raises(ConfigError, match="contains the input"):
        F.check_output_dir(tmp_path, overwrite=True, inputs=[table])
    with pytest.raises(ConfigError, match="is the input"):
        F.check_output_file(table, inputs=[table], overwrite=True)
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        F.check_output_file(table)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        F.check_output_dir(table)
    assert table.read_text() == "x\n1\n"


def test_results_and_models_are_not_confused(tmp_path):
    F.claim_dir(tmp_path / "r", "results")
    with pytest.raises(ConfigError, match="holds mmfuse results, not an mmfuse model"):
        _model(tmp_path / "r", overwrite=True)


# ------------------------------------------------------------------ manifest on load
def test_a_damaged_or_foreign_folder_does_not_load(tmp_path):
    d = _model(tmp_path / "m")
    (d / "sub" / "w.bin").write_bytes(b"v9")  # same size, other content
    with pytest.raises(DataError, match="does not match the manifest"):
        F.read_manifest(d)
    (d / "sub" / "w.bin").unlink()
    with pytest.raises(DataError, match="is missing"):
        F.read_manifest(d)
    (d / F.MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="is malformed"):
        F.read_manifest(d)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="has no mmfuse.json"):
        F.read_manifest(tmp_path / "plain")


def test_a_folder_from_a_newer_format_says_so(tmp_path):
    d = _model(tmp_path / "m")
    data = json.loads((d / F.MANIFEST).read_text())
    data.update(format_version=F.FORMAT_VERSION + 1, mmfuse_version="9.0")
    (d / F.MANIFEST).write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"written by mmfuse 9.0 \(folder format 2\).*upgrade mmfuse"):
        F.read_manifest(d)


def test_extras_are_added_without_touching_the_core(tmp_path):
    d = _model(tmp_path / "m")
    F.add_files(d, {"report.html": "<p>1</p>"})
    F.add_files(d, {"report.html": "<p>2</p>"})  # refreshed
    assert json.loads((d / F.MANIFEST).read_text())["extras"] == ["report.html"]
    F.read_manifest(d)
    (d / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="which mmfuse did not write"):
        F.add_files(d, {"notes.txt": "x"})
    assert (d / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ crashes
KILL_BETWEEN = textwrap.dedent(
    """
    import os, sys
    from mmfuse import files as F
    where = sys.argv[2]
    if where == "exchange":
        F._exchange = lambda a, b: os._exit(9) if True else None      # killed just before the swap
    elif where == "fallback":
        F._exchange = lambda a, b: False                              # no RENAME_EXCHANGE here
        real = os.rename
        calls = []
        def rename(a, b):
            real(a, b)
            calls.append(1)
            if len(calls) == 1:
                os._exit(9)                                           # killed between the two renames
        os.rename = rename
    F.write_dir(sys.argv[1], {"config.json": '{"v": "v2"}', "sub/w.bin": b"v2"}, overwrite=True)
    """
)


@pytest.mark.parametrize("where", ["exchange", "fallback"])
def test_a_kill_during_the_swap_leaves_a_loadable_model_at_the_path(tmp_path, where):
    d = _model(tmp_path / "m", "v1")
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN, str(d), where], capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    if where == "exchange":  # killed before the swap: the old model is intact at its path
        assert json.loads((d / "config.json").read_text()) == {"v": "v1"}
        F.read_manifest(d)
    # the next write repairs (fallback: moves the old model back) or removes the leftovers, then writes
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "m"]
    assert leftovers and all(F._STALE.match(n) for n in leftovers)
    done = F.clean_stale(d)
    assert done and F.read_manifest(d)["kind"] == "model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_stale_leftovers_of_live_processes_are_kept(tmp_path):
    live = tmp_path / f".m.mmfuse-{os.getppid()}-abc.tmp"
    dead = tmp_path / ".m.mmfuse-999999999-abc.tmp"
    live.mkdir()
    dead.mkdir()
    F.clean_stale(tmp_path / "m")
    assert live.exists() and not dead.exists()


def test_scratch_dirs_of_killed_runs_are_removed(tmp_path):
    dead = tmp_path / ".mmfuse-ckpt.mmfuse-999999999-q.tmp"
    dead.mkdir()
    (dead / "best.ckpt").write_bytes(b"x")
    with F.scratch_dir(tmp_path, "mmfuse-ckpt") as d:
        assert d.is_dir() and not dead.exists()
    assert not d.exists()


def test_a_model_of_mmfuse_0_1_0_is_recognised_and_replaced_only_with_overwrite(tmp_path):
    old = tmp_path / "m"
    old.mkdir()
    (old / "model.safetensors").write_bytes(b"w")
    (old / "config.json").write_text("{}")
    (old / "summary.txt").write_text("mmfuse model: fusion=concat\n")
    with pytest.raises(ConfigError, match="already holds an mmfuse model; pass --overwrite"):
        _model(old)
    _model(old, "v2", overwrite=True)
    assert F.read_manifest(old) and not (old / "summary.txt").exists()


def test_results_of_mmfuse_0_1_0_can_be_written_again(tmp_path):
    old = tmp_path / "r"
    old.mkdir()
    (old / "results.json").write_text('{"rows": []}')
    (old / "leaderboard.png").write_bytes(b"png")
    F.write_into(old, {"results.json": '{"rows": [1]}', "leaderboard.png": b"new"})
    assert (old / "leaderboard.png").read_bytes() == b"new" and F.manifest_kind(old) == "results"
