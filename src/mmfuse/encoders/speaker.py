"""GE2E speaker encoder (Resemblyzer's pretrained weights), frozen: recordings -> 256-d voice embeddings.

Wan, Wang, Papir & Lopez Moreno, "Generalized End-to-End Loss for Speaker Verification", ICASSP 2018, with
the weights Resemblyzer (Apache-2.0) ships as ``resemblyzer/pretrained.pt``. The network is reimplemented
here and only its tensors are read (``torch.load(weights_only=True)``); no Resemblyzer code runs.

Preprocessing (as ``resemblyzer.preprocess_wav``): resample to 16 kHz (polyphase), raise the volume to
-30 dBFS (never lower it), remove silences longer than ~0.2 s with WebRTC VAD (mode 3 on 30 ms windows,
moving average over 8 windows, dilation by 7). A recording the VAD finds no voice in is kept whole.

Embedding of an utterance ``x`` (as ``VoiceEncoder.embed_utterance``):

* mel power spectrogram ``S = M |STFT(x)|^2``: 25 ms Hann window (400 samples), 10 ms hop, 40 Slaney mel
  bands, frames centred with zero padding (no logarithm);
* partial utterances of 160 frames (1.6 s) every 77 frames (1.3 a second, ~50 % overlap), the utterance
  zero-padded to cover the last one; a last partial less than 75 % covered by audio is dropped unless it is
  the only one;
* per partial ``e_p = relu(W h_T + b) / ||relu(W h_T + b)||_2`` with ``h_T`` the last hidden state of a
  3-layer LSTM (40 -> 256 -> 256 -> 256) and ``W`` 256 x 256;
* ``e = mean_p(e_p) / ||mean_p(e_p)||_2``, ``(256,)``, unit norm.

``SPEAKER_ENCODER_NAME``/``speaker_encoder_version()`` identify weights and preprocessing, for cache keys.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mmfuse.encoders.audio import mel_filterbank, resample
from mmfuse.encoders.base import Encoder
from mmfuse.errors import ConfigError
from mmfuse.registry import ENCODERS

SPEAKER_ENCODER_NAME = "ge2e"
SPEAKER_DIM = 256
SAMPLE_RATE = 16000
N_MELS = 40
WINDOW = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_STEP = round(SAMPLE_RATE / 1.3 / HOP)  # 77 frames: 1.3 partials a second
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
VAD_WINDOW = 480  # 30 ms
VAD_AVERAGE, VAD_MAX_SILENCE = 8, 6  # windows
INT16_MAX = 2**15 - 1
INSTALL = "pip install 'mmfuse[speaker]'"


def require_speaker_packages() -> None:
    """Raise :class:`ConfigError` (one sentence) unless ``resemblyzer`` (weights) and ``webrtcvad`` (VAD) are
    installed; neither is imported."""
    missing = [m for m in ("resemblyzer", "webrtcvad") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"GE2E speaker embeddings need the {' and '.join(missing)} package(s); install them with {INSTALL}."
        )


def ge2e_weights(weights_path: str | Path | None = None) -> Path:
    """The GE2E checkpoint: ``weights_path`` or ``pretrained.pt`` of the installed ``resemblyzer`` (located
    without importing it)."""
    if weights_path is not None:
        return Path(weights_path)
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"GE2E speaker embeddings need the resemblyzer package; install it with {INSTALL}.")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise ConfigError(f"The resemblyzer package has no {path.name}; reinstall it with {INSTALL}.")
    return path


def speaker_encoder_version(weights_path: str | Path | None = None) -> str:
    """Version string of the speaker embedding (weights file + preprocessing + front end), for cache keys."""
    require_speaker_packages()
    path = ge2e_weights(weights_path)
    return (
        f"{SPEAKER_ENCODER_NAME}/{path.name}:{path.stat().st_size}/resample_poly{SAMPLE_RATE}-vol{TARGET_DBFS:g}dB"
        f"-vad3/mel{N_MELS}-win{WINDOW}-hop{HOP}/partials{PARTIAL_FRAMES}-step{PARTIAL_STEP}-cov{MIN_COVERAGE}"
    )


def partial_starts(n_samples: int) -> list[int]:
    """First frame of each 160-frame partial utterance of a recording of ``n_samples`` (16 kHz) samples."""
    n_frames = math.ceil((n_samples + 1) / HOP)
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + PARTIAL_STEP + 1), PARTIAL_STEP))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def _trim_long_silences(wave: np.ndarray) -> np.ndarray:
    import webrtcvad
    from scipy.ndimage import binary_dilation

    wave = wave[: len(wave) - len(wave) % VAD_WINDOW]
    pcm = np.round(wave * INT16_MAX).astype("<i2").tobytes()  # 16-bit PCM, 2 bytes a sample
    vad = webrtcvad.Vad(3)
    flags = np.array(
        [vad.is_speech(pcm[s * 2 : (s + VAD_WINDOW) * 2], SAMPLE_RATE) for s in range(0, len(wave), VAD_WINDOW)],
        float,
    )
    padded = np.concatenate((np.zeros((VAD_AVERAGE - 1) // 2), flags, np.zeros(VAD_AVERAGE // 2)))
    run = np.cumsum(padded)
    run[VAD_AVERAGE:] = run[VAD_AVERAGE:] - run[:-VAD_AVERAGE]
    voiced = np.round(run[VAD_AVERAGE - 1 :] / VAD_AVERAGE).astype(bool)  # moving average over 8 windows
    voiced = binary_dilation(voiced, np.ones(VAD_MAX_SILENCE + 1))
    kept = wave[np.repeat(voiced, VAD_WINDOW)]
    return kept if len(kept) else wave


def preprocess_wave(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono wave ``(T,)`` in [-1, 1] -> 16 kHz, volume raised to -30 dBFS, long silences removed ``(T',)``."""
    require_speaker_packages()
    wave = resample(np.asarray(wave, np.float64), sample_rate, SAMPLE_RATE)
    rms = np.sqrt(np.mean((wave * INT16_MAX) ** 2)) if len(wave) else 0.0
    if rms > 0:
        change = TARGET_DBFS - 20 * np.log10(rms / INT16_MAX)
        if change > 0:  # never lower the volume
            wave = wave * 10 ** (change / 20)
    return _trim_long_silences(wave.astype(np.float32))


