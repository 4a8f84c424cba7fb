"""EmbeddingCache: content + encoder keys, reuse, atomic entries, NaN never stored."""

from __future__ import annotations

import numpy as np

from mmfuse.tabular.cache import ENV_VAR, EmbeddingCache, default_root


def test_lookup_computes_once_and_reuses(tmp_path):
    cache = EmbeddingCache(tmp_path)
    calls = []

    def compute(idx):
        calls.append(list(idx))
        return np.asarray([[float(i), 1.0] for i in idx])

    hashes = ["h0", "h1", "h0", "h2"]  # a duplicate is computed once
    first = cache.lookup("enc/v1", hashes, compute, batch_size=2)
    assert first.shape == (4, 2) and first[2].tolist() == first[0].tolist()
    assert (cache.hits, cache.misses) == (0, 3) and calls == [[0, 1], [3]]
    again = EmbeddingCache(tmp_path)
    second = again.lookup("enc/v1", hashes, lambda idx: 1 / 0)  # everything from disk
    assert np.array_equal(first, second) and (again.hits, again.misses) == (3, 0)
    other = EmbeddingCache(tmp_path)
    other.lookup("enc/v2", ["h0"], lambda idx: np.zeros((len(idx), 2)))  # another encoder version is another key
    assert other.misses == 1
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind


def test_failed_items_are_not_stored(tmp_path):
    cache = EmbeddingCache(tmp_path)
    out = cache.lookup("enc", ["bad", "good"], lambda idx: np.asarray([[np.nan], [1.0]])[idx])
    assert np.isnan(out[0]).all() and out[1, 0] == 1.0
    assert cache.get("enc", "bad") is None and cache.get("enc", "good") is not None


def test_disabled_cache_and_default_root(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, enabled=False)
    cache.lookup("enc", ["a"], lambda idx: np.ones((len(idx), 1)))
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "c"))
    assert default_root() == tmp_path / "c"
    monkeypatch.delenv(ENV_VAR)
    assert default_root().parts[-3:] == (".cache", "mmfuse", "embeddings")


def test_corrupt_entry_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.lookup("enc", ["a"], lambda idx: np.ones((len(idx), 2)))
    (entry,) = list(tmp_path.rglob("*.npy"))
    entry.write_bytes(b"garbage")
    again = EmbeddingCache(tmp_path)
    assert again.lookup("enc", ["a"], lambda idx: np.full((len(idx), 2), 2.0)).tolist() == [[2.0, 2.0]]
    assert again.misses == 1


def test_a_torn_or_foreign_entry_is_recomputed_and_counted(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.lookup("enc", ["a", "b", "c"], lambda idx: np.ones((len(idx), 3), np.float32))
    paths = {h: cache._path("enc", cache.key("enc", h)) for h in "abc"}
    np.save(paths["a"], np.ones((5,), np.float32))  # another shape
    paths["b"].write_bytes(paths["b"].read_bytes()[:40])  # torn: half a file
    np.save(paths["c"], np.full((3,), np.inf, np.float32))  # not finite
    again = EmbeddingCache(tmp_path)
    out = again.lookup("enc", ["a", "b", "c"], lambda idx: np.full((len(idx), 3), 2.0, np.float32), shape=(3,))
    assert out.shape == (3, 3) and (out == 2.0).all()
    assert (again.repaired, again.hits, again.misses) == (3, 0, 3)
    assert (
        EmbeddingCache(tmp_path).lookup("enc", ["a", "b", "c"], lambda idx: 1 / 0, shape=(3,)).tolist() == out.tolist()
    )  # rewritten
