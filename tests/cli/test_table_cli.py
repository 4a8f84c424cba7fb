"""``mmfuse fit / evaluate / predict / compare`` on a small table, and their one-line refusals (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmfuse.cli import main
from mmfuse.predictor import MultimodalPredictor


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """120 rows: a 6-column numeric group (f_0..f_5), a .npy sequence, a number, a category; label from f_0 and the
    sequence."""
    root = tmp_path_factory.mktemp("table")
    (root / "seq").mkdir()
    rng = np.random.default_rng(0)
    n = 120
    y = rng.integers(0, 3, n)
    rows = []
    for i in range(n):
        seq = rng.normal(size=(4 + i % 3, 2)).astype(np.float32)
        seq[:, 0] += y[i]
        np.save(root / "seq" / f"{i}.npy", seq)
        rows.append(
            {
                "track": f"seq/{i}.npy",
                "size": rng.normal(),
                "kind": str(rng.choice(["a", "b"])),
                "label": f"class{y[i]}",
                **{f"f_{j}": rng.normal() + (1.5 * y[i] if j == 0 else 0.0) for j in range(6)},
            }
        )
    df = pd.DataFrame(rows)
    df.iloc[:90].to_csv(root / "train.csv", index=False)
    df.iloc[90:].to_csv(root / "test.csv", index=False)
    return root


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def summary(out: str) -> dict:
    """The JSON summary that 'mmfuse fit' prints after the schema."""
    return json.loads(out[out.index("\n{") + 1 : out.rindex("}") + 1])


FAST = ("--fusion", "concat", "--max-epochs", "3", "--no-progress", "--cache-dir")


def test_fit_evaluate_predict(table, tmp_path, capsys):
    rc, out, err = run(
        capsys, "fit", table / "train.csv", "--target", "label", "-o", tmp_path / "m", *FAST, tmp_path / "c"
    )
    assert rc == 0 and "model saved to" in out
    assert (
        "f                    vector      <- f_0, f_1" in out and not err
    )  # the prefix group is printed in the schema
    assert summary(out)["rows"] == {"train": 76, "val": 14}
    rc, out, _ = run(capsys, "evaluate", tmp_path / "m", table / "test.csv", "-o", tmp_path / "report.json")
    assert rc == 0 and "confusion matrix" in out and "per-modality contribution" in out and "issues: 0" in out
    assert "calibration: ECE=" in out and "after temperature scaling (T = " in out and "accuracy at coverage 1: " in out
    assert "per-modality Shapley values" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["contribution"]) == {"f", "tabular", "track"} and report["rows"]["evaluated"] == 30
    rc, out, _ = run(capsys, "predict", tmp_path / "m", table / "test.csv", "-o", tmp_path / "pred.parquet")
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert rc == 0 and len(pred) == 30 and set(pred["prediction"]) <= {"class0", "class1", "class2"}
    assert list(pred.columns) == [
        "row",
        "prediction",
        "prob_class0",
        "prob_class1",
        "prob_class2",
        "uncertainty",
        "notes",
    ]
    assert pred["row"].tolist() == list(range(30))  # the table's order, and which row each prediction is for
    assert pred["uncertainty"].between(0, 1).all()
    rc, out, _ = run(
        capsys, "predict", tmp_path / "m", table / "test.csv", "-o", tmp_path / "cal.csv", "--calibrate", "--explain"
    )
    cal = pd.read_csv(tmp_path / "cal.csv")
    assert rc == 0 and (cal["prediction"] == pred["prediction"]).all()  # temperature scaling never changes the class
    assert [c for c in cal.columns if c.startswith("shapley_")] == ["shapley_f", "shapley_tabular", "shapley_track"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    t = config["calibration"]["temperature"]
    assert t > 0 and (t == 1.0 or not np.allclose(cal["prob_class0"], pred["prob_class0"]))


def compare(capsys, table, tmp_path, *extra, out=None):
    """``mmfuse compare`` on the fixture table, results in ``out`` (default ``tmp_path / "cmp"``)."""
    out = out or tmp_path / "cmp"
    return run(
        capsys, "compare", table / "train.csv", "--target", "label", *extra, "-o", out, *FAST[2:], tmp_path / "c"
    )


def test_compare_prints_a_leaderboard(table, tmp_path, capsys):
    rc, out, _ = compare(capsys, table, tmp_path, "--fusions", "concat,late_mean", "--test-fraction", "0.2")
    assert rc == 0 and "test_accuracy" in out and "late_mean" in out and "concat" in out
    rows = json.loads((tmp_path / "cmp" / "results.json").read_text())["rows"]
    # linear models on the feature modalities (not on 'track', a sequence the GRU reads), then the fusions
    assert [r["method"] for r in rows] == [
        "sklearn_concat",
        "sklearn_f",
        "sklearn_tabular",
        "concat",
        "late_mean",
        "selected",
    ]
    assert all("error" not in r for r in rows) and {r["kind"] for r in rows[:3]} == {"classical"}
    assert all(r["folds"] == 5 and r["cv_std"] is not None for r in rows[:5])  # 5-fold CV with its spread
    assert 0.5 < rows[0]["test_accuracy"] <= 1.0  # the label is in f_0: a linear model on the columns finds it
    assert np.isclose(sum(r["weight"] for r in rows[:5]), 1.0)
    table_lines = out[out.index("method  ") :].splitlines()
    assert table_lines[0].split()[:2] == ["method", "cv_accuracy"]  # the selection score first, and the order
    shown = [line.split()[0] for line in table_lines[2 : 2 + len(rows)]]
    assert shown == [r["method"] for r in sorted(rows, key=lambda r: -r["cv_accuracy"])]
    assert "never used for a choice" in out
    assert MultimodalPredictor.load(tmp_path / "cmp" / "model").predict(table / "train.csv")["prediction"].notna().all()


def test_compare_never_chooses_on_the_test_table(table, tmp_path, capsys):
    """Poisoned test labels change the test columns and nothing else: not the scores, not the choice."""
    df = pd.read_csv(table / "train.csv")
    df.iloc[:60].to_csv(tmp_path / "test.csv", index=False)
    df.iloc[:60].assign(label=lambda d: d["label"].iloc[::-1].to_numpy()).to_csv(tmp_path / "bad.csv", index=False)
    results = []
    for name in ("test.csv", "bad.csv"):
        out_dir = tmp_path / name.replace(".csv", "")
        rc, out, err = compare(
            capsys,
            table,
            tmp_path,
            "--fusions",
            "concat",
            "--preset",
            "fast",
            "--test-table",
            tmp_path / name,
            out=out_dir,
        )
        assert rc == 0, err
        results.append(json.loads((tmp_path / name.replace(".csv", "") / "results.json").read_text())["rows"])
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("test_") and k != "seconds"} for r in rows]  # noqa: E731
    assert strip(results[0]) == strip(results[1])
    assert results[0][-1]["test_accuracy"] != results[1][-1]["test_accuracy"]


def write(tmp_path, df, name="t.csv"):
    df.to_csv(tmp_path / name, index=False)
    return tmp_path / name


@pytest.mark.parametrize(
    "change, extra, message",
    [
        (lambda d: d, ["--target", "nope"], "Target column 'nope' is not in the table"),
        (lambda d: d.assign(label="same"), [], "single class"),
        (
            lambda d: d.assign(label=[None, None] + d["label"].tolist()[2:]),
            [],
            r"empty \(or infinite\) in 2 row\(s\) \(0, 1\)",
        ),
        (lambda d: d, ["--fusion", "concatt"], "Unknown fusion 'concatt'"),
        (
            lambda d: d.assign(track=["../outside.npy"] * len(d)),
            ["--base-dir", "BASE"],
            "No readable .npy file in sequence column 'track'",
        ),
        (
            lambda d: d,
            ["--schema", "SCHEMA"],
            "Column 'kind' is declared numeric in the schema but only 0% of its cells are numbers",
        ),
    ],
)
def test_refusals_are_one_line(table, tmp_path, capsys, change, extra, message):
    df = change(pd.read_csv(table / "train.csv"))
    src = write(table, df, f"bad-{abs(hash(message)) % 10**8}.csv")
    (tmp_path / "schema.yaml").write_text("columns:\n  kind: numeric\n")
    extra = [str(table) if e == "BASE" else str(tmp_path / "schema.yaml") if e == "SCHEMA" else e for e in extra]
    target = [] if "--target" in extra else ["--target", "label"]
    rc, _, err = run(
        capsys, "fit", src, *target, *FAST[:-1], *extra, "-o", tmp_path / "m", "--cache-dir", tmp_path / "c"
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("mmfuse: error: ")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "m").exists()


def test_drop_missing_target_records_the_rows(table, tmp_path, capsys):
    df = pd.read_csv(table / "train.csv")
    df.loc[[3, 8], "label"] = None
    src = write(table, df, "missing-target.csv")  # beside seq/, which its paths point into
    rc, out, _ = run(
        capsys, "fit", src, "--target", "label", "--drop-missing-target", "-o", tmp_path / "m", *FAST, tmp_path / "c"
    )
    assert rc == 0 and summary(out)["issues"]["target"] == 2
    rc, out, _ = run(capsys, "evaluate", tmp_path / "m", src, "--drop-missing-target")
    assert rc == 0 and "2 without target, left out" in out
    rc, _, err = run(capsys, "evaluate", tmp_path / "m", src)
    assert rc == 2 and "--drop-missing-target" in err


def test_robustness_and_report_accept_a_model_from_fit(table, tmp_path, capsys):
    assert (
        run(capsys, "fit", table / "train.csv", "--target", "label", "-o", tmp_path / "m", *FAST, tmp_path / "c")[0]
        == 0
    )
    rc, _, err = run(capsys, "robustness", tmp_path / "m")
    assert rc == 2 and "pass --table TABLE" in err
    rc, out, _ = run(
        capsys,
        "robustness",
        tmp_path / "m",
        "--table",
        table / "test.csv",
        "--noise-levels",
        "0,1",
        "--missing-rates",
        "0,0.5,1",
    )
    assert rc == 0 and "missing-rate sweep" in out and (tmp_path / "m" / "robustness.json").is_file()
    rc, out, _ = run(capsys, "report", tmp_path / "m", "--table", table / "test.csv")
    page = (tmp_path / "m" / "report.html").read_text()
    assert (
        rc == 0
        and "Calibration and uncertainty" in page
        and "Robustness" in page
        and "Per-modality Shapley values" in page
    )
    from mmfuse.predictor import MultimodalPredictor

    MultimodalPredictor.load(tmp_path / "m")  # the extras added to the folder keep it loadable


def test_embed_and_retrieve_accept_a_model_from_fit(table, tmp_path, capsys):
    assert (
        run(capsys, "fit", table / "train.csv", "--target", "label", "-o", tmp_path / "m", *FAST, tmp_path / "c")[0]
        == 0
    )
    rc, out, _ = run(
        capsys, "embed", tmp_path / "m", "--table", table / "test.csv", "--modality", "f", "-o", tmp_path / "z.npy"
    )
    assert rc == 0 and np.load(tmp_path / "z.npy").shape == (30, 64)
    rc, out, _ = run(
        capsys,
        "retrieve",
        tmp_path / "m",
        "--table",
        table / "test.csv",
        "--query",
        "f",
        "--gallery",
        "track",
        "-o",
        tmp_path / "r.json",
    )
    metrics = json.loads((tmp_path / "r.json").read_text())
    assert (
        rc == 0
        and "f -> track" in out
        and set(metrics) >= {"model", "random"}
        and 0.0 <= metrics["model"]["mAP"] <= 1.0
    )
    rc, _, err = run(capsys, "retrieve", tmp_path / "m", "--query", "f", "--gallery", "track")
    assert rc == 2 and "pass --table TABLE" in err


def test_compare_over_seeds_reports_mean_and_spread(table, tmp_path, capsys):
    rc, out, err = compare(
        capsys, table, tmp_path, "--fusions", "concat", "--preset", "fast", "--seeds", "0,1", "--test-fraction", "0.2"
    )
    assert rc == 0, err
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert results["seeds"] == [0, 1] and len(results["per_seed"]) == 2
    for row in results["rows"]:
        per = [r for rows in results["per_seed"] for r in rows if r["method"] == row["method"]]
        assert row["seeds"] == 2 and np.isclose(row["test_accuracy"], np.mean([r["test_accuracy"] for r in per]))
        assert np.isclose(row["cv_std"], np.std([r["cv_accuracy"] for r in per]))
    assert "the 2 seeds 0,1" in out
