"""Schema inference (column kinds, prefix groups, task) and schema-file overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmfuse.errors import ConfigError, DataError
from mmfuse.tabular.schema import infer_column, infer_task, modality_name, resolve_schema


def table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "id": [f"row{i}" for i in range(n)],
            "photo": [f"img/{i}.png" for i in range(n)],
            "clip": [f"wav/{i}.WAV" for i in range(n)],
            "track": [f"seq/{i}.npy" for i in range(n)],
            "review": [f"this is review number {i} and it is fine" for i in range(n)],
            "colour": rng.choice(["red", "green", "blue"], n),
            "age": rng.normal(40, 10, n),
            "emb": [list(rng.normal(size=3)) for _ in range(n)],
            "label": rng.integers(0, 3, n),
        }
    )
    for j in range(6):
        df[f"audio_{j}"] = rng.normal(size=n)
    return df


def test_column_kinds_are_inferred():
    df = table()
    s = resolve_schema(df, "label")
    kinds = s.columns
    assert (kinds["id"], kinds["photo"], kinds["clip"], kinds["track"], kinds["review"]) == (
        "id",
        "image",
        "audio",
        "sequence",
        "text",
    )
    assert (kinds["colour"], kinds["age"], kinds["emb"]) == ("categorical", "numeric", "vector")
    assert s.groups == {"audio": [f"audio_{j}" for j in range(6)]}
    mods = s.modalities()
    assert sorted(mods) == ["audio", "clip", "emb", "photo", "review", "tabular", "track"]
    assert mods["tabular"] == ("tabular", ["colour", "age"])
    assert mods["audio"][0] == "vector"
    assert (
        "dropped: 'id' (a different short value in almost every row, read as an identifier" in s.describe()
        and "image" in s.describe()
    )


def test_task_inference():
    assert infer_task(pd.Series(["a", "b", "a"]), "y") == "classification"
    assert infer_task(pd.Series([0, 1, 2, 1]), "y") == "classification"
    assert infer_task(pd.Series([0.5, -1.25, 2.0, 3.1]), "y") == "regression"
    assert infer_task(pd.Series([1.0, 0.0, 1.0]), "y") == "classification"
    assert infer_task(pd.Series([["a", "b"], ["c"]]), "y") == "multilabel"
    assert infer_task(pd.Series(['["a", "b"]', '["c"]']), "y") == "multilabel"
    with pytest.raises(DataError, match="'y' has no values"):
        infer_task(pd.Series([np.nan, np.nan]), "y")


def test_infer_column_edge_cases():
    assert infer_column(pd.Series([np.nan, np.nan]), 2) == "ignore"
    assert infer_column(pd.Series([True, False]), 2) == "categorical"
    assert infer_column(pd.Series(["[1, 2]", "[3, 4]"]), 2) == "vector"
    assert modality_name("my.col name") == "my_col_name" and modality_name("3d") == "c_3d"


def test_override_groups_types_and_drop():
    df = table()
    override = {
        "task": "classification",
        "drop": ["track", "emb"],
        "columns": {"age": "categorical", "id": "ignore"},
        "groups": {"acoustic": "audio_*"},
        "modalities": {"photo": {"encoder": "cnn", "size": 16}},
    }
    s = resolve_schema(df, "label", override)
    assert s.columns["track"] == "ignore" and s.columns["age"] == "categorical"
    assert s.groups == {"acoustic": [f"audio_{j}" for j in range(6)]}
    assert "track" not in s.modalities() and "acoustic" in s.modalities()
    assert s.options == {"photo": {"encoder": "cnn", "size": 16}}
    again = type(s).from_dict(s.to_dict())
    assert again.modalities() == s.modalities()


def test_schema_refusals_name_the_problem():
    df = table()
    with pytest.raises(DataError, match="Target column 'nope' is not in the table"):
        resolve_schema(df, "nope")
    with pytest.raises(
        DataError,
        match=r"Column 'review' is declared numeric in the schema but only 0% of its cells are numbers \(row 0 holds",
    ):
        resolve_schema(df, "label", {"columns": {"review": "numeric"}})
    with pytest.raises(DataError, match=r"Column 'age' is declared image in the schema but row 0"):
        resolve_schema(df, "label", {"columns": {"age": "image"}})
    with pytest.raises(ConfigError, match="matches no column"):
        resolve_schema(df, "label", {"drop": ["ghost"]})
    with pytest.raises(ConfigError, match="kind 'picture'"):
        resolve_schema(df, "label", {"columns": {"photo": "picture"}})
    with pytest.raises(ConfigError, match="Unknown schema key"):
        resolve_schema(df, "label", {"colums": {}})
    with pytest.raises(ConfigError, match="not a modality of this table"):
        resolve_schema(df, "label", {"modalities": {"ghost": {"out_dim": 8}}})
    with pytest.raises(ConfigError, match="No target column"):
        resolve_schema(df, None)
