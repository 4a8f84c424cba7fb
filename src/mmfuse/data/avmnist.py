"""AV-MNIST: MultiBench's audio-visual digits, rebuilt from MNIST and the Free Spoken Digit Dataset.

AV-MNIST (Vielzeuf et al., "CentralNet", ECCV-W 2018; MultiBench, Liang et al., NeurIPS 2021) pairs
each MNIST image with a spoken recording of the same digit and degrades both modalities so that
neither suffices alone. The published files cannot be redistributed, so this module rebuilds the
data set from its public parts, deterministically from ``seed``:

**Images.** MNIST train (60,000) minus a validation carve of ``val_images`` (5,000) chosen by a
seeded permutation; MNIST test (10,000). Pixels are scaled to [0, 1]. As in MultiBench, PCA is fit
on *each split's* pixels separately (train, val and test; always on the full split, before any
subsampling, so a subsample holds exactly the items of the full split): with mean ``mu`` and
eigen-decomposition ``Cov = V diag(lam) V^T`` (``lam`` descending), every image keeps only its
projection on the ``k`` leading components and the mean is added back::

    x' = mu + V_k V_k^T (x - mu),   k = argmin_k | sum_{j<=k} lam_j / sum_j lam_j - image_energy |

so a fraction ``image_energy`` of the centred energy (variance) is kept, the closest a whole number of
components can get. MultiBench removes about 75% of the energy; ``image_energy=0.25`` gives k = 3 here
and the default 0.3 gives k = 4 (28% of the variance of MNIST train, 29% of test).
Adding the mean back keeps images looking like faint digits in about [0, 1] (values are not
clipped). Items are ``(1, 28, 28)`` float32; only the ``k`` coefficients per image are stored.

**Audio.** FSDD recordings split by take index (:func:`mmfuse.data.fsdd.split_of`): 0-4 test
(official), 5-9 validation, 10-49 train, so no validation or test recording is heard in training.
Each image is paired with a recording of the same digit from its split: for digit ``d``, the
split's recordings of ``d`` are shuffled by a seeded permutation, the permutations are
concatenated until there are as many entries as images of ``d``, and the ``j``-th image of ``d``
(in MNIST order) takes the ``j``-th entry, so every recording is used equally often (+-1). A
recording is centre-cropped or zero-padded (centred) to 1 s = 8,000 samples and peak-normalised
(``max |s| = 1``). At ``__getitem__`` additive white Gaussian noise is drawn at ``snr_db`` relative
to the power of the clean speech (mean of ``s^2`` over the recording's own samples, padding
excluded)::

    a = s + sigma * n,   n ~ N(0, I),   sigma^2 = mean(s^2) / 10^(snr_db / 10)

from ``numpy.random.default_rng((seed, 2, split, mnist_index))``, so the noise of a sample is
the same in every epoch and worker. MultiBench mixes in ESC-50 environmental noise, which is not
available here; white noise at a low SNR plays that role. ``snr_db=None`` gives clean audio.
Items are ``(8000,)`` float32 waveforms at 8 kHz.

With ``audio_format="logmel"`` the noisy waveforms are turned once, at load time, into standardised
log-mel spectrograms (:class:`mmfuse.encoders.audio.LogMelSpectrogram`, n_fft 512, hop 256, 40 mel
bands: items ``(40, 32)`` float32, each standardised to zero mean and unit variance), the form
MultiBench's AV-MNIST ships. The values are exactly what the ``logmel_cnn`` encoder would compute
from the same waveform with these settings; precomputing saves the STFT and the noise draw in
every epoch (about 3x faster training on 2 CPU cores). The dataset spec then names the
``spectrogram_cnn`` encoder.

**Defaults.** ``image_energy`` and ``snr_db`` were chosen with ``benchmarks/calibrate_avmnist.py`` so that
a small CNN reaches roughly 60-75% test accuracy from either modality alone while late fusion of
both does much better (the modalities are conditionally independent given the digit).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mmfuse.data.base import Batch, DatasetSpec, Splits
from mmfuse.data.fsdd import SAMPLE_RATE, Recording, load_fsdd, split_of
from mmfuse.data.mnist import load_mnist
from mmfuse.errors import ConfigError, DataError

SPLITS = {"train": 0, "val": 1, "test": 2}  # split codes used in the seeds
CLIP = SAMPLE_RATE  # 1 s of audio
DEFAULT_IMAGE_ENERGY = 0.3  # k = 4 components on MNIST (28% of the variance); see benchmarks/calibrate_avmnist.py
DEFAULT_SNR_DB = -6.0  # dB of white noise relative to the speech
AUDIO_FORMATS = ("waveform", "logmel")
LOGMEL = {"n_fft": 512, "hop_length": 256, "n_mels": 40}


def pca_project(pixels: np.ndarray, energy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Fit PCA on ``pixels (N, D)`` and keep the leading components closest to ``energy`` of the variance.

    Returns:
        ``(coeffs (N, k), components (k, D), mean (D,), retained)``; the degraded rows are
        ``mean + coeffs @ components`` and ``retained`` is the kept fraction of the centred energy.
    """
    mean = pixels.mean(0)
    centred = pixels - mean
    eigval, eigvec = np.linalg.eigh((centred.T @ centred).astype(np.float64))  # ascending
    eigval, eigvec = np.clip(eigval[::-1], 0, None), eigvec[:, ::-1]
    cumulative = np.cumsum(eigval) / eigval.sum()
    k = int(np.argmin(np.abs(cumulative - energy))) + 1
    components = eigvec[:, :k].T.astype(np.float32)  # (k, D)
    return centred @ components.T, components, mean.astype(np.float32), float(cumulative[k - 1])


