"""Cross-modal retrieval: embed one modality, rank another, score the ranking.

Relevance is label-based (a gallery item is relevant to a query when they share the class), the
protocol of cross-modal retrieval on labelled data (e.g. Rasiwasia et al., "A new approach to
cross-modal multimedia retrieval", ACM MM 2010; Wang et al., "A comprehensive survey on cross-modal
retrieval", 2016). Scores are cosine similarities.

* ``AP(q) = (1 / R_q) sum_k P@k(q) rel_k(q)`` over the full ranking, ``mAP = mean_q AP(q)``;
* ``R@K`` = fraction of queries with at least one relevant item in the top K (recall of the first hit);
* ``P@K`` = mean fraction of relevant items in the top K.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmfuse.data.base import batch_to, dataset_len
from mmfuse.errors import ConfigError


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank(
    query: np.ndarray, gallery: np.ndarray, top: int | None = None, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Gallery indices sorted by decreasing cosine similarity for every query, and those similarities.

    Inputs: query ``(Q, D)``, gallery ``(G, D)``. Returns: ``(Q, top or G)`` indices and scores.
    """
    if query.shape[1] != gallery.shape[1]:
        raise ConfigError(
            f"Query embeddings have {query.shape[1]} dims but gallery embeddings {gallery.shape[1]}; "
            f"embed both into the same space."
        )
    q, g = _normalise(query), _normalise(gallery)
    top = g.shape[0] if top is None else min(top, g.shape[0])
    idx, val = [], []
    for s in range(0, len(q), chunk):
        sim = q[s : s + chunk] @ g.T
        order = np.argsort(-sim, axis=1, kind="stable")[:, :top]
        idx.append(order)
        val.append(np.take_along_axis(sim, order, axis=1))
    return np.concatenate(idx), np.concatenate(val)


def ranking_metrics(relevant_sorted: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """mAP, R@K and P@K from a ``(Q, G)`` 0/1 matrix of relevance in ranked order.

    A query with no relevant item has no AP: it is left out of mAP (0.0 when no query has one) but
    counts as a miss in R@K and P@K. Every K must lie in ``1..G`` (a clear error otherwise).
    """
    if any(not 1 <= k <= relevant_sorted.shape[1] for k in ks):
        raise ConfigError(
            f"Retrieval cut-offs K={list(ks)} must lie in 1..{relevant_sorted.shape[1]} "
            f"(the gallery size); lower K or enlarge the gallery."
        )
    rel = relevant_sorted.astype(np.float64)
    n_rel = rel.sum(1)
    precision_at = np.cumsum(rel, 1) / np.arange(1, rel.shape[1] + 1)
    ap = (precision_at * rel).sum(1) / np.maximum(n_rel, 1)
    out = {"mAP": float(ap[n_rel > 0].mean()) if (n_rel > 0).any() else 0.0}
    for k in ks:
        out[f"R@{k}"] = float((rel[:, :k].sum(1) > 0).mean())
        out[f"P@{k}"] = float(rel[:, :k].mean())
    return out


def retrieval_metrics(
    query: np.ndarray,
    gallery: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """Label-based mAP / R@K / P@K of ranking ``gallery`` for each ``query`` by cosine similarity."""
    order, _ = rank(query, gallery)
    rel = np.asarray(query_labels)[:, None] == np.asarray(gallery_labels)[order]
    return ranking_metrics(rel, ks)


def random_ranking_metrics(
    query_labels: np.ndarray, gallery_labels: np.ndarray, ks: tuple[int, ...] = (1, 5, 10), seed: int = 0
) -> dict[str, float]:
    """The same metrics for a uniformly random ranking (the chance baseline)."""
    rng = np.random.default_rng(seed)
    g = np.asarray(gallery_labels)
    order = np.stack([rng.permutation(len(g)) for _ in range(len(query_labels))])
    return ranking_metrics(np.asarray(query_labels)[:, None] == g[order], ks)


@torch.no_grad()
def embed(
    model: torch.nn.Module,
    dataset: Dataset,
    modality: str,
    objectives: Mapping[str, Any] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Embeddings ``(N, D)`` of one modality of ``dataset`` in the model's shared space.

    The encoder's output is used, passed through the ``project`` method of the first objective
    that has one (a shared-subspace projection, a contrastive projection head), if any.
    """
    encoders = model.encoders
    if not isinstance(encoders, torch.nn.ModuleDict):
        raise TypeError(f"{type(model).__name__}.encoders is not a ModuleDict of per-modality encoders.")
    if modality not in encoders:
        raise ConfigError(f"The model has no {modality!r} encoder; it encodes {sorted(encoders)}.")
    projector = next((o for o in (objectives or {}).values() if hasattr(o, "project")), None)
    model.eval()
    chunks = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        batch = batch_to(batch, "cpu")
        z = encoders[modality](batch["inputs"][modality])
        if projector is not None:
            z = projector.project({modality: z})[modality]
        chunks.append(z.float().numpy())
    return np.concatenate(chunks)


def dataset_labels(dataset: Dataset, batch_size: int = 1024) -> np.ndarray:
    """Targets of ``dataset`` in order."""
    return np.concatenate([b["target"].numpy() for b in DataLoader(dataset, batch_size=batch_size, shuffle=False)])


POST_CCA_MAX_FIT = 20000  # training items the post-hoc CCA is fitted on (the first N of the split)
POST_CCA_REG = 1e-3


def uses_deep_cca(objectives: Mapping[str, Any] | None) -> bool:
    """Whether a run's objectives include the deep CCA loss (its embeddings then need :func:`post_hoc_cca`)."""
    from mmfuse.objectives.cca import DeepCCA, DeepGCCA

    return any(isinstance(o, (DeepCCA, DeepGCCA)) for o in (objectives or {}).values())


def post_hoc_cca(
    model: torch.nn.Module,
    train: Dataset,
    query: str,
    gallery: str,
    n_components: int,
    objectives: Mapping[str, Any] | None = None,
    max_fit: int = POST_CCA_MAX_FIT,
    reg: float = POST_CCA_REG,
):
    """Linear CCA fitted on the training embeddings of ``query`` and ``gallery`` (first ``max_fit`` items).

    Deep CCA (Andrew et al., ICML 2013, Sec. 3) maximises ``corr(f(X), g(Y))`` but the two networks'
    output coordinates are not aligned: the paper's final step is a linear CCA on the learned
    representations, whose projections ``A^T f(x)``, ``B^T g(y)`` share one canonical space. Returns
    the fitted :class:`mmfuse.representation.cca.CCA`; ``transform(z_query, z_gallery)`` maps into it.
    """
    from mmfuse.representation.cca import CCA

    if n_components < 1:
        raise ConfigError(f"--post-cca needs at least 1 component; got {n_components}.")
    part = torch.utils.data.Subset(train, range(min(dataset_len(train), max_fit)))
    zq, zg = embed(model, part, query, objectives), embed(model, part, gallery, objectives)
    if n_components > min(zq.shape[1], zg.shape[1]):
        raise ConfigError(
            f"--post-cca {n_components} exceeds the embedding size ({zq.shape[1]} and "
            f"{zg.shape[1]}); choose at most {min(zq.shape[1], zg.shape[1])}."
        )
    return CCA(n_components=n_components, reg=reg).fit(zq, zg)
