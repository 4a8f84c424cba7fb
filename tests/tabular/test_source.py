"""A Parquet table of several row groups is read one row group at a time and gives the whole-table read's arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfuse.predictor import MultimodalPredictor
from mmfuse.tabular.source import RowGroups, open_table


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """50 rows (a list<float> vector, a number with gaps, a category, a wav file with two broken ones) written as
    one Parquet file of 7-row groups and one of a single group."""
    import soundfile

    root = tmp_path_factory.mktemp("stream")
    (root / "wav").mkdir()
    rng = np.random.default_rng(0)
    n = 50
    y = rng.integers(0, 3, n)
    for i in range(n):
        tone = np.sin(2 * np.pi * (200 + 100 * y[i]) * np.arange(4000) / 8000) + 0.1 * rng.normal(size=4000)
        soundfile.write(root / "wav" / f"{i}.wav", (0.5 * tone).astype(np.float32), 8000)
    (root / "wav" / "7.wav").write_bytes(b"RIFF0000WAVE")  # corrupt
    vec = [list(rng.normal(size=5) + y[i]) for i in range(n)]
    vec[11] = None
    size = rng.normal(size=n) + y
    size[[3, 30]] = np.nan
    df = pd.DataFrame(
        {
            "vec": vec,
            "size": size,
            "kind": rng.choice(["a", "b", "c"], n),
            "sound": [f"wav/{i}.wav" if i != 40 else "wav/missing.wav" for i in range(n)],
            "label": [f"c{v}" for v in y],
        }
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, root / "groups.parquet", row_group_size=7)
    pq.write_table(table, root / "whole.parquet")
    return root


def test_several_row_groups_stream_and_one_is_read_whole(tables):
    source = open_table(tables / "groups.parquet")
    assert isinstance(source, RowGroups) and source.num_row_groups == 8 and len(source) == 50
    assert isinstance(open_table(tables / "whole.parquet"), pd.DataFrame)
    rows = np.array([44, 2, 9, 8, 30])
    whole = pd.read_parquet(tables / "whole.parquet")
    got = source.read(rows, ["size", "kind"])
    assert got["kind"].tolist() == whole["kind"].iloc[rows].tolist()
    assert np.allclose(got["size"].to_numpy(), whole["size"].iloc[rows].to_numpy(), equal_nan=True)


def test_streamed_table_gives_the_arrays_and_issues_of_the_whole_table(tables, tmp_path):
    out = {}
    for name in ("groups", "whole"):
        p = MultimodalPredictor(target="label", fusion="concat", cache_dir=tmp_path / name, progress=False)
        splits, data = p.prepare(tables / f"{name}.parquet")
        out[name] = (splits, data, p.pipeline.state)
    (_, d1, st1), (_, d2, st2) = out["groups"], out["whole"]
    assert st1 == st2  # the same fitted state
    for part in ("train", "val"):
        a, b = d1[part], d2[part]
        assert np.array_equal(a.rows, b.rows) and [i.to_dict() for i in a.issues] == [i.to_dict() for i in b.issues]
        assert sorted(a.dataset.inputs) == sorted(b.dataset.inputs) and len(a.dataset.inputs) >= 3
        for m in a.dataset.inputs:
            assert np.array_equal(a.dataset.inputs[m].numpy(), b.dataset.inputs[m].numpy()), (part, m)
            assert np.array_equal(a.dataset.masks[m].numpy(), b.dataset.masks[m].numpy()), (part, m)
        assert np.array_equal(a.dataset.target.numpy(), b.dataset.target.numpy())
    reasons = {(i.row, i.column) for i in d1["train"].issues + d1["val"].issues}
    assert (7, "sound") in reasons and (40, "sound") in reasons and (11, "vec") in reasons
