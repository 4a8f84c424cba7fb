"""Cross-modal generation on AV-MNIST: a conditional GAN vs the product-of-experts VAE, images from audio alone.

Protocol: the data of :mod:`mmfuse.benchmarks.avmnist_vae` (clean images, ``image_energy=1.0``; noisy audio as
standardised log-mel spectrograms, 40 x 32 flattened; 20,000 training pairs, ``--quick`` 3,000). Two generators
of the 784 pixels from the audio are trained on the training pairs:

* **GAN** - :class:`mmfuse.models.gan.ConditionalGAN`: MLP generator ``[z (32), audio] -> 256 -> 512 -> 784``
  (sigmoid), projection discriminator (Miyato & Koyama 2018) ``784 -> 512 -> 256`` with the audio projected onto
  its features, non-saturating loss + R1 (gamma = :data:`R1_GAMMA`; Mescheder et al. 2018), Adam 2e-4,
  betas (0.5, 0.999), :data:`GAN_EPOCHS` epochs;
* **VAE** - the MVAE of :mod:`mmfuse.benchmarks.avmnist_vae`, same training; the image decoded from the audio-only
  posterior mean.

A separately trained image classifier (the small CNN, trained on real training images, early-stopped on the
validation split) judges the test images generated from each test recording: its accuracy against the spoken
digit, and the Fréchet distance (:func:`mmfuse.evaluation.generative.frechet_distance`) between its penultimate
features (the fused 64-d layer) of the real test images and of the generated ones. Reference rows: the
real training images (a Fréchet floor from a second real sample), and images decoded from VAE prior samples
(chance, no audio). A grid PNG per method shows 8 images per spoken digit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.files import write_into

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 2000}
FULL = {"n_train": 20000}
DATA = {"image_energy": 1.0, "audio_format": "logmel"}
GAN_EPOCHS = {"quick": 30, "full": 30}
R1_GAMMA = 10.0  # Mescheder et al. 2018 use 10 on images
CLASSIFIER_EPOCHS = {"quick": 10, "full": 5}
DEFAULTS: dict[str, dict[str, Any]] = {  # the VAE's settings, as in avmnist_vae
    "quick": {"max_epochs": 30, "batch_size": 128, "patience": 2, "progress_bar": False, "lr": 1e-3},
    "full": {"max_epochs": 15, "batch_size": 128, "patience": 2, "progress_bar": False, "lr": 1e-3},
}


def train_image_gan(views: dict[str, torch.Tensor], epochs: int, seed: int = 0) -> tuple[Any, list[dict[str, float]]]:
    """The conditional GAN image <- audio of the module docstring, trained on ``views`` (:func:`vae_views`)."""
    from mmfuse.models.gan import ConditionalGAN, train_gan

    torch.manual_seed(seed)
    gan = ConditionalGAN.from_dims(
        views["audio"].shape[1], 784, noise_dim=32, hidden=(256, 512), output="sigmoid", r1_gamma=R1_GAMMA
    )
    curve = train_gan(gan, views["audio"], views["image"], epochs, batch_size=64, seed=seed)
    return gan.eval(), curve


def benchmark(
    out_dir: str | Path | None = "results/avmnist_gan",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
    gan_epochs: int | None = None,
) -> list[dict[str, Any]]:
    """Train the GAN, the VAE and the judging classifier; print and write the table. ``fusions`` is unused."""
    from mmfuse.benchmarks.avmnist_vae import save_grid, train_vae, vae_views
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.data.base import TensorMultimodalDataset, dataset_len
    from mmfuse.evaluation.generative import frechet_distance
    from mmfuse.training.fit import fit

    level = "quick" if quick else "full"
    options = {**DATA, **(QUICK if quick else FULL), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS[level], seed=seed)
    train_views, test_views = vae_views(splits.train), vae_views(splits.test)
    labels = np.concatenate([b["target"].numpy() for b in torch.utils.data.DataLoader(splits.test, batch_size=1024)])

    t0 = time.perf_counter()
    gan, gan_curve = train_image_gan(train_views, gan_epochs or GAN_EPOCHS[level], seed)
    gan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vae, vae_curve = train_vae(train_views, cfg)
    vae_s = time.perf_counter() - t0

    clf_cfg = ModelConfig(encoders={"image": {"name": "cnn", "in_channels": 1}}, num_outputs=10, fusion="concat")
    clf_train = TrainConfig(
        max_epochs=CLASSIFIER_EPOCHS[level], batch_size=128, patience=2, seed=seed, progress_bar=False
    )
    clf = fit(clf_cfg, clf_train, splits.train, splits.val).model.eval()

    @torch.no_grad()
    def judge(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels and penultimate (fused) features of ``images (N, 784)``."""
        ds = TensorMultimodalDataset({"image": images.reshape(-1, 1, 28, 28).numpy()}, np.zeros(len(images)))
        preds, feats = [], []
        for b in torch.utils.data.DataLoader(ds, batch_size=512):
            out = clf(b["inputs"], b["masks"])
            preds.append(out["prediction"].argmax(1).numpy())
            feats.append(out["fused"].numpy())
        return np.concatenate(preds), np.concatenate(feats)

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        images = {
            "real training images": train_views["image"][: len(labels)],
            "GAN from audio alone": gan.generate(test_views["audio"], sample=True, generator=g),
            "VAE from audio alone": vae.generate({"audio": test_views["audio"]}, "image"),
            "VAE prior samples (no audio)": vae.decode(torch.randn(len(labels), vae.latent, generator=g), ["image"])[
                "image"
            ],
        }
    _, real_feats = judge(test_views["image"])
    real_acc = float((judge(test_views["image"])[0] == labels).mean())
    rows = [{"images": "real test images", "classifier_accuracy": real_acc, "frechet_distance": 0.0}]
    train_labels = np.concatenate(
        [b["target"].numpy() for b in torch.utils.data.DataLoader(splits.train, batch_size=1024)]
    )[: len(labels)]
    for name, imgs in images.items():
        pred, feats = judge(imgs)
        want = train_labels if name.startswith("real training") else labels
        rows.append(
            {
                "images": name,
                "classifier_accuracy": float((pred == want).mean()),
                "frechet_distance": frechet_distance(real_feats, feats),
            }
        )
    for r in rows:
        print(f"{r['images']:30s} accuracy {r['classifier_accuracy']:.4f}  Frechet {r['frechet_distance']:9.3f}")
    if out_dir is not None:
        out = Path(out_dir)
        for key, file, title in (
            ("GAN from audio alone", "gan_from_audio.png", "conditional GAN: images from audio alone (row = digit)"),
            ("VAE from audio alone", "vae_from_audio.png", "MVAE: images from audio alone (row = spoken digit)"),
            ("VAE prior samples (no audio)", "prior_samples.png", "MVAE prior samples (rows: no audio, by index)"),
        ):
            save_grid(images[key].numpy(), labels, out / file, title=title)
        payload = {
            "rows": rows,
            "gan_train_time_s": gan_s,
            "vae_train_time_s": vae_s,
            "gan_terms_per_epoch": gan_curve,
            "vae_neg_elbo_per_epoch": vae_curve,
            "n_train": dataset_len(splits.train),
            "n_test": len(labels),
            "data_options": options,
            "r1_gamma": R1_GAMMA,
            "seed": seed,
        }
        write_into(out, {"results.json": json.dumps(payload, indent=2)})
    return rows
