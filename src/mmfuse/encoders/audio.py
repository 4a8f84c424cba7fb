"""Log-mel spectrogram front end and a CNN on it, for raw waveforms.

The front end computes ``log(eps + M |STFT(x)|^2)`` with a Hann window and a Slaney-style mel
filterbank ``M`` (as in librosa), in torch so it runs inside the model on CPU or GPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mmfuse.encoders.base import Encoder
from mmfuse.encoders.cnn import Pool, conv_stack, pooled_size
from mmfuse.registry import ENCODERS


def resample(wave: Any, rate: int, target: int) -> Any:
    """Polyphase resampling of a 1-D NumPy wave from ``rate`` to ``target`` Hz (``scipy.signal.resample_poly`` with
    the ratio reduced by their gcd); the wave itself when the rates are equal."""
    if int(rate) == int(target):
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    return resample_poly(wave, int(target) // g, int(rate) // g)


def _hz_to_mel(f: Tensor) -> Tensor:
    # Slaney: linear below 1 kHz, logarithmic above
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    lin = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f.clamp_min(1e-9) / min_log_hz) / logstep, lin)


def _mel_to_hz(m: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> Tensor:
    """Slaney-normalised triangular mel filters ``(n_mels, n_fft // 2 + 1)`` (matches ``librosa.filters.mel``)."""
    f_max = f_max or sample_rate / 2
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        _hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
        _hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz = _mel_to_hz(mels)
    fdiff = torch.diff(hz)
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    enorm = 2.0 / (hz[2 : n_mels + 2] - hz[:n_mels])
    return (weights * enorm[:, None]).float()


class LogMelSpectrogram(nn.Module):
    """Waveform ``(B, T)`` -> log-mel spectrogram ``(B, n_mels, frames)``.

    Args:
        sample_rate: Hz of the waveform.
        n_fft: FFT size (window length).
        hop_length: samples between frames.
        n_mels: mel bands.
    """

    window: Tensor  # buffers (registered in __init__)
    mel: Tensor

    def __init__(self, sample_rate: int = 8000, n_fft: int = 512, hop_length: int = 128, n_mels: int = 40) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        spec = torch.stft(
            wave.float(), self.n_fft, self.hop_length, window=self.window, center=True, return_complex=True
        )
        power = spec.real.pow(2) + spec.imag.pow(2)  # (B, F, frames)
        return torch.log(self.mel @ power + 1e-6)  # (B, n_mels, frames)


class SpecAugment(nn.Module):
    """Frequency and time masking of a spectrogram during training (Park et al., "SpecAugment", Interspeech 2019).

    For each sample and each of ``masks`` rounds, a band of ``f ~ U{0..freq}`` consecutive frequency rows starting at
    ``f0 ~ U{0..F-f}`` and a span of ``t ~ U{0..time}`` consecutive frames starting at ``t0 ~ U{0..T-t}`` are set to
    zero (the mean of a standardised spectrogram). The model cannot lean on any one band or moment of a recording,
    which regularises an audio encoder that sees few distinct recordings. Identity in eval mode or when both
    widths are 0. Input and output ``(B, ..., F, T)``.
    """

    def __init__(self, freq: int = 0, time: int = 0, masks: int = 1) -> None:
        super().__init__()
        if min(freq, time, masks) < 0:
            raise ValueError(f"SpecAugment widths and masks must be >= 0; got freq={freq}, time={time}, masks={masks}.")
        self.freq, self.time, self.masks = int(freq), int(time), int(masks)

    def forward(self, spec: Tensor) -> Tensor:
        if not self.training or not (self.freq or self.time) or not self.masks:
            return spec
        b, n_freq, n_time = spec.shape[0], spec.shape[-2], spec.shape[-1]
        keep = torch.ones(b, n_freq, n_time, dtype=torch.bool, device=spec.device)
        for _ in range(self.masks):
            for width, size, axis in ((self.freq, n_freq, 1), (self.time, n_time, 2)):
                if not width:
                    continue
                w = torch.randint(0, min(width, size) + 1, (b, 1), device=spec.device)
                start = (torch.rand(b, 1, device=spec.device) * (size - w + 1)).floor().long()
                pos = torch.arange(size, device=spec.device)[None]
                band = (pos >= start) & (pos < start + w)  # (B, size)
                keep &= ~(band[:, :, None] if axis == 1 else band[:, None, :])
        return spec * keep.view(b, *([1] * (spec.dim() - 3)), n_freq, n_time).to(spec.dtype)


@ENCODERS.register("logmel_cnn")
class LogMelCNNEncoder(Encoder):
    """Raw waveform -> log-mel spectrogram -> per-utterance standardisation -> small CNN.

    Args:
        sample_rate, n_fft, hop_length, n_mels: front-end settings (see :class:`LogMelSpectrogram`).
        out_dim: embedding size.
        channels: conv block widths.
        dropout: dropout before the projection.
        pool: the final average-pooling grid over (mel bands, frames) (see :func:`~mmfuse.encoders.cnn.conv_stack`).

    Inputs: ``(B, T)`` waveform. Returns: ``(B, out_dim)``.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        n_fft: int = 512,
        hop_length: int = 128,
        n_mels: int = 40,
        out_dim: int = 64,
        channels: tuple[int, ...] | list[int] = (16, 32, 64),
        dropout: float = 0.1,
        pool: Pool = 1,
    ) -> None:
        super().__init__()
        self.out_dim = int(out_dim)
        self.frontend = LogMelSpectrogram(sample_rate, n_fft, hop_length, n_mels)
        self.features = conv_stack(1, channels, dropout, pool)
        self.proj = nn.Sequential(nn.Linear(channels[-1] * pooled_size(pool), out_dim), nn.ReLU())

    def forward(self, wave: Tensor) -> Tensor:
        spec = self.frontend(wave)
        spec = (spec - spec.mean((1, 2), keepdim=True)) / spec.std((1, 2), keepdim=True).clamp_min(1e-3)
        return self.proj(self.features(spec[:, None]))


@ENCODERS.register("spectrogram_cnn")
class SpectrogramCNNEncoder(Encoder):
    """A CNN on a pre-computed spectrogram ``(B, n_mels, frames)`` (same blocks as :class:`LogMelCNNEncoder`).

    Args:
        out_dim, channels, dropout, pool: as :class:`LogMelCNNEncoder`.
        spec_augment: ``{"freq": F, "time": T, "masks": m}`` masks bands and spans during training
            (:class:`SpecAugment`); empty: none.

    Inputs: ``(B, F, T)`` or ``(B, 1, F, T)``. Returns: ``(B, out_dim)``.
    """

    def __init__(
        self,
        out_dim: int = 64,
        channels: tuple[int, ...] | list[int] = (16, 32, 64),
        dropout: float = 0.1,
        pool: Pool = 1,
        spec_augment: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.out_dim = int(out_dim)
        self.augment = SpecAugment(**(spec_augment or {}))
        self.features = conv_stack(1, channels, dropout, pool)
        self.proj = nn.Sequential(nn.Linear(channels[-1] * pooled_size(pool), out_dim), nn.ReLU())

    def forward(self, spec: Tensor) -> Tensor:
        if spec.dim() == 3:
            spec = spec[:, None]
        return self.proj(self.features(self.augment(spec.float())))
