"""Cross-modal retrieval on AV-MNIST: audio -> image and image -> audio, relevant = same digit.

Data: AV-MNIST with ``audio_format="logmel"`` (precomputed standardised noisy log-mel spectrograms,
40 x 32, as in the fusion leaderboard); ``--quick``: 3,000 / 1,000 / 2,000 pairs. Methods (the
encoders of the dataset spec, as in the fusion leaderboard: image CNN, spectrogram CNN, 32-d embeddings):

* ``random`` - uniformly random ranking (chance level);
* ``cca`` - linear CCA (closed form, :class:`mmfuse.representation.cca.CCA`, 9 components) on the raw
  views: the degraded image pixels and the flattened standardised log-mel spectrogram of the audio;
* ``deep_cca`` - both encoders trained with the deep CCA loss only (Andrew et al., 2013). The loss is
  unchanged by any invertible linear map of either view's embedding, so the two encoders' raw outputs
  share no coordinates; as in the paper, linear CCA (9 components) fitted on the training embeddings
  maps both views into the canonical space where they are compared;
* ``infonce`` - both encoders trained with the symmetric InfoNCE / CLIP loss only (Radford et al., 2021);
* ``contrastive_margin`` - the pairwise margin loss with same-label positives (Hadsell et al., 2006);
* ``subspace`` - cross-entropy + the scatter-matrix shared-subspace regulariser (weight 0.1: at
  weight 1 its alignment term drove every ReLU embedding of the audio encoder to exactly zero in the
  quick run, and retrieval and classification stayed at chance); retrieval in the subspace.

Training pairs are the dataset's (image, audio) pairs; the queries are the first ``n_queries``
test samples and the gallery is the whole test split of the other modality. Scores: mAP and
R@1/5/10 (see :mod:`mmfuse.retrieval`); ``zero_rows`` is the larger share of all-zero test
embeddings of the two modalities (a collapsed encoder ranks every gallery in index order).
Written to ``out_dir``: results.json, results.csv and one model directory per trained method.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.errors import ConfigError
from mmfuse.files import write_into
from mmfuse.retrieval import (
    POST_CCA_MAX_FIT,
    dataset_labels,
    embed,
    post_hoc_cca,
    random_ranking_metrics,
    retrieval_metrics,
)

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 2000}
DATA = {"audio_format": "logmel"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"max_epochs": 4, "batch_size": 256, "patience": 2, "progress_bar": False, "monitor": "loss"},
    "full": {"max_epochs": 6, "batch_size": 256, "patience": 2, "progress_bar": False, "monitor": "loss"},
}
OBJECTIVES = {
    "deep_cca": {"cca": {"objective": "cca"}},
    "infonce": {"infonce": {"objective": "infonce"}},
    "contrastive_margin": {"margin": {"objective": "contrastive_margin", "positive": "label"}},
    "subspace": {"task": {"objective": "cross_entropy"}, "subspace": {"objective": "subspace", "k": 16, "weight": 0.1}},
}
METHODS = tuple(
    OBJECTIVES
)  # the names `--fusions` selects here; benchmark() refuses others (so the CLI skips its fusion-name check)
CCA_COMPONENTS = 9  # classes - 1; for the raw-view CCA and for deep CCA's post-hoc linear CCA


def raw_views(dataset: Any, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Flattened image pixels ``(N, 784)`` and standardised log-mel spectrograms ``(N, 40 * 32)``.

    Spectrogram items (``audio_format="logmel"``) are flattened as they are; waveform items ``(8000,)``
    first go through the same log-mel front end and standardisation as :mod:`mmfuse.data.avmnist`.
    """
    from mmfuse.data.avmnist import LOGMEL, SAMPLE_RATE
    from mmfuse.encoders.audio import LogMelSpectrogram

    front = LogMelSpectrogram(SAMPLE_RATE, **LOGMEL)
    img, aud = [], []
    with torch.no_grad():
        for b in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
            n, audio = len(b["target"]), b["inputs"]["audio"]
            img.append(b["inputs"]["image"].reshape(n, -1).numpy())
            if audio.dim() == 2:  # waveforms (B, samples) -> (B, n_mels, frames)
                audio = front(audio)
                audio = (audio - audio.mean((1, 2), keepdim=True)) / audio.std((1, 2), keepdim=True).clamp_min(1e-3)
            aud.append(audio.reshape(n, -1).numpy())
    return np.concatenate(img), np.concatenate(aud)