@ENCODERS.register("ge2e")
class GE2ESpeakerEncoder(Encoder):
    """Frozen GE2E speaker encoder on 16 kHz waveforms: ``z = W e`` with ``e`` the 256-d embedding of the
    module docstring.

    Args:
        out_dim: embedding size; ``None`` keeps the 256-d unit-norm embedding (no projection).
        weights_path: a GE2E checkpoint (default: Resemblyzer's ``pretrained.pt``).
        pretrained: load the weights (``False``: random LSTM, for tests; no package needed).

    Inputs: ``(B, T)`` waves at 16 kHz, preprocessed as :func:`preprocess_wave`; zeros at the end of a row are
    padding and ignored (or pass ``lengths (B,)``). Returns: ``(B, out_dim)``.
    """

    window: Tensor  # buffers (registered in __init__)
    mel: Tensor

    def __init__(self, out_dim: int | None = None, weights_path: str | None = None, pretrained: bool = True) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, SPEAKER_DIM, num_layers=3, batch_first=True)
        self.linear = nn.Linear(SPEAKER_DIM, SPEAKER_DIM)
        if pretrained:
            checkpoint = torch.load(ge2e_weights(weights_path), map_location="cpu", weights_only=True)
            state = checkpoint["model_state"]  # also holds the GE2E loss's scale w and bias b (unused)
            self.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("window", torch.hann_window(WINDOW), persistent=False)
        self.register_buffer("mel", mel_filterbank(SAMPLE_RATE, WINDOW, N_MELS), persistent=False)
        self.proj = nn.Linear(SPEAKER_DIM, out_dim) if out_dim else nn.Identity()
        self.out_dim = int(out_dim or SPEAKER_DIM)

    def mel_frames(self, wave: Tensor) -> Tensor:
        """Mel power spectrogram ``(B, T)`` -> ``(B, frames, 40)`` (``frames = 1 + T // 160``)."""
        spec = torch.stft(
            wave.float(), WINDOW, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True
        )
        return (self.mel @ (spec.real.pow(2) + spec.imag.pow(2))).transpose(1, 2)  # (B, 40, F) -> (B, F, 40)

    def partial_embeddings(self, mels: Tensor) -> Tensor:
        """``(P, 160, 40)`` partial utterances -> unit-norm ``(P, 256)``."""
        _, (hidden, _) = self.lstm(mels)
        return nn.functional.normalize(torch.relu(self.linear(hidden[-1])), dim=-1, eps=1e-12)

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:  # trailing zeros are padding
            nonzero = wave.detach() != 0
            lengths = torch.where(nonzero.any(1), wave.shape[1] - nonzero.flip(1).int().argmax(1), 0)
        starts = [partial_starts(int(n)) for n in lengths.tolist()]
        n_frames = max(s[-1] for s in starts) + PARTIAL_FRAMES
        wave = nn.functional.pad(wave.float(), (0, max(0, (n_frames - 1) * HOP - wave.shape[1])))
        keep = torch.arange(wave.shape[1], device=wave.device)[None] < lengths.to(wave.device)[:, None]
        frames = self.mel_frames(wave * keep)  # (B, F, 40), zero beyond each row's length
        owner = torch.tensor([b for b, s in enumerate(starts) for _ in s], device=wave.device)
        partials = torch.stack([frames[b, s : s + PARTIAL_FRAMES] for b, row in enumerate(starts) for s in row])
        e = self.partial_embeddings(partials)  # (P, 256)
        total = torch.zeros(len(starts), SPEAKER_DIM, dtype=e.dtype, device=e.device).index_add(0, owner, e)
        return self.proj(nn.functional.normalize(total, dim=-1, eps=1e-12))  # mean direction = sum direction


