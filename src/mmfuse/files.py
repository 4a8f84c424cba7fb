"""Writing without ever destroying or half-writing a user's data.

Every command that writes goes through this module; its rules:

1. **Atomic files.** :func:`atomic_write` / :func:`atomic_open` write to a fresh temporary name made by
   :func:`tempfile.mkstemp` in the destination's folder (``O_CREAT | O_EXCL``: never a fixed name, never
   through a symlink planted there) and rename it over the destination only once it is complete.
2. **Output folders.** :func:`check_output_dir` decides *before any work* whether a folder may be
   written: a new or empty folder, yes; one that holds an earlier mmfuse output (recognised by its
   :data:`MANIFEST`), only with ``overwrite``; any other non-empty folder, only with ``overwrite``, and then
   mmfuse adds its own files beside the user's and never deletes or replaces one of theirs. An output
   equal to, or containing, an input is always refused.
3. **Crash-safe swaps.** :func:`write_dir` stages a whole model folder in a temporary sibling, writes
   the manifest last, and exchanges the two folders with one ``renameat2(RENAME_EXCHANGE)`` call, so
   at every instant the output path holds either the complete old model or the complete new one.
   (Where the kernel or file system lacks the exchange, two renames are used, and the one instant
   between them is repaired by the next run, see rule 4.) A folder holding user files beside an
   mmfuse model is updated in place instead: new files under temporary names first, then the old
   manifest removed, the files renamed into place and the new manifest written last.
4. **Leftovers.** Temporary siblings are named ``.<name>.mmfuse-<pid>-<random>.<tmp|old>``; before
   writing ``<name>`` again, those whose process is gone are removed (or, for a model that a crash
   left only in its ``.old`` sibling, moved back) and reported.
5. **Loading checks the manifest.** :func:`read_manifest` refuses a folder whose manifest is missing,
   malformed, from a newer format, or whose listed files are absent or differ in size or SHA-256: a
   folder whose save was interrupted never loads as a model.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from mmfuse.errors import ConfigError, DataError

MANIFEST = "mmfuse.json"
FORMAT_VERSION = 1  # bump when a model folder can no longer be read by older code
KINDS = ("model", "results")
NOUN = {"model": "an mmfuse model", "results": "mmfuse results"}
_STALE = re.compile(r"^\.(?P<name>.+)\.mmfuse-(?P<pid>\d+)-[A-Za-z0-9_]+\.(?P<what>tmp|old)$")


def _version() -> str:
    from mmfuse import __version__

    return __version__


# ---------------------------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` only when the ``with`` block ends without an error.

    The temporary file is created by ``mkstemp`` (exclusive create, mode 0600 widened to the umask's
    normal file mode) beside ``path``, so a symlink planted at any name is never followed, and a crash
    leaves at most a ``.<name>.mmfuse-<pid>-*.tmp`` file that the next write of ``path`` removes.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"Output {str(path)!r} is a folder; give a file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temp_file(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a fresh ``.<name>.mmfuse-<pid>-<random>.tmp`` beside ``path``: exclusive create (never
    through a symlink), with a normal file's permissions (mkstemp's 0600 widened by the umask)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.mmfuse-{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (``str`` as UTF-8) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)  # os has no getter
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- inputs vs outputs
def _same_or_inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside folder ``b`` (both resolved)."""
    return a == b or b in a.parents


def check_not_input(out: str | Path, inputs: Iterable[str | Path | None], option: str = "-o") -> None:
    """Refuse an output that is an input, or a folder that contains one."""
    target = Path(out).expanduser().resolve()
    for item in inputs:
        if item is None or not isinstance(item, (str, Path)):
            continue
        src = Path(item).expanduser().resolve()
        if _same_or_inside(src, target):
            what = "is" if src == target else "contains"
            raise ConfigError(f"{option} {str(out)!r} {what} the input {str(item)!r}; write the output somewhere else.")


def check_output_file(
    path: str | Path, inputs: Iterable[str | Path | None] = (), overwrite: bool = False, option: str = "-o"
) -> Path:
    """Refuse writing file ``path`` when it is an input, a folder, or (without ``overwrite``) an existing file."""
    path = Path(path)
    check_not_input(path, inputs, option)
    if path.is_dir():
        raise ConfigError(
            f"{option} {str(path)!r} is a folder; give a file name such as {str(path / 'predictions.csv')!r}."
        )
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise ConfigError(
            f"{option} {str(path)!r} already exists; pass --overwrite to replace it, or choose another name."
        )
    return path


