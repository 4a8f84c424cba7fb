"""Free Spoken Digit Dataset (Jackson et al., FSDD, https://github.com/Jakobovski/free-spoken-digit-dataset).

3,000 recordings of the digits 0-9 spoken by 6 speakers, 50 per speaker and digit, as mono 8 kHz
16-bit wav files named ``{digit}_{speaker}_{index}.wav`` in ``fsdd/recordings/``. License CC BY-SA 4.0.

Official split (the repository's README): index 0-4 of every speaker and digit is the test set
(300 files), 5-49 the training set. :func:`split_of` carves a validation set from the training
indices by index (5-9, 300 files), so validation recordings are never heard in training.

When the folder is absent, the GitHub archive of the pinned commit :data:`FSDD_COMMIT` is downloaded,
its ``recordings/*.wav`` are extracted into a temporary folder, the folder's manifest digest
(:func:`mmfuse.data.download.manifest_digest`) is compared with :data:`RECORDINGS_SHA256`, and only then
is the folder renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmfuse.data.download import advice, data_root, fetch, manifest_digest
from mmfuse.errors import DataError

FOLDER = "fsdd/recordings"
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.tar.gz"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
PER_SPEAKER = 50  # recordings per speaker and digit (index 0..49)
SAMPLE_RATE = 8000
RECORDINGS_SHA256 = (
    "dbd573d7cafe79c4b49f65718115e1304e24e067fa39eff18a660dc6cb9c360f"  # manifest digest of the 3,000 files
)
_NAME = re.compile(r"\d_[a-z]+_\d+\.wav")


@dataclass(frozen=True)
class Recording:
    """One FSDD file: the spoken ``digit``, the ``speaker`` and the take ``index`` (0-49)."""

    digit: int
    speaker: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.digit}_{self.speaker}_{self.index}.wav"


def all_recordings() -> list[Recording]:
    """The 3,000 recordings of the pinned commit, ordered by (digit, speaker, index)."""
    return [Recording(d, s, i) for d in range(10) for s in SPEAKERS for i in range(PER_SPEAKER)]


def split_of(index: int) -> str:
    """``"test"`` for take 0-4 (official), ``"val"`` for 5-9, ``"train"`` for 10-49."""
    return "test" if index < 5 else "val" if index < 10 else "train"


def _download_recordings(root: Path, folder: Path) -> None:
    """Fetch the pinned archive, extract its wav files and verify them before renaming the folder into place."""
    archive = fetch(FSDD_URL, folder.parent / f"fsdd-{FSDD_COMMIT[:8]}.tar.gz", root, FOLDER)
    tmp = Path(tempfile.mkdtemp(prefix=".recordings.", dir=folder.parent))
    umask = os.umask(0)  # read the umask (os has no getter)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; give it the permissions of a normal folder
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and "/recordings/" in member.name and _NAME.fullmatch(name):
                        (tmp / name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(
                f"Downloaded archive {archive.name} from {FSDD_URL} cannot be read ({exc}); {advice(root, FOLDER)}."
            ) from exc
        files = list(tmp.glob("*.wav"))
        if len(files) != len(all_recordings()) or manifest_digest(files) != RECORDINGS_SHA256:
            raise DataError(
                f"The recordings in {archive.name} from {FSDD_URL} do not match the expected 3,000 files "
                f"(found {len(files)}), so they were discarded; {advice(root, FOLDER)}."
            )
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)


def recordings_folder(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """``<data>/fsdd/recordings`` holding all 3,000 files, downloaded first when the folder is absent."""
    root = data_root(data_dir)
    folder = root / FOLDER
    if not folder.is_dir():
        if not download:
            raise DataError(f"{folder} is missing and downloads are off; {advice(root, FOLDER)}.")
        _download_recordings(root, folder)
    missing = [r.name for r in all_recordings() if not (folder / r.name).is_file()]
    if missing:
        raise DataError(
            f"{folder / missing[0]} is missing ({len(missing)} of 3,000 recordings absent); "
            f"delete the folder to download it again, or {advice(root, FOLDER)}."
        )
    return folder


def read_wav(path: Path, root: Path | None = None) -> np.ndarray:
    """Decode one FSDD file with ``soundfile``; anything but mono 8 kHz raises :class:`DataError` naming it.

    Returns:
        int16 samples ``(n,)``.
    """
    import soundfile

    where = advice(root, FOLDER) if root is not None else "replace it with the original file"
    try:
        samples, rate = soundfile.read(path, dtype="int16", always_2d=False)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad files
        raise DataError(f"Cannot decode {path} as a wav file ({exc}); {where}.") from exc
    if rate != SAMPLE_RATE or samples.ndim != 1 or len(samples) == 0:
        raise DataError(
            f"{path} is not a non-empty mono {SAMPLE_RATE} Hz recording (rate {rate}, shape {samples.shape}); {where}."
        )
    return samples


def load_fsdd(data_dir: str | Path | None = None, download: bool = True) -> tuple[list[Recording], list[np.ndarray]]:
    """All 3,000 FSDD recordings, decoded.

    Args:
        data_dir: data folder (default: ``$MMFUSE_DATA_DIR``, else ``~/.cache/mmfuse/data``).
        download: fetch the pinned archive when ``fsdd/recordings`` is absent.

    Returns:
        ``(recordings, waves)``: the :class:`Recording` list of :func:`all_recordings` and, for each,
        its int16 samples ``(n_i,)`` (0.14-2.3 s at 8 kHz).
    """
    folder = recordings_folder(data_dir, download)
    root = data_root(data_dir)
    recs = all_recordings()
    return recs, [read_wav(folder / r.name, root) for r in recs]