@functools.lru_cache(maxsize=2)
def _cached_ge2e(weights_path: str | None) -> GE2ESpeakerEncoder:
    return GE2ESpeakerEncoder(weights_path=weights_path).eval()


@torch.no_grad()
def embed_waves(
    waves: Sequence[np.ndarray],
    sample_rate: int,
    batch_size: int = 32,
    preprocess: bool = True,
    weights_path: str | Path | None = None,
) -> np.ndarray:
    """GE2E embeddings of mono waves ``[(T_i,)]`` at ``sample_rate``, each at its own length.

    Args:
        preprocess: apply :func:`preprocess_wave` (``False``: the waves are already 16 kHz and preprocessed).

    Returns:
        ``(N, 256)`` float32, unit norm rows.
    """
    if preprocess:
        waves = [preprocess_wave(w, sample_rate) for w in waves]
    elif sample_rate != SAMPLE_RATE:
        raise ConfigError(f"GE2E reads 16 kHz waves, not {sample_rate} Hz; pass preprocess=True to resample.")
    net = _cached_ge2e(None if weights_path is None else str(weights_path))
    out = np.zeros((len(waves), SPEAKER_DIM), np.float32)
    for s in range(0, len(waves), batch_size):
        chunk = [np.asarray(w, np.float32) for w in waves[s : s + batch_size]]
        lengths = torch.tensor([len(w) for w in chunk])
        batch = torch.zeros(len(chunk), max(1, int(lengths.max())))
        for k, w in enumerate(chunk):
            batch[k, : len(w)] = torch.from_numpy(w)
        out[s : s + len(chunk)] = net(batch, lengths).numpy()
    return out