# ---------------------------------------------------------------------------------------------- folders
def manifest_kind(path: str | Path) -> str | None:
    """``"model"`` / ``"results"`` for a folder that holds an mmfuse manifest, else ``None``."""
    try:
        data = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) and data.get("format") == "mmfuse" else None
    return kind if kind in KINDS else None


# what mmfuse 0.1.0 wrote before manifests: recognised so that --overwrite can replace it (it never loads: no manifest)
LEGACY_FILES = {
    "model": {
        "model.safetensors",
        "config.json",
        "summary.txt",
        "objectives.safetensors",
        "schema.json",
        "labels.json",
        "metrics.json",
        "robustness.json",
        "report.html",
    }
}


def legacy_kind(path: str | Path) -> str | None:
    """``"model"`` for a model folder written by mmfuse 0.1.0 (``summary.txt`` starting "mmfuse", ``config.json`` and
    ``model.safetensors``, nothing else); ``"results"`` for a results folder of that version (``results.json`` with
    rows)."""
    path = Path(path)
    try:
        names = {p.name for p in path.iterdir()}
        if {"model.safetensors", "config.json", "summary.txt"} <= names <= LEGACY_FILES["model"]:
            return "model" if (path / "summary.txt").read_text()[:6] == "mmfuse" else None
        if "results.json" in names and isinstance(json.loads((path / "results.json").read_text()).get("rows"), list):
            return "results"
    except (OSError, ValueError, AttributeError):
        return None
    return None


def check_output_dir(
    path: str | Path,
    kind: str = "model",
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    option: str = "-o",
) -> str:
    """Decide, before any work, how folder ``path`` may be written; refuse in one sentence otherwise.

    Returns:
        ``"new"`` (absent or empty), ``"replace"`` (an earlier mmfuse output of this kind, ``overwrite`` given)
        or ``"beside"`` (a folder with other files, ``overwrite`` given: mmfuse's files are added beside them).
    """
    path = Path(path)
    check_not_input(path, inputs, option)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a file, not a folder; give a new folder name.")
    if not path.exists() or not any(path.iterdir()):
        return "new"
    found = manifest_kind(path) or legacy_kind(path)
    if found is not None and found != kind:
        raise ConfigError(f"{option} {str(path)!r} holds {NOUN[found]}, not {NOUN[kind]}; choose another folder.")
    if not overwrite:
        if found is not None:
            raise ConfigError(
                f"{option} {str(path)!r} already holds {NOUN[kind]}; pass --overwrite to "
                f"replace it, or choose another folder."
            )
        raise ConfigError(
            f"{option} {str(path)!r} is a folder with other files in it; choose a new or empty folder "
            "(or pass --overwrite to add mmfuse's files beside them: nothing of yours is deleted)."
        )
    if found is not None and manifest_kind(path) is None and found == "model":
        return "replace"  # a 0.1.0 model: its files are all mmfuse's (legacy_kind checked that)
    return "replace" if found is not None and not _foreign(path) else "beside"


def _owned(path: Path) -> set[str]:
    """Relative names of the files a folder's manifest lists (core and extra), plus the manifest."""
    try:
        data = json.loads((path / MANIFEST).read_text())
        return {MANIFEST, *data.get("files", {}), *data.get("extras", [])}
    except (OSError, ValueError, AttributeError):
        return {MANIFEST} if (path / MANIFEST).exists() else set()


def _foreign(path: Path) -> list[str]:
    """Files under ``path`` that its manifest does not list (the user's own)."""
    owned = _owned(path)
    out = []
    for p in path.rglob("*"):
        rel = p.relative_to(path).as_posix()
        if p.is_file() or p.is_symlink():
            if rel not in owned and not _STALE.match(p.name):
                out.append(rel)
    return sorted(out)


def _manifest(kind: str, files: Mapping[str, bytes]) -> str:
    return json.dumps(
        {
            "format": "mmfuse",
            "kind": kind,
            "format_version": FORMAT_VERSION,
            "mmfuse_version": _version(),
            "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "files": {
                name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in sorted(files.items())
            },
            "extras": [],
        },
        indent=2,
    )


def _as_bytes(files: Mapping[str, bytes | str]) -> dict[str, bytes]:
    out = {}
    for name, content in files.items():
        if not isinstance(content, (bytes, str)):
            raise TypeError(f"content of {name!r} must be bytes or str, not {type(content).__name__}")
        if name == MANIFEST or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"{name!r} is not a file name mmfuse may write into a folder")
        out[name] = content.encode("utf-8") if isinstance(content, str) else content
    return out


