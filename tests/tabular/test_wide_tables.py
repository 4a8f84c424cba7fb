"""Wide and sparse tables: 100,000 numeric columns fit in a small multiple of their size; array columns are vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfuse.tabular import TablePipeline, read_table, resolve_schema
from mmfuse.tabular import _wide as W

ROWS, COLS = 200, 100_000
# Peak RSS of the whole fit, in MB: the interpreter with torch and pyarrow (~400 MB) plus 12x the float32 values
# (76 MB). The code before this file read the same Parquet file past 8 GB (killed), so the budget is far below it.
BUDGET_MB = 400 + 12 * ROWS * COLS * 4 / 2**20

FIT = r"""
import json, sys
from mmfuse.predictor import MultimodalPredictor
from mmfuse.tabular import read_table
df = read_table(sys.argv[1])  # read once: pyarrow needs ~4 s for 100,000 column chunks, whatever the rows
p = MultimodalPredictor(target="label", fusion="concat", progress=False, use_cache=False, train={"max_epochs": 2})
out = p.fit(df).predict(df)
hwm = next(int(s.split()[1]) for s in open("/proc/self/status") if s.startswith("VmHWM:")) / 2**10
print(json.dumps({"rows": len(out), "dims": {k: v["dim"] for k, v in p.pipeline.state.items()}, "peak_mb": hwm}))
"""


def sparse_parquet(path: Path, rows: int = ROWS, cols: int = COLS, seed: int = 0) -> None:
    """``rows`` x ``cols`` float32, ~1% nonzero, and a two-class ``label`` read from the first column; names ``g<i>x``
    (no numbered group, so every column is numeric: the ``tabular`` modality)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((rows, cols), np.float32)
    flat = rng.choice(rows * cols, size=rows * cols // 100, replace=False)
    x.flat[flat] = rng.uniform(-1, 1, len(flat)).astype(np.float32)
    x[:, 0] = rng.uniform(-1, 1, rows)
    arrays = [pa.array(x[:, j]) for j in range(cols)] + [pa.array((x[:, 0] > 0).astype(np.int64))]
    pq.write_table(pa.Table.from_arrays(arrays, names=[f"g{j}x" for j in range(cols)] + ["label"]), path)


def test_wide_sparse_parquet_fits_within_memory_budget(tmp_path):
    path = tmp_path / "wide.parquet"
    sparse_parquet(path)
    proc = subprocess.run(
        [sys.executable, "-c", FIT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rows"] == ROWS and result["dims"] == {"tabular": COLS}
    assert result["peak_mb"] < BUDGET_MB, f"peak RSS {result['peak_mb']:.0f} MB over the {BUDGET_MB:.0f} MB budget"


def test_wide_csv_reads_one_float32_block_in_file_order(tmp_path):
    rng = np.random.default_rng(1)
    cols = W.WIDE + 5
    x = np.where(rng.random((30, cols)) < 0.05, rng.uniform(-1, 1, (30, cols)), 0.0).round(3)
    df = pd.DataFrame(x, columns=[f"v{j}x" for j in range(cols)])
    df.insert(3, "name", [f"s{i % 3}" for i in range(30)])
    df["label"] = np.arange(30) % 2
    df.to_csv(tmp_path / "w.csv", index=False)
    got = read_table(tmp_path / "w.csv")
    assert (
        list(got.columns) == list(df.columns)
        and got["label"].dtype == np.int64
        and got["name"].tolist()[:2]
        == [
            "s0",
            "s1",
        ]
    )
    np.testing.assert_allclose(got[df.columns[5]].to_numpy(), x[:, 4], atol=1e-6)
    schema = resolve_schema(got, "label")
    assert schema.modalities()["tabular"][0] == "tabular" and schema.columns["name"] == "categorical"


def test_wide_stage_prints_progress(tmp_path, capsys):
    cols = W.WIDE
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(20, cols)).astype(np.float32))
    df.columns = [f"c{j}x" for j in range(cols)]
    df["label"] = np.arange(20) % 2
    pipe = TablePipeline(resolve_schema(df, "label"), progress=True).fit(df)
    data = pipe.transform(df)
    assert data.dataset.inputs["tabular"].shape == (20, cols)
    err = capsys.readouterr().err
    assert "standardising 1,000 numeric columns" in err and "done in" in err


def test_many_empty_cells_make_one_issue_per_row():
    df = pd.DataFrame(np.full((4, 30), np.nan), columns=[f"c{j}x" for j in range(30)])
    df.iloc[:, 0] = [1.0, 2.0, 3.0, 4.0]
    df.iloc[0, 1:] = 0.5
    df["label"] = [0, 1, 0, 1]
    pipe = TablePipeline(resolve_schema(df, "label"), progress=False).fit(df)
    data = pipe.transform(df)
    assert len(data.issues) == 3 and "29 of 30 numeric values empty" in data.issues[0].reason
    np.testing.assert_allclose(data.dataset.inputs["tabular"][1:, 1:].numpy(), 0.0)  # empty -> the training mean


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_float_list_column_is_one_vector_modality(tmp_path, fixed):
    rng = np.random.default_rng(2)
    n, d = 60, 24
    emb = rng.normal(size=(n, d)).astype(np.float32)
    y = (emb[:, 0] > 0).astype(np.int64)
    values = pa.array(emb.reshape(-1))
    col = (
        pa.FixedSizeListArray.from_arrays(values, d)
        if fixed
        else pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)), values)
    )
    pq.write_table(pa.table({"emb": col, "label": y}), tmp_path / "t.parquet")
    df = read_table(tmp_path / "t.parquet")
    schema = resolve_schema(df, "label")
    assert schema.modalities() == {"emb": ("vector", ["emb"])}
    pipe = TablePipeline(schema, progress=False).fit(df)
    x = pipe.transform(df).dataset.inputs["emb"].numpy()
    assert x.shape == (n, d)
    np.testing.assert_allclose(x, (emb - emb.mean(0)) / emb.std(0), rtol=1e-4, atol=1e-4)


