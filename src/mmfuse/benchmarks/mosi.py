"""CMU-MOSI sentiment regression on the standard folds, reported with the field's six metrics.

Protocol:

* data: CMU-MultimodalSDK standard folds, 1,284 train / 229 validation / 686 test segments
  (52 / 10 / 31 videos, speaker-independent), sentiment score in [-3, 3] (:func:`mmfuse.data.mosi.load_mosi`,
  ``protocol="standard"``);
* features: **text = MiniLM sentence embeddings (all-MiniLM-L6-v2, 384-d, frozen) of the raw transcripts**
  (:func:`mmfuse.encoders.pretrained.embed_texts`), NOT BERT fine-tuned on word sequences as in the
  papers below; **audio = the 73-d openSMILE utterance features** of the bc-LSTM release. The bc-LSTM
  text and video features are not used: they were learned on videos that are in the standard test
  fold (``with_video=True`` adds the video features anyway, with the loader's warning);
* models: every registered fusion method, plus text-only and audio-only baselines; MLP encoders
  (64-d) on the standardised features, fused size 64, L1/MSE task loss of the dataset spec, AdamW,
  early stopping on validation MAE with the best weights restored;
* metrics (:mod:`mmfuse.evaluation.sentiment`): Acc-2 and weighted F1 both "has0" (negative vs
  non-negative) and "non0" (negative vs positive, zero scores left out), Acc-7, MAE, Pearson r; the
  "best pipeline" is chosen by validation MAE, never by a test number.

Published numbers quoted next to ours (:data:`PUBLISHED`) are those of Hazarika et al., "MISA",
ACM MM 2020, Table 2, where "(B)" means BERT text features; Acc-2 / F1 written has0/non0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mmfuse.benchmarks.avmnist_robustness import train_all
from mmfuse.config import TrainConfig
from mmfuse.evaluation.leaderboard import Method
from mmfuse.evaluation.sentiment import format_sentiment_row, sentiment_metrics
from mmfuse.files import write_into
from mmfuse.registry import FUSIONS

DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"max_epochs": 15, "batch_size": 64, "patience": 4, "progress_bar": False},
    "full": {"max_epochs": 60, "batch_size": 64, "patience": 10, "progress_bar": False},
}
# MISA (Hazarika et al. 2020), Table 2, CMU-MOSI; None = not reported. Acc/F1 in percent.
PUBLISHED: dict[str, dict[str, float | None]] = {
    "TFN (B) [Zadeh et al. 2017, as re-run in MISA]": {
        "acc2_has0": None,
        "acc2_non0": 80.8,
        "f1_has0": None,
        "f1_non0": 80.7,
        "acc7": 34.9,
        "mae": 0.901,
        "corr": 0.698,
    },
    "LMF (B) [Liu et al. 2018, as re-run in MISA]": {
        "acc2_has0": None,
        "acc2_non0": 82.5,
        "f1_has0": None,
        "f1_non0": 82.4,
        "acc7": 33.2,
        "mae": 0.917,
        "corr": 0.695,
    },
    "MulT [Tsai et al. 2019]": {
        "acc2_has0": None,
        "acc2_non0": 83.0,
        "f1_has0": None,
        "f1_non0": 82.8,
        "acc7": 40.0,
        "mae": 0.871,
        "corr": 0.698,
    },
    "MISA (B) [Hazarika et al. 2020]": {
        "acc2_has0": 81.8,
        "acc2_non0": 83.4,
        "f1_has0": 81.7,
        "f1_non0": 83.6,
        "acc7": 42.3,
        "mae": 0.783,
        "corr": 0.761,
    },
}
PROTOCOL = (
    "CMU-MOSI standard folds (1284/229/686 segments, 52/10/31 videos); text "
    "= frozen MiniLM (all-MiniLM-L6-v2) embeddings of the raw "
    "transcripts, not BERT; audio = 73-d openSMILE features; model chosen by "
    "validation MAE; published rows from MISA (ACM MM 2020) Table 2."
)


def published_rows() -> list[dict[str, Any]]:
    """:data:`PUBLISHED` as rows in our units (accuracies as fractions)."""
    rows = []
    for name, m in PUBLISHED.items():
        row: dict[str, Any] = {"method": name}
        for k, v in m.items():
            row[f"test_{k}"] = float("nan") if v is None else (v if k in ("mae", "corr") else v / 100)
        rows.append(row)
    return rows


def benchmark(
    out_dir: str | Path | None = "results/mosi",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    with_video: bool = False,
) -> list[dict[str, Any]]:
    """Train every fusion method and the unimodal baselines, print the six metrics next to the published ones."""
    from mmfuse.data.mosi import load_mosi
    from mmfuse.encoders.pretrained import embed_texts
    from mmfuse.evaluation.predict import predict
    from mmfuse.evaluation.report import build_results_report, write_report
    from mmfuse.evaluation.robustness import for_model
    from mmfuse.training.serialization import load_model_dir

    out = Path(out_dir or "results/mosi")
    t0 = time.perf_counter()
    modalities = ("transcript", "audio", "video") if with_video else ("transcript", "audio")
    splits = load_mosi(
        data_dir,
        protocol="standard",
        modalities=modalities,
        text_embedder=lambda texts: embed_texts(texts, progress=False),
    )
    embed_s = time.perf_counter() - t0
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    methods = [Method(f"{m}_only", "concat", [m], kind="unimodal") for m in modalities] + [
        Method(f, f) for f in (fusions or FUSIONS.list())
    ]
    rows = train_all(splits, methods, cfg, out)
    for row in rows:
        if "error" in row:
            continue
        model, _ = load_model_dir(out / "models" / row["method"])
        pred = predict(model, for_model(splits.test, model))
        row.update({f"test_{k}": v for k, v in sentiment_metrics(pred.prediction, pred.require_target()).items()})
    ok = [r for r in rows if "error" not in r]
    best = min((r for r in ok if r["kind"] != "unimodal"), key=lambda r: r["best_val"], default=None)
    header = f"{'method':<28} Acc-2 has0/non0  F1 has0/non0  Acc-7  MAE    Corr"
    print(header)
    for r in sorted(ok, key=lambda r: r["test_mae"]):
        print(
            format_sentiment_row(
                r["method"] + (" *" if r is best else ""), {k[5:]: v for k, v in r.items() if k.startswith("test_")}
            )
        )
    print("published (MISA, ACM MM 2020, Table 2):")
    for r in published_rows():
        print(format_sentiment_row(r["method"][:28], {k[5:]: v for k, v in r.items() if k.startswith("test_")}))
    print(f"* best mmfuse pipeline by validation MAE. {PROTOCOL}")
    payload = json.loads((out / "results.json").read_text())
    payload.update(
        {
            "rows": rows,
            "protocol": PROTOCOL,
            "reference_rows": published_rows(),
            "best_by_val": best["method"] if best else None,
            "embedding_time_s": embed_s,
            "features": {
                "transcript": "all-MiniLM-L6-v2 mean-pooled sentence embedding (384-d), frozen",
                "audio": "openSMILE 73-d (bc-LSTM release)",
            },
        }
    )
    write_into(out, {"results.json": json.dumps(payload, indent=2)})
    write_report(build_results_report(out, splits=splits), out / "report.html")
    return rows
