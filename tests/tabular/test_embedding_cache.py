"""EmbeddingCache: content + encoder keys, reuse, atomic entries, NaN never stored."""

from __future__ import annotations

import numpy as np

from mmfuse.tabular.cache import ENV_VAR, EmbeddingCache, default_root
from mmfuse.tabular.encoding import encode


def lookup(cache, encoder_id, hashes, compute, batch_size=32, shape=None):
    """The cached values of items ``hashes``, the missing ones by ``compute(item indices)`` (through the encode path:
    items are loaded as their own index and embedded in batches)."""
    first = np.asarray(compute([0]), np.float32) if shape is None and hashes else None
    shape = shape or (first.shape[1:] if first is not None else (1,))

    def embed(items, device):
        return np.asarray(compute(items), np.float32)

    values, _ = encode(cache, encoder_id, hashes, lambda i: i, embed, tuple(shape), batch_size=batch_size)
    return values


def test_lookup_computes_once_and_reuses(tmp_path):
    cache = EmbeddingCache(tmp_path)
    calls = []

    def compute(idx):
        calls.append(list(idx))
        return np.asarray([[float(i), 1.0] for i in idx])

    hashes = ["h0", "h1", "h0", "h2"]  # a duplicate is computed once
    first = lookup(cache, "enc/v1", hashes, compute, batch_size=2, shape=(2,))
    assert first.shape == (4, 2) and first[2].tolist() == first[0].tolist()
    assert (cache.hits, cache.misses) == (0, 3) and calls == [[0, 1], [3]]  # fixed batches of the missing items
    again = EmbeddingCache(tmp_path)
    second = lookup(again, "enc/v1", hashes, lambda idx: 1 / 0, shape=(2,))  # everything from disk
    assert np.array_equal(first, second) and (again.hits, again.misses) == (3, 0)
    other = EmbeddingCache(tmp_path)
    lookup(other, "enc/v2", ["h0"], lambda idx: np.zeros((len(idx), 2)))  # another encoder version is another key
    assert other.misses == 1
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind


def test_failed_items_are_not_stored(tmp_path):
    cache = EmbeddingCache(tmp_path)
    out = lookup(cache, "enc", ["bad", "good"], lambda idx: np.asarray([[np.nan], [1.0]])[idx], shape=(1,))
    assert np.isnan(out[0]).all() and out[1, 0] == 1.0
    assert cache.get("enc", "bad") is None and cache.get("enc", "good") is not None


def test_disabled_cache_and_default_root(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, enabled=False)
    lookup(cache, "enc", ["a"], lambda idx: np.ones((len(idx), 1)))
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "c"))
    assert default_root() == tmp_path / "c"
    monkeypatch.delenv(ENV_VAR)
    assert default_root().parts[-3:] == (".cache", "mmfuse", "embeddings")


def test_corrupt_entry_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    lookup(cache, "enc", ["a"], lambda idx: np.ones((len(idx), 2)))
    (entry,) = list(tmp_path.rglob("*.npy"))
    entry.write_bytes(b"garbage")
    again = EmbeddingCache(tmp_path)
    assert lookup(again, "enc", ["a"], lambda idx: np.full((len(idx), 2), 2.0)).tolist() == [[2.0, 2.0]]
    assert again.misses == 1


def test_a_torn_or_foreign_entry_is_recomputed_and_counted(tmp_path):
    cache = EmbeddingCache(tmp_path)
    lookup(cache, "enc", ["a", "b", "c"], lambda idx: np.ones((len(idx), 3), np.float32))
    paths = {h: cache._path("enc", cache.key("enc", h)) for h in "abc"}
    np.save(paths["a"], np.ones((5,), np.float32))  # another shape
    paths["b"].write_bytes(paths["b"].read_bytes()[:40])  # torn: half a file
    np.save(paths["c"], np.full((3,), np.inf, np.float32))  # not finite
    again = EmbeddingCache(tmp_path)
    out = lookup(again, "enc", ["a", "b", "c"], lambda idx: np.full((len(idx), 3), 2.0, np.float32), shape=(3,))
    assert out.shape == (3, 3) and (out == 2.0).all()
    assert (again.repaired, again.hits, again.misses) == (3, 0, 3)
    assert (
        lookup(EmbeddingCache(tmp_path), "enc", ["a", "b", "c"], lambda idx: 1 / 0, shape=(3,)).tolist() == out.tolist()
    )  # rewritten


def _writer(root, name, keys, rounds):
    cache = EmbeddingCache(root)
    for _ in range(rounds):
        for k in keys:
            cache.put("enc", k, _value(k))


def _value(key):
    seed = int.from_bytes(key.encode(), "little") % 2**32
    return np.random.default_rng(seed).normal(size=512).astype(np.float32)  # 2 kB: a write is not one block


def test_concurrent_writers_neither_tear_nor_lose_entries(tmp_path):
    """Two processes write the same keys (and each its own) over and over while this one reads: every read is
    absent or whole, and every entry ends whole."""
    import multiprocessing as mp

    shared = [f"s{i}" for i in range(40)]
    own = {name: [f"{name}{i}" for i in range(40)] for name in ("a", "b")}
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, n, shared + own[n], 5)) for n in own]
    for p in procs:
        p.start()
    reader = EmbeddingCache(tmp_path)
    while any(p.is_alive() for p in procs):
        for k in shared:
            got = reader.get("enc", k, (512,))
            assert got is None or np.array_equal(got, _value(k))
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert reader.repaired == 0  # never saw a torn entry
    final = EmbeddingCache(tmp_path)
    for k in shared + own["a"] + own["b"]:
        assert np.array_equal(final.get("enc", k, (512,)), _value(k)), k
    assert len(list(tmp_path.rglob("*.npy"))) == 120 and not list(tmp_path.rglob(".tmp-*"))