def centre_clip(wave: np.ndarray, length: int = CLIP) -> tuple[np.ndarray, slice]:
    """Centre-crop or centre-pad ``wave (n,)`` with zeros to ``(length,)``; also the slice holding the recording."""
    n = len(wave)
    if n >= length:
        start = (n - length) // 2
        return wave[start : start + length].copy(), slice(0, length)
    out = np.zeros(length, wave.dtype)
    left = (length - n) // 2
    out[left : left + n] = wave
    return out, slice(left, left + n)


def pair_recordings(labels: np.ndarray, rec_digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each label, the index of a recording of the same digit; balanced use by concatenated permutations.

    Returns:
        ``(N,)`` indices into ``rec_digits``.
    """
    out = np.empty(len(labels), np.int64)
    for d in range(10):
        images, pool = np.flatnonzero(labels == d), np.flatnonzero(rec_digits == d)
        if len(images) == 0:
            continue
        if len(pool) == 0:
            raise DataError(f"No FSDD recording of digit {d} in this split; restore the full fsdd/recordings folder.")
        reps = -(-len(images) // len(pool))
        out[images] = np.concatenate([rng.permutation(pool) for _ in range(reps)])[: len(images)]
    return out


class AVMNISTSplit(Dataset):
    """One split of AV-MNIST; items ``{"inputs": {"image": (1, 28, 28), "audio": (8000,)}, ...}``.

    Attributes:
        labels, mnist_index: ``(N,)`` digit and position in the MNIST file of every item.
        recordings: this split's FSDD recordings; ``audio_ref[i]`` indexes the one paired with item ``i``.
        components: ``k``; ``retained_energy``: fraction of the split's centred pixel energy kept.
    """

    def __init__(
        self, split: str, seed: int, snr_db: float | None, images: dict[str, Any], audio: dict[str, Any]
    ) -> None:
        self.split, self.seed, self.snr_db = split, int(seed), snr_db
        self.labels, self.mnist_index = images["labels"], images["mnist_index"]
        self._coeffs, self._basis, self._mean = images["coeffs"], images["basis"], images["mean"]
        self.retained_energy, self.components = images["retained"], images["basis"].shape[0]
        self.recordings: list[Recording] = audio["recordings"]
        self.audio_ref = audio["ref"]
        self._clips, self._peaks, self._powers = audio["clips"], audio["peaks"], audio["powers"]
        self._logmel: np.ndarray | None = None

    def precompute_logmel(self, logmel: dict[str, int] | None = None, cache_dir: str | Path | None = None) -> None:
        """Replace the waveform items by standardised log-mel spectrograms (see the module docstring).

        ``logmel`` overrides :data:`LOGMEL` (``n_fft``, ``hop_length``, ``n_mels``). The array is stored in the
        content-addressed :class:`~mmfuse.tabular.cache.EmbeddingCache` (``cache_dir``, default
        ``$MMFUSE_CACHE_DIR``), keyed by the front-end settings and by everything the spectrograms depend on:
        seed, split, SNR, the paired MNIST and FSDD items. A second load with the same options reads it back
        (one file, no per-item noise draws); any other option gives another key, so a stale array is never used.
        """
        from mmfuse.tabular.cache import EmbeddingCache

        settings = {**LOGMEL, **(logmel or {})}
        unknown = sorted(set(settings) - set(LOGMEL))
        if unknown:
            raise ConfigError(f"Option logmel has unknown key(s) {unknown}; valid keys: {sorted(LOGMEL)}.")
        encoder_id = "avmnist-logmel/v1:" + ",".join(f"{k}={settings[k]}" for k in sorted(settings))
        frames = 1 + CLIP // settings["hop_length"]
        shape = (len(self), settings["n_mels"], frames)
        cache, key = EmbeddingCache(cache_dir), self._content_hash()
        spectrograms = cache.get(encoder_id, key, shape)
        if spectrograms is None:
            spectrograms = self._compute_logmel(settings, shape)
            cache.put(encoder_id, key, spectrograms)
        self._logmel = spectrograms

    def _content_hash(self) -> str:
        """sha256 of what the noisy audio of this split depends on (seed, split, SNR, pairing, recordings)."""
        digest = hashlib.sha256(repr((self.seed, self.split, self.snr_db)).encode())
        for array in (self.mnist_index, self.audio_ref, self._peaks, self._powers):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\0".join(r.name for r in self.recordings).encode())
        return digest.hexdigest()

    def _compute_logmel(self, settings: dict[str, int], shape: tuple[int, int, int], chunk: int = 2048) -> np.ndarray:
        from mmfuse.encoders.audio import LogMelSpectrogram

        front = LogMelSpectrogram(SAMPLE_RATE, **settings)
        out = np.empty(shape, np.float32)
        with torch.no_grad():
            for start in range(0, len(self), chunk):
                idx = range(start, min(start + chunk, len(self)))
                wave = torch.from_numpy(np.stack([self.clean_audio(i) + self.noise(i) for i in idx]))
                spec = front(wave)
                spec = (spec - spec.mean((1, 2), keepdim=True)) / spec.std((1, 2), keepdim=True).clamp_min(1e-3)
                out[start : start + len(idx)] = spec.numpy()
        return out

    def audio(self, i: int) -> np.ndarray:
        """The audio input of item ``i``: noisy waveform ``(8000,)`` or log-mel ``(40, 32)``."""
        if self._logmel is not None:
            return self._logmel[i]
        return self.clean_audio(i) + self.noise(i)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> np.ndarray:
        """Degraded image ``(28, 28)`` float32 of item ``i``."""
        return (self._mean + self._coeffs[i] @ self._basis).reshape(28, 28)

    def images(self, index: np.ndarray | None = None) -> np.ndarray:
        """Degraded images ``(n, 28, 28)`` float32 of the items ``index`` (default: all, 3 MB per 1,000)."""
        coeffs = self._coeffs if index is None else self._coeffs[index]
        return (self._mean + coeffs @ self._basis).reshape(-1, 28, 28)

    def clean_audio(self, i: int) -> np.ndarray:
        """Peak-normalised 1-s recording ``(8000,)`` of item ``i``, before noise."""
        r = self.audio_ref[i]
        return self._clips[r].astype(np.float32) / self._peaks[r]

    def noise(self, i: int) -> np.ndarray:
        """The additive noise ``(8000,)`` of item ``i`` (zeros when ``snr_db`` is None)."""
        if self.snr_db is None:
            return np.zeros(CLIP, np.float32)
        sigma = np.sqrt(self._powers[self.audio_ref[i]] / 10.0 ** (self.snr_db / 10.0))
        rng = np.random.default_rng((self.seed, 2, SPLITS[self.split], int(self.mnist_index[i])))
        return (sigma * rng.standard_normal(CLIP, dtype=np.float32)).astype(np.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "inputs": {"audio": torch.from_numpy(self.audio(i)), "image": torch.from_numpy(self.image(i)[None])},
            "masks": {"audio": torch.tensor(True), "image": torch.tensor(True)},
            "target": torch.tensor(int(self.labels[i]), dtype=torch.long),
        }

    def __getitems__(self, indices: list[int]) -> Batch:
        """A batch at once: one matrix product rebuilds the images, one gather reads the spectrograms."""
        idx = np.asarray(indices, dtype=np.int64)
        audio = self._logmel[idx] if self._logmel is not None else np.stack([self.audio(int(i)) for i in idx])
        ones = torch.ones(len(idx), dtype=torch.bool)
        return Batch(
            {
                "inputs": {"audio": torch.from_numpy(audio), "image": torch.from_numpy(self.images(idx)[:, None])},
                "masks": {"audio": ones, "image": ones.clone()},
                "target": torch.from_numpy(self.labels[idx].astype(np.int64)),
            }
        )


def _audio_bank(recs: list[Recording], waves: list[np.ndarray], split: str) -> dict[str, Any]:
    keep = [j for j, r in enumerate(recs) if split_of(r.index) == split]
    clips, peaks, powers = (
        np.zeros((len(keep), CLIP), np.int16),
        np.zeros(len(keep), np.float32),
        np.zeros(len(keep), np.float32),
    )
    for row, j in enumerate(keep):
        clip, active = centre_clip(waves[j])
        peak = float(np.abs(clip.astype(np.int32)).max())
        if peak == 0:
            raise DataError(f"FSDD recording {recs[j].name} is silent; replace it with the original file.")
        clips[row], peaks[row] = clip, peak
        powers[row] = np.mean((clip[active].astype(np.float64) / peak) ** 2)
    return {"recordings": [recs[j] for j in keep], "clips": clips, "peaks": peaks, "powers": powers}


def _subsample(n: int | None, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(size) if n is None else np.sort(rng.choice(size, n, replace=False))


def load_avmnist(
    data_dir: str | Path | None = None,
    seed: int = 0,
    image_energy: float = DEFAULT_IMAGE_ENERGY,
    snr_db: float | None = DEFAULT_SNR_DB,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    val_images: int = 5000,
    download: bool = True,
    audio_format: str = "waveform",
    logmel: dict[str, int] | None = None,
    cache_dir: str | Path | None = None,
) -> Splits:
    """AV-MNIST train / validation / test splits (see the module docstring for the construction).

    Args:
        data_dir: folder holding ``mnist/`` and ``fsdd/recordings/`` (default: ``$MMFUSE_DATA_DIR``, else
            ``~/.cache/mmfuse/data``); absent files are downloaded.
        seed: drives the validation carve, the pairing, the noise and the subsampling.
        image_energy: fraction of each split's centred pixel energy kept by the PCA projection, in (0, 1].
        snr_db: signal-to-noise ratio of the additive white noise in dB (None: clean audio).
        n_train, n_val, n_test: seeded subsample sizes (None: the whole split of 55,000 / 5,000 / 10,000).
        val_images: MNIST training images carved out for validation.
        download: fetch absent files; when False they raise :class:`DataError`.
        audio_format: ``"waveform"`` (raw noisy audio, encoder ``logmel_cnn``) or ``"logmel"``
            (precomputed standardised log-mel spectrograms ``(40, 32)``, encoder ``spectrogram_cnn``).
        logmel: with ``audio_format="logmel"``, overrides of :data:`LOGMEL` (``n_fft``, ``hop_length``,
            ``n_mels``; e.g. ``{"hop_length": 128}`` gives ``(40, 63)``).
        cache_dir: where the log-mel arrays are cached (default ``$MMFUSE_CACHE_DIR``, see
            :meth:`AVMNISTSplit.precompute_logmel`).

    Returns:
        :class:`Splits` of :class:`AVMNISTSplit`; items hold ``image (1, 28, 28)`` and ``audio (8000,)``
        float32 and a long ``target`` in 0..9.
    """
    if not 0 < image_energy <= 1:
        raise ConfigError(
            f"Option image_energy={image_energy} must lie in (0, 1]; it is the fraction of pixel energy kept."
        )
    if audio_format not in AUDIO_FORMATS:
        raise ConfigError(f"Option audio_format={audio_format!r} is unknown; use one of {list(AUDIO_FORMATS)}.")
    if logmel and audio_format != "logmel":
        raise ConfigError(f"Option logmel={logmel} needs audio_format='logmel' (it sets the precomputed spectrograms).")
    if not 0 < val_images < 60000:
        raise ConfigError(f"Option val_images={val_images} must lie in 1..59999.")
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for split, full in (("train", 60000 - val_images), ("val", val_images), ("test", 10000)):
        if sizes[split] is not None and not 0 < sizes[split] <= full:  # type: ignore[operator]
            raise ConfigError(
                f"Option n_{split}={sizes[split]} is out of range; use 1..{full} or None for the whole split."
            )
    mnist = load_mnist(data_dir, download)
    recs, waves = load_fsdd(data_dir, download)
    order = np.random.default_rng((seed, 0)).permutation(60000)
    index = {"train": np.sort(order[:-val_images]), "val": np.sort(order[-val_images:]), "test": np.arange(10000)}
    out = {}
    for split, code in SPLITS.items():
        source = "test" if split == "test" else "train"
        idx = index[split]
        labels = mnist[f"{source}_labels"][idx].astype(np.int64)
        coeffs, basis, mean, retained = pca_project(
            mnist[f"{source}_images"][idx].reshape(len(idx), 784).astype(np.float32) / 255.0, image_energy
        )
        audio = _audio_bank(recs, waves, split)
        audio["ref"] = pair_recordings(
            labels, np.array([r.digit for r in audio["recordings"]]), np.random.default_rng((seed, 1, code))
        )
        keep = _subsample(sizes[split], len(idx), np.random.default_rng((seed, 3, code)))
        audio["ref"] = audio["ref"][keep]
        images = {
            "labels": labels[keep],
            "mnist_index": idx[keep],
            "coeffs": coeffs[keep],
            "basis": basis,
            "mean": mean,
            "retained": retained,
        }
        out[split] = AVMNISTSplit(split, seed, snr_db, images, audio)
        if audio_format == "logmel":
            out[split].precompute_logmel(logmel, cache_dir)
    audio_encoder = (
        {"name": "logmel_cnn", "sample_rate": SAMPLE_RATE}
        if audio_format == "waveform"
        else {"name": "spectrogram_cnn"}
    )
    spec = DatasetSpec(
        name="avmnist",
        task="classification",
        num_outputs=10,
        encoders={"image": {"name": "cnn", "in_channels": 1}, "audio": audio_encoder},
        class_names=[str(d) for d in range(10)],
        metric="accuracy",
        options={
            "seed": seed,
            "image_energy": image_energy,
            "snr_db": snr_db,
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "val_images": val_images,
            "audio_format": audio_format,
            **({"logmel": dict(logmel)} if logmel else {}),
        },
    )
    return Splits(out["train"], out["val"], out["test"], spec=spec)
