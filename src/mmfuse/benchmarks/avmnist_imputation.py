"""AV-MNIST with the image removed at test time: zero-fill vs learned token vs VAE vs GAN imputation.

Protocol: the data and training settings of :mod:`mmfuse.benchmarks.avmnist_robustness` (a seeded 10,000 /
2,000 / 2,000 subset, log-mel audio, at most 10 epochs with patience 3 on the validation split; ``--quick``:
3,000 / 1,000 / 1,000 and 5 epochs). For each fusion (default concat, gated, modality_attention):

* a model trained with **every modality** (no dropout) is evaluated with the image removed from every test
  sample under three strategies: ``zero`` (the absent embedding is zero), ``vae`` and ``gan`` (the image
  embedding imputed from the audio embedding by a product-of-experts VAE / a conditional GAN trained on the
  model's training-set embeddings after the model, :mod:`mmfuse.training.imputation`; the model is frozen);
* ``gan+L2``: the GAN imputer with pix2pix's paired L2 term added to its generator loss (weight 1 on
  standardised embeddings), fitted and measured the same way (not saved);
* ``token``: the same fusion trained with learned missing tokens and modality dropout 0.5 (a token is only
  learned when something is absent in training, so it is a second model); the VAE and GAN imputers are also
  fitted on this model's embeddings and measured in place of its token (``token_model_no_image_<kind>``);

beside an audio-only model. Nothing is chosen on the test split: the models stop on validation accuracy,
the imputers train a fixed number of epochs on the training split. The models with their imputers are saved
in ``out_dir/models/<fusion>`` (``mmfuse robustness`` on them reports every strategy); ``results.json`` holds
every number.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.files import write_into

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 1000}
FULL = {"n_train": 10000, "n_val": 2000, "n_test": 2000}
DATA = {"audio_format": "logmel"}
FUSIONS = ["concat", "gated", "modality_attention"]
TOKEN_DROPOUT = 0.5
IMPUTERS: dict[str, dict[str, Any]] = {"gan": {}, "vae": {}}
GAN_L2 = {"recon_weight": 1.0}  # the GAN imputer with a paired L2 term (pix2pix, Isola et al. 2017), for comparison
IMPUTER_EPOCHS = {"quick": 20, "full": 30}
DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"max_epochs": 5, "batch_size": 128, "patience": 2, "progress_bar": False},
    "full": {"max_epochs": 10, "batch_size": 128, "patience": 3, "progress_bar": False},
}


def image_removed(model: Any, dataset: Any, strategy: str, removed: str = "image") -> float:
    """Test accuracy with ``removed`` absent from every sample, absent rows filled by ``strategy``."""
    from mmfuse.evaluation.predict import predict, task_metrics
    from mmfuse.evaluation.robustness import removal_transform

    pred = predict(model, dataset, transform=removal_transform([removed]), missing=strategy)
    return task_metrics(pred, "classification")["accuracy"]


def benchmark(
    out_dir: str | Path | None = "results/avmnist_imputation",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train, impute, measure; returns one row per fusion."""
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.evaluation.predict import predict, task_metrics
    from mmfuse.evaluation.robustness import restrict_splits
    from mmfuse.training.fit import fit
    from mmfuse.training.imputation import fit_imputer
    from mmfuse.training.serialization import save_model_dir

    level = "quick" if quick else "full"
    options = {**DATA, **(QUICK if quick else FULL), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS[level], seed=seed)
    out = Path(out_dir) if out_dir is not None else None
    t_start = time.perf_counter()

    audio = restrict_splits(splits, ["audio"])
    audio_cfg = ModelConfig(encoders={"audio": splits.spec.encoders["audio"]}, num_outputs=10)
    t0 = time.perf_counter()
    audio_model = fit(audio_cfg, cfg, audio.train, audio.val).model
    audio_only = task_metrics(predict(audio_model, audio.test), "classification")["accuracy"]
    print(f"audio_only: {audio_only:.4f} ({time.perf_counter() - t0:.0f} s)")

    rows = []
    for fusion in fusions or FUSIONS:
        t0 = time.perf_counter()
        model_cfg = ModelConfig(encoders=splits.spec.encoders, num_outputs=10, fusion=fusion)
        plain = fit(model_cfg, cfg, splits.train, splits.val)
        train_s = time.perf_counter() - t0
        # the GAN with pix2pix's paired L2 term first (compared, not saved), then the saved imputers
        fit_imputer(plain.model, splits.train, "gan", GAN_L2, IMPUTER_EPOCHS[level], seed=seed)
        no_image_gan_l2 = image_removed(plain.model, splits.test, "gan")
        records = {
            k: fit_imputer(plain.model, splits.train, k, IMPUTERS[k], IMPUTER_EPOCHS[level], seed=seed)
            for k in sorted(IMPUTERS)
        }
        token_cfg = ModelConfig(**{**model_cfg.to_dict(), "missing_token": True, "modality_dropout": TOKEN_DROPOUT})
        token = fit(token_cfg, cfg, splits.train, splits.val)
        all_acc = task_metrics(predict(plain.model, splits.test), "classification")["accuracy"]
        row: dict[str, Any] = {"fusion": fusion, "all_modalities": all_acc, "audio_only": audio_only}
        for s in ("zero", "vae", "gan"):
            row[f"no_image_{s}"] = image_removed(plain.model, splits.test, s)
            row[f"no_audio_{s}"] = image_removed(plain.model, splits.test, s, removed="audio")
        row["no_image_gan_l2"] = no_image_gan_l2
        row["no_image_token"] = image_removed(token.model, splits.test, "token")
        for k in sorted(IMPUTERS):  # the same imputers on the dropout-trained model, beside its token
            fit_imputer(token.model, splits.train, k, IMPUTERS[k], IMPUTER_EPOCHS[level], seed=seed)
            row[f"token_model_no_image_{k}"] = image_removed(token.model, splits.test, k)
        row["no_audio_token"] = image_removed(token.model, splits.test, "token", removed="audio")
        row["token_all_modalities"] = task_metrics(predict(token.model, splits.test), "classification")["accuracy"]
        row["train_s"] = {"model": train_s, "token_model": token.train_time_s}
        row["train_s"].update({f"{k}_imputer": r["seconds"] for k, r in records.items()})
        row["epochs"] = {"model": plain.epochs_run, "token_model": token.epochs_run}
        rows.append(row)
        print(
            f"{fusion:<20} all {all_acc:.4f} | image removed: zero {row['no_image_zero']:.4f} "
            f"token {row['no_image_token']:.4f} vae {row['no_image_vae']:.4f} gan {row['no_image_gan']:.4f} "
            f"gan+L2 {no_image_gan_l2:.4f} | moddrop model: token {row['no_image_token']:.4f} "
            f"vae {row['token_model_no_image_vae']:.4f} gan {row['token_model_no_image_gan']:.4f} "
            f"| audio_only {audio_only:.4f} ({time.perf_counter() - t0:.0f} s)"
        )
        if out is not None:
            meta = {
                "model": {**model_cfg.to_dict(), "imputers": IMPUTERS},
                "train": cfg.to_dict(),
                "dataset": "avmnist",
                "data_options": {**options, "seed": seed},  # lets `mmfuse robustness` reload the same test subset
                "method": fusion,
            }
            save_model_dir(out / "models" / fusion, plain.model, meta, overwrite=True)
    if out is not None:
        payload = {
            "rows": rows,
            "data_options": options,
            "seed": seed,
            "imputers": IMPUTERS,
            "gan_l2": GAN_L2,
            "imputer_epochs": IMPUTER_EPOCHS[level],
            "token_dropout": TOKEN_DROPOUT,
            "train": cfg.to_dict(),
            "total_s": time.perf_counter() - t_start,
        }
        write_into(out, {"results.json": json.dumps(payload, indent=2)})
    return rows
