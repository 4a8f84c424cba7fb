from __future__ import annotations

import numpy as np
import pytest
import torch

from mmfuse.data.augment import GeneratedPairs
from mmfuse.data.base import TensorMultimodalDataset
from mmfuse.errors import ConfigError
from mmfuse.models.gan import ConditionalGAN


def _data(n=20):
    rng = np.random.default_rng(0)
    masks = {"image": np.arange(n) % 2 == 0}  # the image is missing from half the rows
    image = rng.random((n, 1, 4, 4)).astype("float32") * masks["image"][:, None, None, None]
    return TensorMultimodalDataset(
        {"audio": rng.standard_normal((n, 6)).astype("float32"), "image": image}, np.arange(n) % 3, masks
    )


def test_generated_pairs_are_appended_with_their_share():
    torch.manual_seed(0)
    data = _data()
    gan = ConditionalGAN.from_dims(6, 16, noise_dim=2, hidden=(8,), output="sigmoid")
    aug = GeneratedPairs(data, gan, ["audio"], "image", share=0.5, seed=1)
    assert len(aug) == 30
    for i in range(20):  # the original rows, untouched
        assert torch.equal(aug[i]["inputs"]["image"], data[i]["inputs"]["image"])
        assert bool(aug[i]["masks"]["image"]) == bool(data[i]["masks"]["image"])
    for i in range(20, 30):
        item, src = aug[i], data[int(aug.rows[i - 20])]
        assert bool(item["masks"]["image"]) and item["inputs"]["image"].shape == (1, 4, 4)
        assert torch.equal(item["inputs"]["audio"], src["inputs"]["audio"]) and item["target"] == src["target"]
        cond = src["inputs"]["audio"][None]
        assert item["inputs"]["image"].min() >= 0 and item["inputs"]["image"].max() <= 1
        assert cond.shape == (1, 6)
    again = GeneratedPairs(data, gan, ["audio"], "image", share=0.5, seed=1)
    assert torch.equal(again.generated, aug.generated)  # seeded
    assert len(GeneratedPairs(data, gan, ["audio"], "image", share=0.0)) == 20
    with pytest.raises(ConfigError, match=">= 0"):
        GeneratedPairs(data, gan, ["audio"], "image", share=-0.1)