def test_parquet_list_column_bad_rows_are_issues(tmp_path):
    cells = [[1.0, 2.0], None, [], [1.0], [float("nan"), 1.0], [3.0, 4.0]]
    pq.write_table(
        pa.table({"v": pa.array(cells, pa.list_(pa.float32())), "label": [0, 1, 0, 1, 0, 1]}), tmp_path / "t.parquet"
    )
    df = read_table(tmp_path / "t.parquet")
    pipe = TablePipeline(resolve_schema(df, "label"), progress=False).fit(df)
    data = pipe.transform(df)
    assert pipe.state["v"]["dim"] == 2
    assert data.dataset.masks["v"].tolist() == [True, False, False, False, False, True]
    assert [it.reason for it in data.issues] == [
        "no value",
        "empty vector",
        "vector has 1 values, expected 2",
        "vector holds NaN/inf",
    ]


def test_vector_column_end_to_end_predict_keeps_rows(tmp_path):
    from mmfuse.predictor import MultimodalPredictor

    rng = np.random.default_rng(3)
    n, d = 80, 16
    emb = rng.normal(size=(n, d)).astype(np.float32)
    pq.write_table(
        pa.table({"emb": pa.array(list(emb), pa.list_(pa.float32())), "label": (emb[:, 0] > 0).astype(np.int64)}),
        tmp_path / "t.parquet",
    )
    p = MultimodalPredictor(target="label", fusion="concat", progress=False, use_cache=False, train={"max_epochs": 2})
    p.fit(tmp_path / "t.parquet")
    assert p.pipeline.state["emb"]["dim"] == d
    assert len(p.predict(tmp_path / "t.parquet")) == n


def test_json_list_strings_parse_in_one_call():
    x = W.json_vectors(["[1, 2]", " [3.5, -1] "])
    assert x is not None and x.tolist() == [[1.0, 2.0], [3.5, -1.0]]
    assert W.json_vectors(["[1, 2], [3", "4]"]) is None  # cells may not split differently than given
    assert W.json_vectors(["[1, 2]", "[3]"]) is None  # ragged: the per-cell reader says which row
