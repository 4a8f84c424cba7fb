"""Audio files: soundfile -> mono -> polyphase resampling to ``sample_rate`` -> centre crop/zero pad to
``seconds`` -> standardised log-mel spectrogram (cached) -> the trainable ``spectrogram_cnn``; or, with
``encoder: ge2e``, the whole recording at 16 kHz -> frozen GE2E speaker embedding (256-d, cached) -> ``mlp``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.errors import ConfigError
from mmfuse.tabular import readers as R
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context

SPEAKER_DIM = 256  # GE2E utterance embeddings


@COLUMN_KINDS.register("audio")
class AudioKind(ColumnKind):
    """One column of audio paths; missing, refused or undecodable files are absent."""

    name = "audio"
    options = frozenset({"encoder", "out_dim", "sample_rate", "seconds", "n_mels"})
    encoders = ("spectrogram_cnn", "ge2e")
    sizes = ("dim", "sample_rate", "n_mels", "n_fft", "hop_length")
    spectrogram_options = frozenset({"sample_rate", "seconds", "n_mels"})  # not read by the ge2e path

    def check_options(self, modality: str, options: dict[str, Any]) -> None:
        super().check_options(modality, options)
        given = sorted(self.spectrogram_options & set(options))
        if self.encoder_name(options) == "ge2e" and given:
            raise ConfigError(
                f"Schema options {given} of audio modality {modality!r} do not apply with encoder 'ge2e' (it reads "
                f"whole recordings at 16 kHz); remove them."
            )

    def check_value(self, modality: str, key: str, value: Any) -> None:
        if key == "seconds" and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600
        ):
            raise ConfigError(
                f"Schema option 'seconds' of modality {modality!r} is {value!r}; give a duration in (0, 600] seconds."
            )

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        import soundfile

        if self.encoder_name(options) == "ge2e":
            _require_ge2e(columns[0])
            return self.new_state(columns, options, dim=SPEAKER_DIM)
        sr = int(options.get("sample_rate", 16000))
        seconds = options.get("seconds")
        if seconds is None:  # 95th percentile of the training durations (file headers only), in [0.5, 10] s
            durations = []
            for path in list(ctx.paths(columns[0]).values())[:500]:
                try:
                    R.check_regular(path, ctx.limits)  # a FIFO or device would block soundfile
                    durations.append(soundfile.info(str(path)).duration)
                except Exception:  # noqa: BLE001 - unreadable files are reported by transform
                    continue
            seconds = round(float(np.clip(np.percentile(durations, 95) if durations else 1.0, 0.5, 10.0)), 1)
        return self.new_state(
            columns,
            options,
            sample_rate=sr,
            seconds=float(seconds),
            n_mels=int(options.get("n_mels", 40)),
            n_fft=2 ** int(math.ceil(math.log2(0.025 * sr))),  # a 25 ms window, rounded up to a power of two
            hop_length=max(1, int(0.01 * sr)),  # 10 ms
        )

    def check_state(self, modality: str, state: dict[str, Any]) -> None:
        super().check_state(modality, state)
        if state.get("encoder") == "ge2e":
            return
        seconds = state.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
            raise ValueError(f"modality {modality!r} needs 'seconds' in (0, 600]")

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        col = state["columns"][0]
        if state.get("encoder") == "ge2e":
            return self._speaker_embeddings(ctx, col)
        sr, n_mels, n_fft, hop = state["sample_rate"], state["n_mels"], state["n_fft"], state["hop_length"]
        n_samples = int(round(state["seconds"] * sr))
        shape = (n_mels, 1 + n_samples // hop)  # (mels, frames)

        limits = ctx.limits

        def load(path: Path) -> np.ndarray:
            return R.decode_audio(R.read_bytes(path, limits), sr, n_samples)  # (n_samples,)

        def embed(waves: list[np.ndarray], device: str) -> np.ndarray:
            return R.log_mel(np.stack(waves), sr, n_mels, n_fft, hop)  # (n, mels, frames)

        encoder_id = f"logmel/sr{sr}/n{n_samples}/mels{n_mels}/fft{n_fft}/hop{hop}/resample_poly-centre-crop/std"
        return ctx.cached(encoder_id, col, shape, load, embed, f"log-mel {col}")

    @staticmethod
    def _speaker_embeddings(ctx: Context, col: str) -> tuple[np.ndarray, np.ndarray]:
        """Cached GE2E embeddings ``(N, 256)`` of the whole recordings (decoding, resampling and voice activity
        detection in DataLoader workers)."""
        from mmfuse.encoders.speaker import SAMPLE_RATE, embed_waves, preprocess_wave, speaker_encoder_version

        version = _require_ge2e(col, speaker_encoder_version)
        limits = ctx.limits

        def load(path: Path) -> np.ndarray:
            return preprocess_wave(R.decode_audio(R.read_bytes(path, limits), SAMPLE_RATE, None), SAMPLE_RATE)

        def embed(waves: list[np.ndarray], device: str) -> np.ndarray:
            return embed_waves(waves, SAMPLE_RATE, preprocess=False)

        return ctx.cached(version, col, (SPEAKER_DIM,), load, embed, f"GE2E {col}")

    def encoder(self, state: dict[str, Any]) -> dict[str, Any]:
        if state.get("encoder") == "ge2e":
            return super().encoder(state)  # mlp on the frozen embeddings
        return {"name": "spectrogram_cnn", "out_dim": state["out_dim"]}


def _require_ge2e(column: str, version: Callable[[], str] | None = None) -> str:
    """``version()`` (or ``""``); a missing speaker package becomes one sentence naming ``column``."""
    from mmfuse.encoders.speaker import require_speaker_packages

    try:
        require_speaker_packages()
        return version() if version is not None else ""
    except ConfigError as exc:
        raise ConfigError(
            f"Audio column {column!r} uses encoder 'ge2e', which needs the resemblyzer and webrtcvad packages; "
            f"install them with pip install 'mmfuse[speaker]'."
        ) from exc
