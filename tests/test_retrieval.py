"""Retrieval: cosine ranking, mAP / R@K / P@K by hand, the random-ranking baseline, embed/retrieve commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mmfuse.errors import ConfigError
from mmfuse.retrieval import random_ranking_metrics, rank, ranking_metrics, retrieval_metrics

# Four queries over a gallery of five, relevance in ranked order, worked by hand:
#   q0 [1 0 1 0 0]  R=2  AP = (P@1 + P@3) / 2 = (1 + 2/3) / 2 = 5/6
#   q1 [0 1 0 0 1]  R=2  AP = (P@2 + P@5) / 2 = (1/2 + 2/5) / 2 = 9/20
#   q2 [0 0 0 1 0]  R=1  AP = P@4 = 1/4
#   q3 [1 1 0 0 0]  R=2  AP = (1 + 1) / 2 = 1
#   mAP = (50 + 27 + 15 + 60) / 60 / 4 = 152 / 240 = 19/30
#   R@1 = #{q0, q3} / 4 = 1/2;  R@2 = #{q0, q1, q3} / 4 = 3/4;  R@5 = 1
#   P@1 = (1 + 0 + 0 + 1) / 4 = 1/2;  P@2 = (1/2 + 1/2 + 0 + 1) / 4 = 1/2;  P@3 = (2/3 + 1/3 + 0 + 2/3) / 4 = 5/12
#   P@5 = (2 + 2 + 1 + 2) / 5 / 4 = 7/20
HAND = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
HAND_METRICS = {
    "mAP": 19 / 30,
    "R@1": 1 / 2,
    "P@1": 1 / 2,
    "R@2": 3 / 4,
    "P@2": 1 / 2,
    "R@3": 3 / 4,
    "P@3": 5 / 12,
    "R@5": 1.0,
    "P@5": 7 / 20,
}


def test_ranking_metrics_match_the_hand_computed_values():
    got = ranking_metrics(HAND, ks=(1, 2, 3, 5))
    assert set(got) == set(HAND_METRICS)
    for k, v in HAND_METRICS.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def test_rank_sorts_by_cosine_similarity_with_stable_ties():
    query = np.array([[1.0, 0.0]])
    gallery = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, 0.0], [5.0, 0.0]])  # cos 1, 0, 1/sqrt2, -1, 1
    order, scores = rank(query, gallery)
    assert order.tolist() == [[0, 4, 2, 1, 3]]  # the tie between items 0 and 4 keeps gallery order
    np.testing.assert_allclose(scores, [[1.0, 1.0, 1 / math.sqrt(2), 0.0, -1.0]], atol=1e-6)
    top, _ = rank(query, gallery, top=2)
    assert top.tolist() == [[0, 4]]
    assert rank(query, gallery, top=50)[0].shape == (1, 5)  # top beyond the gallery is clipped to G
    many = np.random.default_rng(0).normal(size=(700, 2))  # more queries than one chunk
    assert np.array_equal(rank(many, gallery, chunk=64)[0], rank(many, gallery)[0])
    with pytest.raises(ConfigError, match="same space"):
        rank(np.ones((1, 3)), gallery)


def test_retrieval_metrics_rank_by_cosine_and_compare_labels():
    # identity gallery: a query's cosine with item j is proportional to its j-th weight, so weights
    # 5, 4, 3, 2, 1 placed at the positions `order` rank the gallery in exactly that order
    gallery_labels = np.array([0, 1, 0, 1, 2])
    orders = {0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 4, 3], 2: [0, 1, 2, 4, 3], 3: [0, 2, 1, 3, 4]}
    query_labels = np.array([0, 1, 2, 0])  # ranked labels give HAND's relevance rows
    query = np.zeros((4, 5))
    for i, order in orders.items():
        query[i, order] = [5, 4, 3, 2, 1]
    got = retrieval_metrics(3.0 * query, np.eye(5), query_labels, gallery_labels, ks=(1, 2, 3, 5))  # scale-free
    for k, v in HAND_METRICS.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def test_a_query_without_relevant_items_leaves_map_but_counts_as_a_miss():
    rows = np.vstack([HAND, np.zeros((1, 5), bool)])  # a fifth query whose class is not in the gallery
    got = ranking_metrics(rows, ks=(1, 2))
    assert got["mAP"] == pytest.approx(19 / 30, abs=1e-12)  # AP is undefined: mean over the 4 others
    assert got["R@1"] == pytest.approx(2 / 5) and got["R@2"] == pytest.approx(3 / 5)
    assert got["P@1"] == pytest.approx(2 / 5) and got["P@2"] == pytest.approx(4 / 10)
    assert ranking_metrics(np.zeros((3, 4), bool), ks=(1,)) == {"mAP": 0.0, "R@1": 0.0, "P@1": 0.0}


@pytest.mark.parametrize("ks", [(1, 6), (0,)])
def test_cutoffs_outside_the_gallery_are_a_clear_error(ks):
    with pytest.raises(ConfigError, match=r"must lie in 1\.\.5 \(the gallery size\)"):
        ranking_metrics(HAND, ks=ks)
    with pytest.raises(ConfigError, match="gallery size"):
        retrieval_metrics(np.eye(5)[:4], np.eye(5), np.zeros(4), np.zeros(5), ks=ks)


def expected_random_ap(g: int, r: int) -> float:
    """E[AP] of a uniformly random ranking of ``g`` items with ``r`` relevant (Bestgen, 2015).

    ``E[rel_k * hits@k] = (r / g) (1 + (k - 1)(r - 1) / (g - 1))``, so
    ``E[AP] = (1 / g) [H_g + (r - 1) / (g - 1) (g - H_g)]`` with ``H_g`` the harmonic number.
    """
    h = sum(1.0 / k for k in range(1, g + 1))
    return (h + (r - 1) / (g - 1) * (g - h)) / g


def test_expected_random_ap_closed_form_on_a_tiny_case_by_enumeration():
    # g = 3, r = 1: the relevant item is at rank 1, 2 or 3 with AP 1, 1/2, 1/3 -> E = 11/18
    assert expected_random_ap(3, 1) == pytest.approx(11 / 18)
    # g = 3, r = 2: the irrelevant item at rank 3, 2, 1 -> AP 1, (1 + 2/3)/2, (1/2 + 2/3)/2 -> E = (1 + 5/6 + 7/12) / 3
    assert expected_random_ap(3, 2) == pytest.approx((1 + 5 / 6 + 7 / 12) / 3)
    assert expected_random_ap(7, 7) == pytest.approx(1.0)


def test_random_ranking_baseline_matches_the_closed_form():
    g_labels = np.repeat(np.arange(10), 5)  # G = 50, R = 5 relevant items per query
    q_labels = np.arange(20000) % 10
    got = random_ranking_metrics(q_labels, g_labels, ks=(1, 5, 10), seed=3)
    # standard errors over 20,000 queries: mAP ~0.0009, R@1 ~0.0021, R@10 ~0.0033, P@10 ~0.0006
    assert got["mAP"] == pytest.approx(expected_random_ap(50, 5), abs=0.004)  # 0.17226
    for k in (1, 5, 10):
        assert got[f"R@{k}"] == pytest.approx(1 - math.comb(45, k) / math.comb(50, k), abs=0.012)  # 0.1, 0.4234, 0.6904
        assert got[f"P@{k}"] == pytest.approx(0.1, abs=0.006)
    assert random_ranking_metrics(q_labels[:50], g_labels, seed=3) == random_ranking_metrics(
        q_labels[:50], g_labels, seed=3
    )
    assert random_ranking_metrics(q_labels[:50], g_labels, seed=3) != random_ranking_metrics(
        q_labels[:50], g_labels, seed=4
    )


# ---- mmfuse embed / mmfuse retrieve on a tiny model ---------------------------------------------


@pytest.fixture(scope="module")
def retrieval_model(tmp_path_factory):
    """An InfoNCE model with 4-d projection heads on the synthetic problem (40 epochs, about 2 s)."""
    from conftest import fit_synthetic_model_dir
    from mmfuse.config import TrainConfig

    objectives = {"infonce": {"objective": "infonce", "proj_dim": 4}}
    cfg = TrainConfig(
        objectives=objectives, max_epochs=40, lr=1e-2, patience=40, batch_size=64, progress_bar=False, monitor="loss"
    )
    return fit_synthetic_model_dir(
        tmp_path_factory.mktemp("retrieve") / "model", n=400, n_train=300, n_val=40, seed=5, train_cfg=cfg
    )


@pytest.fixture
def synthetic_registry(retrieval_model, monkeypatch):
    from conftest import serve_synthetic_splits

    return serve_synthetic_splits(monkeypatch, retrieval_model[1])


def test_embed_command_writes_the_projected_embeddings(retrieval_model, synthetic_registry, tmp_path, capsys):
    from mmfuse.cli import main
    from mmfuse.retrieval import embed
    from mmfuse.training.serialization import load_model_dir, load_objectives

    model_dir, splits = retrieval_model
    out = tmp_path / "sub" / "b.npy"
    assert main(["embed", str(model_dir), "--modality", "b", "-o", str(out)]) == 0
    z = np.load(out)
    assert z.shape == (60, 4)  # the 60 test items in the 4-d space of the InfoNCE projection head
    model, _ = load_model_dir(model_dir)
    objectives = load_objectives(model_dir)
    assert np.array_equal(z, embed(model, splits.test, "b", objectives))
    assert not np.array_equal(z, embed(model, splits.test, "b")[:, :4])  # the saved projection was applied
    assert "60 x 4 embeddings of 'b' (test) written to" in capsys.readouterr().out
    assert synthetic_registry == [("synthetic", {"n": 400})]
    assert sorted(p.name for p in out.parent.iterdir()) == ["b.npy"]  # no temporary file left behind


def test_retrieve_command_scores_the_model_and_the_random_baseline(
    retrieval_model, synthetic_registry, tmp_path, capsys
):
    from mmfuse.cli import main
    from mmfuse.retrieval import dataset_labels, embed
    from mmfuse.training.serialization import load_model_dir, load_objectives

    model_dir, splits = retrieval_model
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "retrieve",
                str(model_dir),
                "--query",
                "a",
                "--gallery",
                "b",
                "--max-queries",
                "40",
                "--show",
                "2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads(out.read_text())
    model, _ = load_model_dir(model_dir)
    objectives = load_objectives(model_dir)
    labels = dataset_labels(splits.test)
    za, zb = embed(model, splits.test, "a", objectives), embed(model, splits.test, "b", objectives)
    assert metrics["model"] == retrieval_metrics(za[:40], zb, labels[:40], labels)
    assert metrics["random"] == random_ranking_metrics(labels[:40], labels)
    # the synthetic class signal crosses modalities (a[:, 0] = +2.5 y, b[:, 0] = -2.5 y): far above chance
    chance = np.mean([expected_random_ap(60, int((labels == y).sum())) for y in labels[:40]])  # three classes of ~20
    assert metrics["random"]["mAP"] == pytest.approx(chance, abs=0.05)
    assert metrics["model"]["mAP"] > chance + 0.2 and metrics["model"]["R@1"] > 0.6
    text = capsys.readouterr().out
    assert "a -> b on test (40 queries, gallery 60)" in text
    assert text.count("  query #") == 2
    assert main(["retrieve", str(model_dir), "--query", "a", "--gallery", "c"]) == 2
    assert "has no 'c' encoder" in capsys.readouterr().err


def test_retrieve_with_post_cca_compares_in_the_canonical_space_of_the_training_split(
    retrieval_model, synthetic_registry, tmp_path, capsys
):
    from mmfuse.cli import main
    from mmfuse.retrieval import dataset_labels, embed, post_hoc_cca, retrieval_metrics
    from mmfuse.training.serialization import load_model_dir, load_objectives

    model_dir, splits = retrieval_model
    out = tmp_path / "m.json"
    assert main(["retrieve", str(model_dir), "--query", "a", "--gallery", "b", "--post-cca", "2", "-o", str(out)]) == 0
    got = json.loads(out.read_text())
    model, _ = load_model_dir(model_dir)
    objectives = load_objectives(model_dir)
    cca = post_hoc_cca(model, splits.train, "a", "b", 2, objectives)
    za, zb = cca.transform(embed(model, splits.test, "a", objectives), embed(model, splits.test, "b", objectives))
    assert za.shape == (60, 2)
    labels = dataset_labels(splits.test)
    assert got["model"] == retrieval_metrics(za, zb, labels, labels) and got["post_cca_components"] == 2
    assert "2-component linear CCA space" in capsys.readouterr().out
    # an InfoNCE model is compared in its own space by default; too many components is one clear line
    assert (
        main(["retrieve", str(model_dir), "--query", "a", "--gallery", "b", "-o", str(out)]) == 2
    )  # never replaced silently
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["retrieve", str(model_dir), "--query", "a", "--gallery", "b", "-o", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["post_cca_components"] == 0
    capsys.readouterr()
    assert main(["retrieve", str(model_dir), "--query", "a", "--gallery", "b", "--post-cca", "5"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "mmfuse: error: --post-cca 5 exceeds the embedding size (4 and 4); choose at most 4."
    )
