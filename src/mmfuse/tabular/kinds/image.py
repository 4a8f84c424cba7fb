"""Image files: EfficientNet-Lite0 embeddings (1280-d, frozen, cached) -> ``mlp``; or, with ``encoder: cnn``,
pixels resized to ``size`` -> the trainable ``cnn``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmfuse.errors import ConfigError
from mmfuse.tabular import readers as R
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context

EMBED_DIM = 1280  # EfficientNet-Lite0 pooled features
GREY_MODES = ("1", "L", "I", "I;16", "F", "LA")  # PIL modes without colour


@COLUMN_KINDS.register("image")
class ImageKind(ColumnKind):
    """One column of image paths; missing, refused or corrupt files are absent."""

    name = "image"
    options = frozenset({"encoder", "out_dim", "size", "channels"})
    encoders = ("efficientnet_lite0", "cnn")
    sizes = ("dim", "size", "channels")

    def check_value(self, modality: str, key: str, value: Any) -> None:
        if key == "channels" and value not in (1, 3):
            raise ConfigError(
                f"Schema option 'channels' of modality {modality!r} is {value!r}; use 1 (grey) or 3 (colour)."
            )

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        if self.encoder_name(options) == "efficientnet_lite0":
            return self.new_state(columns, options, dim=EMBED_DIM)
        channels = options.get("channels")
        if channels is None:  # grey unless a training image has colour
            channels = 1
            for path in list(ctx.paths(columns[0]).values())[:50]:
                try:
                    if R.decode_image(ctx.read(path), ctx.limits).mode not in GREY_MODES:
                        channels = 3
                        break
                except R.ReadIssue:
                    continue
        return self.new_state(columns, options, size=int(options.get("size", 32)), channels=int(channels))

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        col, n = state["columns"][0], len(ctx)
        if state["encoder"] == "efficientnet_lite0":
            return self._embeddings(ctx, col)
        size, channels = state["size"], state["channels"]
        x = np.zeros((n, channels, size, size), np.float32)  # (N, C, H, W) in [0, 1]
        mask = np.zeros(n, bool)
        for j, path in ctx.paths(col).items():
            try:
                x[j] = R.image_array(R.decode_image(ctx.read(path), ctx.limits), size, channels)
                mask[j] = True
            except R.ReadIssue as exc:
                ctx.issue(j, col, str(exc), str(path))
        return x, mask

    @staticmethod
    def _embeddings(ctx: Context, col: str) -> tuple[np.ndarray, np.ndarray]:
        """Cached EfficientNet-Lite0 embeddings ``(N, 1280)``: files decoded and preprocessed in DataLoader workers."""
        from mmfuse.encoders.pretrained import image_encoder_version, image_features, preprocess_image

        limits = ctx.limits

        def load(path: Path) -> np.ndarray:
            return preprocess_image(R.decode_image(R.read_bytes(path, limits), limits))  # (3, 224, 224)

        def embed(images: list[np.ndarray], device: str) -> np.ndarray:
            return image_features(np.stack(images), device=device)

        encoder_id = f"{image_encoder_version()}/downscale{limits.max_side}"  # huge images are downscaled first
        return ctx.cached(encoder_id, col, (EMBED_DIM,), load, embed, f"EfficientNet {col}")

    def encoder(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["encoder"] == "cnn":
            return {"name": "cnn", "in_channels": state["channels"], "out_dim": state["out_dim"]}
        return super().encoder(state)