def score(
    q_img: np.ndarray, g_aud: np.ndarray, q_aud: np.ndarray, g_img: np.ndarray, labels: np.ndarray, n_queries: int
) -> dict[str, Any]:
    """Both directions, queries = the first ``n_queries`` test samples, gallery = all of the other modality."""
    ql = labels[:n_queries]
    return {
        "audio->image": retrieval_metrics(q_aud[:n_queries], g_img, ql, labels),
        "image->audio": retrieval_metrics(q_img[:n_queries], g_aud, ql, labels),
    }


def benchmark(
    out_dir: str | Path | None = "results/avmnist_retrieval",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    n_queries: int = 2000,
    data_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train each representation method, evaluate retrieval both ways, print and write the table.

    ``fusions`` names the trained methods to run (default: all of :data:`OBJECTIVES`); ``data_options``
    override the loader options (after :data:`DATA` and, with ``quick``, :data:`QUICK`).
    """
    unknown = sorted(set(fusions or ()) - set(METHODS))
    if unknown:
        raise ConfigError(
            f"Unknown method(s) {', '.join(map(repr, unknown))} of benchmark 'avmnist_retrieval'; "
            f"valid names: {', '.join(METHODS)}."
        )
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.data.base import dataset_len
    from mmfuse.representation.cca import CCA
    from mmfuse.training.fit import fit

    options = {**DATA, **(QUICK if quick else {}), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    labels = dataset_labels(splits.test)
    n_queries = min(n_queries, len(labels))
    rows: list[dict[str, Any]] = []

    def add(method: str, metrics: dict[str, Any], seconds: float, zero_rows: float = 0.0) -> None:
        for direction, m in metrics.items():
            rows.append(
                {"method": method, "direction": direction, **m, "train_time_s": seconds, "zero_rows": zero_rows}
            )
        print(f"{method:20s} " + "  ".join(f"{d}: mAP={m['mAP']:.3f} R@1={m['R@1']:.3f}" for d, m in metrics.items()))

    ql = labels[:n_queries]
    add("random", {d: random_ranking_metrics(ql, labels, seed=seed) for d in ("audio->image", "image->audio")}, 0.0)

    t0 = time.perf_counter()
    n_fit = min(dataset_len(splits.train), POST_CCA_MAX_FIT)
    tr_img, tr_aud = raw_views(torch.utils.data.Subset(splits.train, range(n_fit)))
    te_img, te_aud = raw_views(splits.test)
    cca = CCA(n_components=CCA_COMPONENTS, reg=1e-2).fit(tr_img, tr_aud)
    (qi, qa) = cca.transform(te_img, te_aud)
    add("cca", score(qi, qa, qa, qi, labels, n_queries), time.perf_counter() - t0)

    enc = {m: {**e, "out_dim": 32} for m, e in splits.spec.encoders.items()}
    for method, objectives in OBJECTIVES.items():
        if fusions and method not in fusions:
            continue
        mc = ModelConfig(encoders=enc, num_outputs=10, fusion="concat", hidden=32)
        tc = TrainConfig(**{**cfg.to_dict(), "objectives": objectives, "monitor": "loss"})
        model_dir = None if out_dir is None else Path(out_dir) / "models" / method
        result = fit(
            mc,
            tc,
            splits.train,
            splits.val,
            out_dir=model_dir,
            extra_meta={"dataset": "avmnist", "data_options": options, "method": method},
            overwrite=True,
        )
        objs = dict(result.task.objectives.items())
        zi = embed(result.model, splits.test, "image", objs)
        za = embed(result.model, splits.test, "audio", objs)
        zero_rows = max(float((~zi.any(1)).mean()), float((~za.any(1)).mean()))
        if method == "deep_cca":  # into the canonical space of the training embeddings (see the module docstring)
            post = post_hoc_cca(result.model, splits.train, "image", "audio", CCA_COMPONENTS, objs, max_fit=n_fit)
            zi, za = post.transform(zi, za)
        add(method, score(zi, za, za, zi, labels, n_queries), result.train_time_s, zero_rows)

    if out_dir is not None:
        payload = {
            "dataset": "avmnist",
            "quick": quick,
            "data_options": options,
            "seed": seed,
            "n_queries": n_queries,
            "gallery": len(labels),
            "rows": rows,
        }
        write_rows(Path(out_dir), payload)
    return rows


def write_rows(out: Path, payload: dict[str, Any]) -> None:
    """``results.json`` (``payload``) and ``results.csv`` (its rows), each written to a temporary file and renamed."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(payload["rows"][0]))
    writer.writeheader()
    writer.writerows(payload["rows"])
    write_into(out, {"results.json": json.dumps(payload, indent=2), "results.csv": buf.getvalue()})
