"""Train generative imputers (:mod:`mmfuse.models.imputation`) on the embeddings of a trained model.

The model is frozen: its encoders embed the training rows (absent rows stay zero and are masked out), and the
imputer learns to generate each modality's embedding from the others'. The imputer is then part of the model
(``model.imputers[kind]``, its architecture in ``ModelConfig.imputers``), so it is saved and loaded with the
model's weights as safetensors + JSON, and ``missing="gan"`` / ``"vae"`` selects it at predict time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from mmfuse.errors import ConfigError
from mmfuse.models.imputation import IMPUTERS, Imputer, build_imputer
from mmfuse.models.multimodal import MultimodalModel

# Adam settings per imputer: the GAN uses DCGAN's (Radford et al. 2016); the VAE those of the MVAE benchmark
OPTIMISER = {"gan": {"lr": 2e-4, "betas": (0.5, 0.999)}, "vae": {"lr": 1e-3, "betas": (0.9, 0.999)}}


@torch.no_grad()
def embed_dataset(
    model: MultimodalModel, dataset: Dataset, batch_size: int = 512
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Zero-filled embeddings ``{m: (N, D_m)}`` and masks ``{m: (N,)}`` of every row (the model in eval mode)."""
    model.eval()
    emb: dict[str, list[Tensor]] = {}
    masks: dict[str, list[Tensor]] = {}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        m_b = {m: batch["masks"][m].bool() for m in model.modalities}
        for m, v in model._embed(batch["inputs"], m_b).items():
            emb.setdefault(m, []).append(v.float())
            masks.setdefault(m, []).append(m_b[m])
    return {m: torch.cat(v) for m, v in emb.items()}, {m: torch.cat(v) for m, v in masks.items()}


def train_imputer(
    imputer: Imputer,
    embeddings: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    kind: str,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
) -> list[float]:
    """Fit the standardisation, then Adam on ``imputer.loss`` over the rows; returns the mean total per epoch."""
    torch.manual_seed(seed)
    imputer.fit_scale(embeddings, masks)
    opt = torch.optim.Adam([p for p in imputer.parameters() if p.requires_grad], **OPTIMISER[kind])  # type: ignore[arg-type]
    n = next(iter(embeddings.values())).shape[0]
    g = torch.Generator().manual_seed(seed)
    curve = []
    imputer.train()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=g)
        total, steps = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            loss = imputer.loss({m: v[idx] for m, v in embeddings.items()}, {m: v[idx] for m, v in masks.items()})
            opt.zero_grad()
            loss["total"].backward()
            opt.step()
            total, steps = total + float(loss["total"].detach()), steps + 1
        curve.append(total / max(steps, 1))
    imputer.eval()
    return curve


def fit_imputer(
    model: nn.Module,
    dataset: Dataset,
    kind: str,
    params: Mapping[str, Any] | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
) -> dict[str, Any]:
    """Train imputer ``kind`` (``"gan"`` | ``"vae"``) on ``model``'s embeddings of ``dataset`` and attach it.

    The model's own weights do not change. Returns ``{"curve": per-epoch loss, "seconds": wall time}``; the
    caller records ``params`` under ``ModelConfig.imputers[kind]`` to save the model (see :func:`add_imputers`).
    """
    if kind not in IMPUTERS:
        raise ConfigError(f"Unknown imputer {kind!r}; use one of {sorted(IMPUTERS)}.")
    if not isinstance(model, MultimodalModel):
        raise ConfigError(f"A {type(model).__name__} cannot hold an imputer; use a single-task MultimodalModel.")
    t0 = time.perf_counter()
    emb, masks = embed_dataset(model, dataset)
    torch.manual_seed(seed)
    imputer = build_imputer(kind, {m: v.shape[1] for m, v in emb.items()}, **dict(params or {}))
    curve = train_imputer(imputer, emb, masks, kind, epochs, batch_size, seed)
    model.imputers[kind] = imputer
    return {"curve": curve, "seconds": time.perf_counter() - t0}


def add_imputers(
    model_dir: str | Path,
    dataset: Dataset,
    imputers: Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, dict[str, Any]]:
    """Load the model in ``model_dir``, train ``imputers`` (``{kind: params}``) on ``dataset`` (its training rows)
    and save the model with them to ``out_dir`` (safetensors + JSON, as every model). Returns per kind
    :func:`fit_imputer`'s record."""
    from mmfuse.training.serialization import load_model_dir, save_model_dir

    model, meta = load_model_dir(model_dir)
    records = {}
    for kind in sorted(imputers):
        records[kind] = fit_imputer(model, dataset, kind, imputers[kind], epochs, batch_size, seed)
    meta = dict(meta)
    meta["model"] = {**meta["model"], "imputers": {**meta["model"].get("imputers", {}), **dict(imputers)}}
    save_model_dir(out_dir, model, meta, overwrite=overwrite, inputs=[model_dir])
    return records
