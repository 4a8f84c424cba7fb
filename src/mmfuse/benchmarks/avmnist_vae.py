"""Cross-modal generation on AV-MNIST with the product-of-experts multimodal VAE (MVAE).

Protocol: a :class:`mmfuse.models.autoencoder.MultimodalVAE` (latent 32, MLP experts 512-256) is
trained on (image, audio) pairs with MVAE's sub-sampled ELBO (joint + each single modality). The
image modality is the 784 pixels with a Bernoulli likelihood; here the images are kept clean
(``image_energy=1.0``) so that a generated digit can be judged; the audio is the standardised
log-mel spectrogram of the noisy waveform, precomputed by the loader (``audio_format="logmel"``,
40 x 32, flattened; Gaussian likelihood). At test time the image is
generated **from the audio alone** (posterior mean), and a separately trained image classifier
(the small CNN, trained on real training images) labels it; its accuracy against the true digit
measures how much digit identity crosses from audio to image. Reference points: the same classifier
on the real test images, on images reconstructed from the image alone, and on images decoded from
prior samples (chance). A PNG grid shows generated images per true digit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmfuse.config import ModelConfig, TrainConfig
from mmfuse.files import figure_png, write_into

QUICK = {"n_train": 3000, "n_val": 1000, "n_test": 2000}
FULL = {"n_train": 20000}
CLASSIFIER_EPOCHS = {"quick": 10, "full": 5}  # the judging image CNN (early stopping, patience 2)
DATA = {"image_energy": 1.0, "audio_format": "logmel"}
DEFAULTS: dict[str, dict[str, Any]] = {
    # quick: 5 epochs (120 steps) left every generated image a blurred mean digit; 30 (720 steps, ~1 min) draw digits
    "quick": {"max_epochs": 30, "batch_size": 128, "patience": 2, "progress_bar": False, "lr": 1e-3},
    "full": {"max_epochs": 15, "batch_size": 128, "patience": 2, "progress_bar": False, "lr": 1e-3},
}


def vae_views(dataset: Any) -> dict[str, torch.Tensor]:
    """``{"image": (N, 784) in [0, 1], "audio": (N, 40 * frames) standardised log-mel}``."""
    from mmfuse.benchmarks.avmnist_retrieval import raw_views

    img, aud = raw_views(dataset)
    return {"image": torch.from_numpy(np.clip(img, 0.0, 1.0)), "audio": torch.from_numpy(aud)}


def train_vae(views: dict[str, torch.Tensor], cfg: TrainConfig, latent: int = 32) -> tuple[Any, list[float]]:
    """Plain Adam loop over MVAE's loss (the VAE is a generative model, not a MultimodalModel)."""
    from mmfuse.models.autoencoder import MultimodalVAE

    torch.manual_seed(cfg.seed)
    dims = {m: v.shape[1] for m, v in views.items()}
    vae = MultimodalVAE.from_dims(
        dims, latent=latent, hidden=(512, 256), likelihoods={"image": "bernoulli", "audio": "gaussian"}
    )
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    n = len(views["image"])
    g = torch.Generator().manual_seed(cfg.seed)
    curve = []
    for _ in range(cfg.max_epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            loss = vae.loss({m: v[idx] for m, v in views.items()})["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        curve.append(total / n)
    return vae.eval(), curve


def save_grid(
    images: np.ndarray,
    labels: np.ndarray,
    path: Path,
    per_digit: int = 8,
    title: str = "MVAE: images generated from audio alone (row = spoken digit)",
) -> None:
    """Rows = true digit 0-9, columns = images generated from different audio recordings of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(10, per_digit, figsize=(per_digit * 0.8, 10 * 0.8))
    for d in range(10):
        idx = np.flatnonzero(labels == d)[:per_digit]
        for j in range(per_digit):
            ax = axes[d, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(images[idx[j]].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        axes[d, 0].set_title(f"'{d}'", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    png = figure_png(fig, dpi=100)
    plt.close(fig)
    write_into(path.parent, {path.name: png})


def benchmark(
    out_dir: str | Path | None = "results/avmnist_vae",
    data_dir: str | Path | None = None,
    quick: bool = False,
    fusions: list[str] | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train the MVAE and the image classifier, generate images from audio, print and write the results.

    ``fusions`` is unused; ``data_options`` override the loader options (after :data:`DATA` and
    :data:`QUICK` or :data:`FULL`).
    """
    from mmfuse.data.avmnist import load_avmnist
    from mmfuse.data.base import TensorMultimodalDataset, dataset_len
    from mmfuse.evaluation.predict import predict
    from mmfuse.training.fit import fit

    options = {**DATA, **(QUICK if quick else FULL), **(data_options or {})}
    splits = load_avmnist(data_dir=data_dir, seed=seed, **options)
    cfg = train_cfg or TrainConfig(**DEFAULTS["quick" if quick else "full"], seed=seed)
    t0 = time.perf_counter()
    train_views, test_views = vae_views(splits.train), vae_views(splits.test)
    vae, curve = train_vae(train_views, cfg)
    vae_time = time.perf_counter() - t0

    clf_cfg = ModelConfig(encoders={"image": {"name": "cnn", "in_channels": 1}}, num_outputs=10, fusion="concat")
    clf = fit(
        clf_cfg,
        TrainConfig(
            max_epochs=CLASSIFIER_EPOCHS["quick" if quick else "full"],
            batch_size=128,
            patience=2,
            seed=seed,
            progress_bar=False,
        ),
        splits.train,
        splits.val,
    ).model
    labels = test_views_labels = np.concatenate(
        [b["target"].numpy() for b in torch.utils.data.DataLoader(splits.test, batch_size=1024)]
    )

    def accuracy(images: torch.Tensor) -> float:
        ds = TensorMultimodalDataset({"image": images.reshape(-1, 1, 28, 28).numpy()}, test_views_labels)
        return float((predict(clf, ds).labels == labels).mean())

    with torch.no_grad():
        from_audio = vae.generate({"audio": test_views["audio"]}, "image")
        from_image = vae.generate({"image": test_views["image"]}, "image")
        torch.manual_seed(seed)
        from_prior = vae.decode(torch.randn(len(labels), vae.latent), ["image"])["image"]
    rows = [
        {"images": "real test images", "classifier_accuracy": accuracy(test_views["image"])},
        {"images": "reconstructed from image", "classifier_accuracy": accuracy(from_image)},
        {"images": "generated from audio alone", "classifier_accuracy": accuracy(from_audio)},
        {"images": "decoded from prior samples", "classifier_accuracy": accuracy(from_prior)},
    ]
    for r in rows:
        print(f"{r['images']:28s} classifier accuracy {r['classifier_accuracy']:.4f}")
    if out_dir is not None:
        out = Path(out_dir)
        save_grid(from_audio.numpy(), labels, out / "generated_from_audio.png")
        payload = {
            "rows": rows,
            "vae_train_time_s": vae_time,
            "neg_elbo_per_epoch": curve,
            "n_train": dataset_len(splits.train),
            "n_test": len(labels),
            "data_options": options,
            "seed": seed,
        }
        write_into(out, {"results.json": json.dumps(payload, indent=2)})
    return rows