def _sibling(path: Path, what: str) -> Path:
    """A fresh, empty temporary sibling folder ``.<name>.mmfuse-<pid>-<random>.<what>``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.mmfuse-{os.getpid()}-", suffix=f".{what}", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; give it a normal folder's permissions
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def write_dir(
    path: str | Path,
    files: Mapping[str, bytes | str],
    kind: str = "model",
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Write folder ``path`` holding ``files`` (``{relative name: content}``) and a manifest, crash-safely.

    The policy of :func:`check_output_dir` applies (checked again here, so a folder that appeared since
    the early check is not lost).
    """
    path = Path(path)
    data = _as_bytes(files)
    mode = check_output_dir(path, kind, overwrite, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    manifest = _manifest(kind, data)
    if mode == "beside":
        _write_beside(path, data, manifest)
        return path
    tmp = _sibling(path, "tmp")
    old: Path | None = None
    try:
        for name, content in data.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (tmp / MANIFEST).write_text(manifest)  # last: a staged folder without it never loads
        if not path.exists():
            os.rename(tmp, path)
        elif not _exchange(tmp, path):  # fallback: two renames; clean_stale repairs a crash between them
            old = path.parent / f"{tmp.name[: -len('.tmp')]}.old"
            os.rename(path, old)
            os.rename(tmp, path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            os.rename(old, path)  # put the old folder back
        raise
    finally:
        for leftover in (tmp, old):  # the staged folder, or after the swap the old one
            if leftover is not None and leftover.exists() and leftover != path:
                shutil.rmtree(leftover, ignore_errors=True)
    return path


def _write_beside(path: Path, data: dict[str, bytes], manifest: str) -> None:
    """Add mmfuse's files to a folder that also holds the user's: never replaces a file mmfuse does not own."""
    owned = _owned(path)
    taken = sorted(n for n in data if (path / n).exists() and n not in owned)
    if taken:
        raise ConfigError(
            f"Folder {str(path)!r} already has {taken[0]!r}, which mmfuse did not write; choose another folder."
        )
    staged: list[tuple[str, str]] = []
    try:
        for name, content in data.items():  # 1. every new file under a temporary name
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _temp_file(target)
            staged.append((tmp, name))
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        (path / MANIFEST).unlink(missing_ok=True)  # 2. the old model stops loading ...
        for tmp, name in staged:  # 3. ... the new files take their names ...
            os.replace(tmp, path / name)
        staged = []
        for name in sorted(owned - set(data) - {MANIFEST}):  # mmfuse's own files of the old save
            (path / name).unlink(missing_ok=True)
        atomic_write(path / MANIFEST, manifest)  # 4. ... and the new one loads once this lands
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def add_files(path: str | Path, files: Mapping[str, bytes | str]) -> Path:
    """Add or replace extra files (reports, robustness results) in an mmfuse folder, each atomically.

    Extras are listed in the manifest without checksums, so replacing one never makes the folder's
    core files (the model) fail their check, at any instant.
    """
    path = Path(path)
    if manifest_kind(path) is None:
        raise DataError(
            f"{str(path)!r} is not an mmfuse folder (no {MANIFEST}); write it with 'mmfuse "
            f"fit', 'train', 'compare' or 'benchmark'."
        )
    data = _as_bytes(files)
    manifest = json.loads((path / MANIFEST).read_text())
    core = set(manifest.get("files", {}))
    clash = sorted(set(data) & core)
    if clash:
        raise ValueError(f"{clash[0]!r} is a core file of {str(path)!r}; write the whole folder again instead")
    foreign = set(_foreign(path))
    taken = sorted(n for n in data if n in foreign)
    if taken:
        raise ConfigError(
            f"Folder {str(path)!r} already has {taken[0]!r}, which mmfuse did not write; move it away first."
        )
    for name, content in data.items():
        atomic_write(path / name, content)
    manifest["extras"] = sorted(set(manifest.get("extras", [])) | set(data))
    atomic_write(path / MANIFEST, json.dumps(manifest, indent=2))
    return path


def claim_dir(
    path: str | Path,
    kind: str = "results",
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    option: str = "-o",
) -> Path:
    """Make ``path`` an mmfuse output folder now (manifest without core files), so that files written into
    it over a long run (:func:`add_files`) are recognised as mmfuse's, by a re-run and by a crash clean-up."""
    path = Path(path)
    mode = check_output_dir(path, kind, overwrite, inputs, option)
    path.mkdir(parents=True, exist_ok=True)
    if mode == "new" or manifest_kind(path) is None:
        manifest = json.loads(_manifest(kind, {}))
        if legacy_kind(path) == kind:  # results of mmfuse 0.1.0: every file in it is mmfuse's
            manifest["extras"] = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        atomic_write(path / MANIFEST, json.dumps(manifest, indent=2))
    return path


def write_into(path: str | Path, files: Mapping[str, bytes | str]) -> Path:
    """Write result files into mmfuse results folder ``path``, claiming it first when it is not one yet.

    What a Python caller of a benchmark gets without deciding anything: a new, empty or earlier-results
    folder is written; in a folder of the user's own, mmfuse's files are added beside theirs and a file of
    theirs is never replaced (the CLI decides up front with :func:`check_output_dir` and ``--overwrite``).
    """
    if manifest_kind(path) != "results":
        claim_dir(path, "results", overwrite=True)
    return add_files(path, files)


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (to write with :func:`write_into` / :func:`atomic_write`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- reading
def read_manifest(path: str | Path, kind: str = "model", verify: bool = True) -> dict[str, Any]:
    """The manifest of mmfuse folder ``path``, after checking that every core file it lists is intact.

    Raises:
        DataError: one sentence naming the folder or file and what to do.
    """
    path = Path(path)
    what = "'mmfuse fit' or 'mmfuse train'" if kind == "model" else "'mmfuse compare' or 'mmfuse benchmark'"
    if not path.is_dir():
        raise DataError(f"{str(path)!r} is not a folder; pass the {kind} folder written by {what}.")
    mf = path / MANIFEST
    if not mf.is_file():
        raise DataError(
            f"{str(path)!r} has no {MANIFEST}: it is not an mmfuse {kind}, was written "
            f"by mmfuse 0.1.0 (before manifests), "
            f"or its save was interrupted; write it again with {what}."
        )
    try:
        data = json.loads(mf.read_text())
        version = int(data["format_version"])
        listed = dict(data["files"])
        if data.get("format") != "mmfuse":
            raise ValueError("format is not 'mmfuse'")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{str(mf)!r} is malformed ({type(exc).__name__}: {str(exc)[:80]}); write the folder again with {what}."
        ) from None
    if version > FORMAT_VERSION:
        raise DataError(
            f"{str(path)!r} was written by mmfuse {data.get('mmfuse_version', '?')} "
            f"(folder format {version}); this mmfuse "
            f"({_version()}) reads format {FORMAT_VERSION} and older: upgrade mmfuse to load it."
        )
    if data.get("kind") != kind:
        raise DataError(
            f"{str(path)!r} holds mmfuse {data.get('kind')}, not a {kind}; pass the {kind} folder written by {what}."
        )
    for name, entry in listed.items():
        f = path / name
        try:
            size_ok = f.is_file() and f.stat().st_size == int(entry["bytes"])
            ok = size_ok and (not verify or sha256_file(f) == entry["sha256"])
        except (OSError, KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            state = "is missing" if not f.exists() else "does not match the manifest (changed or truncated)"
            raise DataError(f"{str(f)!r} {state}; the {kind} folder is damaged, write it again with {what}.")
    return data


# ---------------------------------------------------------------------------------------------- leftovers
def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: str | Path) -> list[str]:
    """Remove the temporary siblings of ``path`` that a killed earlier run left; returns what was done.

    A ``.old`` sibling holding a complete model while ``path`` itself is absent (a crash between the two
    renames of the fallback swap) is moved back to ``path`` instead.
    """
    path = Path(path)
    done: list[str] = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return done
    for p in sorted(entries):
        m = _STALE.match(p.name)
        if not m or m.group("name") != path.name or _alive(int(m.group("pid"))):
            continue
        if m.group("what") == "old" and not path.exists() and manifest_kind(p) is not None:
            os.rename(p, path)
            done.append(f"restored {str(path)!r} from an interrupted save")
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        done.append(f"removed {p.name!r} left by an interrupted run")
    return done


@contextlib.contextmanager
def scratch_dir(parent: str | Path, name: str) -> Iterator[Path]:
    """A private temporary folder ``parent/.<name>.mmfuse-<pid>-*.tmp``, removed on exit; stale ones from
    killed runs are removed first, so interrupted runs do not accumulate checkpoints."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent / name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.mmfuse-{os.getpid()}-", suffix=".tmp", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
