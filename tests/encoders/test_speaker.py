"""GE2E speaker encoder: weights read with weights_only, embedding contract, FSDD speakers, Resemblyzer parity."""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pytest
import torch

from conftest import real_data_dir
from mmfuse.encoders import speaker as S
from mmfuse.errors import ConfigError
from mmfuse.registry import ENCODERS

HAVE_SPEAKER = all(importlib.util.find_spec(m) is not None for m in ("resemblyzer", "webrtcvad"))
needs_speaker = pytest.mark.skipif(not HAVE_SPEAKER, reason="needs resemblyzer and webrtcvad (the 'speaker' extra)")
FSDD = real_data_dir() / "fsdd" / "recordings"
needs_fsdd = pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD not found in {FSDD}; set MMFUSE_DATA_DIR")
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def _read(digit: int, speaker: str, index: int) -> np.ndarray:
    import soundfile

    wave, rate = soundfile.read(FSDD / f"{digit}_{speaker}_{index}.wav", dtype="float32")
    assert rate == 8000
    return wave


def test_partial_utterances():
    assert S.partial_starts(0) == [0] and S.partial_starts(4320) == [0]  # shorter than 1.6 s: one padded partial
    assert S.partial_starts(72000) == [0, 77, 154, 231, 308]  # 4.5 s; the last one is 89 % covered
    assert S.partial_starts(32000) == [0, 77]  # 2 s: the second partial is 77 % covered
    assert S.partial_starts(28000) == [0]  # 1.75 s: a second partial would be 61 % covered, dropped


def test_padding_is_ignored_and_the_lstm_is_frozen():
    torch.manual_seed(0)
    enc = ENCODERS.build("ge2e", pretrained=False).eval()
    assert enc.out_dim == 256 and not any(p.requires_grad for p in enc.parameters())
    x = 0.1 * torch.randn(2, 30000)
    x[1, 20000:] = 0  # row 1 is 20000 samples long
    with torch.no_grad():
        z = enc(x)
        assert torch.allclose(z[1], enc(x[1:, :20000])[0], atol=1e-6)
        assert torch.allclose(z, enc(torch.nn.functional.pad(x, (0, 5000))), atol=1e-6)
        assert torch.allclose(z, enc(x, torch.tensor([30000, 20000])), atol=1e-6)
    assert torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)


def test_missing_package_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # find_spec -> None, import -> ImportError
    for call in (S.ge2e_weights, S.require_speaker_packages, lambda: ENCODERS.build("ge2e")):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "pip install 'mmfuse[speaker]'" in message and "resemblyzer" in message
        assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message


@needs_speaker
def test_weights_load_with_weights_only():
    state = torch.load(S.ge2e_weights(), map_location="cpu", weights_only=True)["model_state"]
    enc = ENCODERS.build("ge2e")
    assert torch.equal(enc.lstm.weight_hh_l2, state["lstm.weight_hh_l2"])
    assert torch.equal(enc.linear.weight, state["linear.weight"])
    assert sum(p.numel() for p in enc.parameters()) == 1_423_616  # 1.4 M, all frozen
    assert S.speaker_encoder_version().startswith("ge2e/pretrained.pt:")


@needs_speaker
@needs_fsdd
def test_fsdd_embeddings_separate_speakers():
    waves = [_read(d, s, 10 + d) for s in SPEAKERS for d in (1, 4, 7)]  # 3 digits per speaker
    e = S.embed_waves(waves, 8000)
    assert e.shape == (18, 256) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert np.array_equal(e, S.embed_waves(waves, 8000))  # deterministic
    sim = e @ e.T
    same = np.kron(np.eye(6), np.ones((3, 3))).astype(bool)
    np.fill_diagonal(sim, -np.inf)
    # digits last ~0.3-0.8 s, far shorter than GE2E's 1.6 s partials: clear but imperfect separation (measured
    # 0.67 nearest-neighbour accuracy, chance 0.12; mean cosine 0.80 same speaker, 0.70 different)
    assert (same[np.arange(18), sim.argmax(1)]).mean() >= 0.5  # the nearest other recording: same speaker
    np.fill_diagonal(sim, np.nan)
    assert np.nanmean(sim[same]) > np.nanmean(sim[~same]) + 0.05


@needs_speaker
@needs_fsdd
def test_matches_resemblyzer_voice_encoder():
    """Resemblyzer's own pipeline (its VoiceEncoder loads pretrained.pt with torch's default weights_only=True)."""
    pytest.importorskip("librosa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resemblyzer imports the deprecated scipy.ndimage.morphology
        from resemblyzer import VoiceEncoder, preprocess_wav

    reference = VoiceEncoder("cpu", verbose=False)
    for name in ("0_george_0", "3_jackson_7", "9_yweweler_2"):
        wav = preprocess_wav(FSDD / f"{name}.wav")  # librosa's resampling
        ref = reference.embed_utterance(wav)
        assert np.abs(S.embed_waves([wav], 16000, preprocess=False)[0] - ref).max() < 1e-5  # same wave: same math
        ours = S.embed_waves([_read(*(int(p) if p.isdigit() else p for p in name.split("_")))], 8000)[0]
        assert float(ours @ ref) > 0.999  # our polyphase resampling: nearly the same
    long = np.concatenate([preprocess_wav(FSDD / f"{d}_theo_{d}.wav") for d in range(10)])  # several partials
    assert np.abs(S.embed_waves([long], 16000, preprocess=False)[0] - reference.embed_utterance(long)).max() < 1e-5
