"""AV-MNIST rebuilt from the real MNIST and FSDD files: splits, pairing, PCA energy, noise level, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from mmfuse.data.avmnist import centre_clip, load_avmnist, pair_recordings, pca_project
from mmfuse.data.mnist import load_mnist
from mmfuse.errors import ConfigError


@pytest.fixture(scope="module")
def full(data_dir):
    return load_avmnist(data_dir)


@pytest.fixture(scope="module")
def mnist(data_dir):
    return load_mnist(data_dir)


def test_split_sizes_labels_and_spec(full):
    assert (len(full.train), len(full.val), len(full.test)) == (55000, 5000, 10000)
    assert not set(full.train.mnist_index) & set(full.val.mnist_index)  # the validation carve is disjoint
    for ds in (full.train, full.val, full.test):
        assert sorted(np.unique(ds.labels)) == list(range(10))
    spec = full.spec
    assert spec.task == "classification" and spec.num_outputs == 10 and spec.metric == "accuracy"
    assert spec.encoders == {
        "image": {"name": "cnn", "in_channels": 1},
        "audio": {"name": "logmel_cnn", "sample_rate": 8000},
    }
    assert spec.class_names == [str(d) for d in range(10)]


def test_item_contract(full):
    item = full.test[123]
    assert item["inputs"]["image"].shape == (1, 28, 28) and item["inputs"]["image"].dtype == torch.float32
    assert item["inputs"]["audio"].shape == (8000,) and item["inputs"]["audio"].dtype == torch.float32
    assert item["masks"] == {"audio": torch.tensor(True), "image": torch.tensor(True)}
    assert item["target"].dtype == torch.long and int(item["target"]) == full.test.labels[123]
    batch = torch.utils.data.default_collate([full.test[i] for i in range(4)])
    assert batch["inputs"]["audio"].shape == (4, 8000) and batch["masks"]["image"].shape == (4,)
    images = full.test.images()
    np.testing.assert_allclose(images[123], item["inputs"]["image"][0].numpy(), atol=1e-5)
    assert (
        -0.75 < images.min() and images.max() < 1.75 and np.mean((images > -0.25) & (images < 1.25)) > 0.995
    )  # about [0, 1]


def test_pairing_same_digit_split_takes_and_balanced_use(full):
    takes = {"train": range(10, 50), "val": range(5, 10), "test": range(0, 5)}
    for ds in (full.train, full.val, full.test):
        digits = np.array([r.digit for r in ds.recordings])
        np.testing.assert_array_equal(digits[ds.audio_ref], ds.labels)
        assert {r.index for r in ds.recordings} == set(takes[ds.split])
        assert len({r.speaker for r in ds.recordings}) == 6
        uses = np.bincount(ds.audio_ref, minlength=len(ds.recordings))
        for d in range(10):
            assert np.ptp(uses[digits == d]) <= 1  # every recording of a digit used equally often (+-1)


def test_pca_keeps_the_requested_energy(full, mnist):
    ds = full.test
    raw = mnist["test_images"][ds.mnist_index].reshape(-1, 784).astype(np.float64) / 255
    degraded = ds.images().reshape(-1, 784).astype(np.float64)
    mu = raw.mean(0)
    kept = ((degraded - mu) ** 2).sum() / ((raw - mu) ** 2).sum()
    assert kept == pytest.approx(ds.retained_energy, abs=1e-3)
    assert ds.components == 4 and abs(kept - 0.3) < 0.03  # default 0.3: 4 components hold ~29% of the variance
    # the degraded images are the rank-k PCA reconstruction: the residual is orthogonal to it
    assert abs(((degraded - mu) * (raw - degraded)).sum()) < 1e-3 * ((raw - mu) ** 2).sum()


@pytest.mark.parametrize("energy", [0.1, 0.45, 0.8, 0.95])
def test_pca_project_retained_fraction_is_close_to_the_request(mnist, energy):
    pixels = mnist["test_images"][:3000].reshape(-1, 784).astype(np.float32) / 255
    coeffs, basis, mean, retained = pca_project(pixels, energy)
    assert abs(retained - energy) < 0.02 and coeffs.shape == (3000, basis.shape[0])
    np.testing.assert_allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-4)  # orthonormal components
    kept = ((coeffs @ basis) ** 2).sum() / ((pixels - mean) ** 2).sum()
    assert kept == pytest.approx(retained, abs=1e-3)


def test_noise_matches_the_requested_snr(full, data_dir):
    ds = full.val
    checked = 0
    for i in range(0, len(ds), 250):
        rec = ds.recordings[ds.audio_ref[i]]
        wave, _ = soundfile.read(data_dir / "fsdd" / "recordings" / rec.name, dtype="float64")
        if len(wave) > 8000:
            continue
        speech_power = np.mean((wave / np.abs(wave).max()) ** 2)
        noise = ds[i]["inputs"]["audio"].numpy().astype(np.float64) - ds.clean_audio(i)
        snr = 10 * np.log10(speech_power / np.mean(noise**2))
        assert snr == pytest.approx(ds.snr_db, abs=0.5)
        checked += 1
    assert checked >= 15
    assert np.abs(ds.clean_audio(0)).max() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def small(data_dir):
    return load_avmnist(data_dir, n_train=300, n_val=50, n_test=80)


@pytest.fixture(scope="module")
def other_seed_clean(data_dir):
    return load_avmnist(data_dir, seed=1, n_train=300, n_val=50, n_test=80, snr_db=None)


def test_subsample_holds_the_full_split_items(full, small):
    assert (len(small.train), len(small.val), len(small.test)) == (300, 50, 80)
    full_pos = {int(m): j for j, m in enumerate(full.train.mnist_index)}
    for i in (0, 137, 299):
        a, b = small.train[i], full.train[full_pos[int(small.train.mnist_index[i])]]
        assert torch.equal(a["inputs"]["audio"], b["inputs"]["audio"]) and torch.equal(
            a["inputs"]["image"], b["inputs"]["image"]
        )
        assert torch.equal(small.train[i]["inputs"]["audio"], a["inputs"]["audio"])  # same noise every epoch


def test_seed_changes_carve_pairing_and_noise(full, small, other_seed_clean):
    other = other_seed_clean
    assert not np.array_equal(other.train.mnist_index, small.train.mnist_index)
    test_pos = other.test.mnist_index  # the test split is MNIST test in order, so positions are indices
    assert not np.array_equal(other.test.audio_ref, full.test.audio_ref[test_pos])
    assert torch.equal(
        other.test[0]["inputs"]["audio"], torch.from_numpy(other.test.clean_audio(0))
    )  # snr_db=None: clean
    noisy_seed0 = full.test[int(test_pos[0])]["inputs"]["audio"].numpy() - full.test.clean_audio(int(test_pos[0]))
    other.test.snr_db = full.test.snr_db
    noisy_seed1 = other.test[0]["inputs"]["audio"].numpy() - other.test.clean_audio(0)
    assert np.std(noisy_seed1) > 0 and not np.allclose(noisy_seed0, noisy_seed1)


def test_pair_recordings_is_seeded():
    labels = np.repeat(np.arange(10), 7)
    digits = np.repeat(np.arange(10), 3)
    a = pair_recordings(labels, digits, np.random.default_rng(0))
    assert np.array_equal(a, pair_recordings(labels, digits, np.random.default_rng(0)))
    assert not np.array_equal(a, pair_recordings(labels, digits, np.random.default_rng(1)))
    assert np.array_equal(digits[a], labels)


def test_centre_clip_pads_and_crops_around_the_centre():
    clip, active = centre_clip(np.arange(1, 5, dtype=np.int16), length=8)
    assert clip.tolist() == [0, 0, 1, 2, 3, 4, 0, 0] and (active.start, active.stop) == (2, 6)
    clip, active = centre_clip(np.arange(10, dtype=np.int16), length=4)
    assert clip.tolist() == [3, 4, 5, 6] and (active.start, active.stop) == (0, 4)


def test_bad_options_raise_config_errors(data_dir):
    with pytest.raises(ConfigError, match="image_energy"):
        load_avmnist(data_dir, image_energy=1.5)
    with pytest.raises(ConfigError, match="n_val"):
        load_avmnist(data_dir, n_val=6000)


def test_logmel_items_equal_what_the_waveform_encoder_front_end_computes(data_dir, small):
    from mmfuse.encoders.audio import LogMelSpectrogram

    spec_splits = load_avmnist(data_dir, n_train=300, n_val=50, n_test=80, audio_format="logmel")
    assert spec_splits.spec.encoders["audio"] == {"name": "spectrogram_cnn"}
    front = LogMelSpectrogram(8000, n_fft=512, hop_length=256, n_mels=40)
    for i in (0, 77):
        wave = small.train[i]["inputs"]["audio"]
        spec = front(wave[None])
        spec = (spec - spec.mean()) / spec.std()
        item = spec_splits.train[i]["inputs"]["audio"]
        assert item.shape == (40, 32) and item.dtype == torch.float32
        torch.testing.assert_close(item, spec[0], atol=1e-4, rtol=1e-4)
        assert torch.equal(spec_splits.train[i]["inputs"]["image"], small.train[i]["inputs"]["image"])


def test_unknown_audio_format_is_refused(data_dir):
    with pytest.raises(ConfigError, match="audio_format"):
        load_avmnist(data_dir, audio_format="mfcc")


def test_spec_options_rebuild_the_same_splits(data_dir, small):
    opts = small.spec.options
    assert opts["n_train"] == 300 and opts["audio_format"] == "waveform" and opts["seed"] == 0
    again = load_avmnist(data_dir, **opts)
    np.testing.assert_array_equal(again.test.mnist_index, small.test.mnist_index)
    assert torch.equal(again.train[5]["inputs"]["audio"], small.train[5]["inputs"]["audio"])


def test_logmel_arrays_are_cached_by_their_options_and_read_back(data_dir, tmp_path, monkeypatch):
    from mmfuse.data.avmnist import AVMNISTSplit

    sizes = {"n_train": 120, "n_val": 30, "n_test": 40, "audio_format": "logmel", "cache_dir": tmp_path}
    first = load_avmnist(data_dir, **sizes)
    entries = sorted(tmp_path.rglob("*.npy"))
    assert len(entries) == 3  # one array per split

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    with monkeypatch.context() as m:
        m.setattr(AVMNISTSplit, "_compute_logmel", refuse)
        again = load_avmnist(data_dir, **sizes)  # served from the cache
    for a, b in ((first.train, again.train), (first.test, again.test)):
        np.testing.assert_array_equal(a.audio(7), b.audio(7))
    # any option the spectrograms depend on gives another entry, never the stale one
    noisier = load_avmnist(data_dir, **sizes, snr_db=-9.0)
    finer = load_avmnist(data_dir, **sizes, logmel={"hop_length": 128})
    assert len(sorted(tmp_path.rglob("*.npy"))) == 9
    assert not np.array_equal(noisier.train.audio(7), first.train.audio(7))
    assert finer.train.audio(7).shape == (40, 63)
    with pytest.raises(ConfigError, match="logmel"):
        load_avmnist(data_dir, **{**sizes, "audio_format": "waveform"}, logmel={"hop_length": 128})
    with pytest.raises(ConfigError, match="hop"):
        load_avmnist(data_dir, **sizes, logmel={"hop": 128})


@pytest.mark.parametrize("audio_format", ["logmel", "waveform"])
def test_a_batch_fetched_at_once_equals_the_collated_items(data_dir, audio_format):
    from torch.utils.data import DataLoader, Subset
    from torch.utils.data._utils.collate import default_collate

    from mmfuse.data.base import collate

    splits = load_avmnist(data_dir, n_train=50, n_val=10, n_test=20, audio_format=audio_format)
    idx = [3, 0, 17, 9]
    fast = collate(splits.train.__getitems__(idx))
    slow = default_collate([splits.train[i] for i in idx])
    for m in ("image", "audio"):
        torch.testing.assert_close(fast["inputs"][m], slow["inputs"][m], atol=1e-6, rtol=1e-6)
        assert torch.equal(fast["masks"][m], slow["masks"][m])
    assert torch.equal(fast["target"], slow["target"])
    # a Subset and torch's default collate still work on a dataset that fetches whole batches
    batch = next(iter(DataLoader(Subset(splits.train, idx), batch_size=4)))
    torch.testing.assert_close(batch["inputs"]["image"], slow["inputs"]["image"], atol=1e-6, rtol=1e-6)
