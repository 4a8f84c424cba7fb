"""The CLI never destroys or misattributes a user's data: output folders, inputs, temp names, row identity,
special files, silent column drops, exit codes, distributed runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mmfuse.cli import main

FAST = ("--fusion", "concat", "--max-epochs", "2", "--no-progress")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A user's folder: train.csv (120 rows), images/ of PNGs it points at, and an unrelated notes file."""
    from PIL import Image

    root = tmp_path_factory.mktemp("user") / "data"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        y = i % 2
        img = (rng.random((8, 8)) * 80 + 150 * y).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"{i}.png")
        rows.append(
            {
                "sample": f"s{i:04d}",
                "photo": f"images/{i}.png",
                "brightness": float(y + rng.normal(scale=0.3)),
                "label": f"c{y}",
            }
        )
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    (root / "notes.txt").write_text("my notes")
    return root


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def fit_argv(data, out, *extra) -> list[str]:
    """``mmfuse fit`` of the user's table with the small-CNN schema."""
    common = [
        "--target",
        "label",
        "-o",
        out,
        *FAST,
        "--cache-dir",
        data.parent / "cache",
        "--schema",
        data.parent / "schema.json",
    ]
    return [str(a) for a in ("fit", data / "train.csv", *common, *extra)]


def fit(capsys, data, out, *extra):
    return run(capsys, *fit_argv(data, out, *extra))


@pytest.fixture(scope="module")
def schema(data):
    # small CNN on the pixels: no pretrained encoder needed, and fast
    (data.parent / "schema.json").write_text(json.dumps({"modalities": {"photo": {"encoder": "cnn", "size": 8}}}))


@pytest.fixture(scope="module")
def model(data, schema, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "m"
    assert main(fit_argv(data, out)) == 0
    return out


def test_fit_into_the_data_folder_is_refused_before_training(data, schema, capsys):
    before = snapshot(data)
    for extra in ((), ("--overwrite",)):
        t0 = time.perf_counter()
        rc, out, err = fit(capsys, data, data, *extra)
        assert rc == 2 and len(err.strip().splitlines()) == 1
        assert "schema:" not in out and time.perf_counter() - t0 < 5  # refused up front, nothing trained
    assert "contains the input" in err
    assert snapshot(data) == before


def test_fit_into_a_folder_of_unrelated_files(data, schema, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("keep me")
    (other / "sub").mkdir()
    (other / "sub" / "x.bin").write_bytes(b"\x00")
    before = snapshot(other)
    rc, _, err = fit(capsys, data, other)
    assert rc == 2 and "folder with other files in it" in err and snapshot(other) == before
    rc, _, err = fit(capsys, data, other, "--overwrite")
    assert rc == 0, err
    after = snapshot(other)
    assert {k: after[k] for k in before} == before  # every unrelated file untouched
    assert {"model.safetensors", "mmfuse.json", "config.json"} <= set(after)


def test_refit_into_a_model_needs_overwrite_and_leaves_no_leftovers(data, schema, tmp_path, capsys):
    assert fit(capsys, data, tmp_path / "m")[0] == 0
    rc, _, err = fit(capsys, data, tmp_path / "m")
    assert rc == 2 and "already holds an mmfuse model; pass --overwrite" in err
    assert fit(capsys, data, tmp_path / "m", "--overwrite")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_predict_never_overwrites_its_input_or_an_existing_file(data, model, tmp_path, capsys):
    before = (data / "train.csv").read_bytes()
    rc, _, err = run(capsys, "predict", model, data / "train.csv", "-o", data / "train.csv")
    assert rc == 2 and "is the input" in err and (data / "train.csv").read_bytes() == before
    (tmp_path / "p.csv").write_text("old")
    rc, _, err = run(capsys, "predict", model, data / "train.csv", "-o", tmp_path / "p.csv")
    assert rc == 2 and "already exists; pass --overwrite" in err and (tmp_path / "p.csv").read_text() == "old"


def test_planted_symlinks_at_temp_names_are_never_followed(data, model, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "pred.csv"
    for name in (".pred.csv.tmp", f".pred.csv.mmfuse-{os.getpid()}-aaaaaaaa.tmp"):
        (tmp_path / name).symlink_to(victim)
    rc, _, err = run(capsys, "predict", model, data / "train.csv", "-o", out)
    assert rc == 0, err
    assert victim.read_text() == "precious" and not out.is_symlink() and len(pd.read_csv(out)) == 120


def test_predictions_carry_the_id_column_and_the_rows_order(data, model, tmp_path, capsys):
    assert run(capsys, "predict", model, data / "train.csv", "-o", tmp_path / "p.csv")[0] == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert list(pred.columns[:2]) == ["sample", "prediction"]
    assert pred["sample"].tolist() == pd.read_csv(data / "train.csv")["sample"].tolist()


def test_a_filtered_shuffled_reindexed_frame_gets_each_prediction_on_its_row(data, model):
    from mmfuse.predictor import MultimodalPredictor

    p = MultimodalPredictor.load(model, base_dir=data)
    df = pd.read_csv(data / "train.csv")
    df["photo"] = [str(data / x) for x in df["photo"]]
    full = p.predict(df).set_index(df["sample"])["prediction"]
    part = df[df.index % 4 != 0].sample(frac=1.0, random_state=1)
    part.index = np.arange(1000, 1000 + len(part))[::-1]  # neither positions nor the original labels
    part = part.copy()
    part["pred"] = p.predict(part)["prediction"]
    assert part["pred"].notna().all()
    assert (part["pred"].to_numpy() == full.loc[part["sample"]].to_numpy()).all()


def test_one_bad_cell_keeps_a_numeric_column_in_the_model(data, schema, tmp_path, capsys):
    df = pd.read_csv(data / "train.csv")
    df["photo"] = [str(data / x) for x in df["photo"]]
    df["brightness"] = df["brightness"].astype(object)
    df.loc[7, "brightness"] = "abc"
    df.loc[9, "brightness"] = "inf"
    df.to_csv(tmp_path / "t.csv", index=False)
    rc, out, err = run(
        capsys,
        "fit",
        tmp_path / "t.csv",
        "--target",
        "label",
        "-o",
        tmp_path / "m",
        *FAST,
        "--allow-outside",
        "--cache-dir",
        data.parent / "cache",
        "--schema",
        data.parent / "schema.json",
    )
    assert rc == 0, err
    assert "brightness" in out.split("schema:")[1].split("\n  dropped")[0]  # a modality input, not dropped
    assert "dropped: 'sample' (a different short value in almost every row" in out  # the drop is listed with its reason
    assert "row 7, brightness: non-numeric value 'abc' set to the training mean -> imputed" in out
    assert "row 9, brightness: infinite value 'inf' set to the training mean -> imputed" in out
    issues = json.loads((tmp_path / "m" / "metrics.json").read_text())["issue_log"]
    assert {(it["row"], it["action"]) for it in issues if it["column"] == "brightness"} == {
        (7, "imputed"),
        (9, "imputed"),
    }
    schema = json.loads((tmp_path / "m" / "schema.json").read_text())
    assert schema["columns"]["brightness"] == "numeric" and schema["reasons"] == {"sample": schema["reasons"]["sample"]}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_devices_and_pipes_are_row_issues_within_a_second(data, model, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.png")
    df = pd.read_csv(data / "train.csv").iloc[:4]
    df["photo"] = [str(data / x) for x in df["photo"]]
    df.loc[1, "photo"] = "/dev/zero"
    df.loc[2, "photo"] = str(tmp_path / "pipe.png")
    df.to_csv(tmp_path / "t.csv", index=False)
    t0 = time.perf_counter()
    rc, _, err = run(capsys, "predict", model, tmp_path / "t.csv", "-o", tmp_path / "p.csv", "--allow-outside")
    assert rc == 0, err
    assert time.perf_counter() - t0 < 30  # loading the model included; the pipe never blocks
    notes = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)["notes"].tolist()
    assert notes[0] == "" and notes[3] == ""
    assert notes[1] == "photo: path is a character device, not a regular file"
    assert notes[2] == "photo: path is a named pipe, not a regular file"


def test_paths_leaving_the_table_folder_are_row_issues_unless_allowed(data, model, tmp_path, capsys):
    secret = tmp_path / "secret.png"
    secret.write_bytes((data / "images" / "0.png").read_bytes())
    (data / "images" / "link.png").symlink_to(secret)  # inside by name, outside once resolved
    df = pd.read_csv(data / "train.csv").iloc[:4]
    df.loc[1, "photo"] = str(secret)
    df.loc[2, "photo"] = "images/link.png"
    df.loc[3, "photo"] = os.path.relpath(secret, data)  # ../../..
    table = data / "probe.csv"
    df.to_csv(table, index=False)
    try:
        assert run(capsys, "predict", model, table, "-o", tmp_path / "p.csv")[0] == 0
        notes = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)["notes"].tolist()
        assert notes[0] == "" and all(n.startswith("photo: path leaves the folder") for n in notes[1:])
        assert run(capsys, "predict", model, table, "-o", tmp_path / "q.csv", "--allow-outside")[0] == 0
        assert pd.read_csv(tmp_path / "q.csv", keep_default_na=False)["notes"].tolist() == ["", "", "", ""]
    finally:
        table.unlink()
        (data / "images" / "link.png").unlink()


def test_compare_exit_status_tells_the_truth(data, schema, tmp_path, capsys, monkeypatch):
    from mmfuse.evaluation import selection

    real = selection.Selector.train

    def broken(self, c, *a, **k):
        if not c.linear:
            raise RuntimeError("no memory left for this method")
        return real(self, c, *a, **k)

    monkeypatch.setattr(selection.Selector, "train", broken)
    rc, out, err = run(
        capsys,
        "compare",
        data / "train.csv",
        "--target",
        "label",
        "--fusions",
        "concat,late_mean",
        *FAST[2:],
        "--preset",
        "fast",
        "--cache-dir",
        data.parent / "cache",
        "--schema",
        data.parent / "schema.json",
    )
    assert rc == 2 and "every method failed (2 of 2)" in err and "failed: concat: RuntimeError" in out
    rc, _, err = run(capsys, "compare", data / "train.csv", "--target", "label", "--devices", "2", "--strategy", "ddp")
    assert rc == 2 and "single process" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, t: (t / "h.csv").write_text("photo,brightness,label\n"), "has no data rows"),
        (
            lambda d, t: (t / "schema.json").write_text('{"modalities": {"photo": {"encoder": "cnn", "size": -5}}}'),
            "positive whole number",
        ),
    ],
)
def test_degenerate_inputs_are_one_sentence(data, tmp_path, capsys, make, message):
    make(data, tmp_path)
    table = tmp_path / "h.csv" if (tmp_path / "h.csv").exists() else data / "train.csv"
    schema = tmp_path / "schema.json" if (tmp_path / "schema.json").exists() else data.parent / "schema.json"
    rc, _, err = run(
        capsys,
        "fit",
        table,
        "--target",
        "label",
        "-o",
        tmp_path / "m",
        *FAST,
        "--schema",
        schema,
        "--cache-dir",
        tmp_path / "c",
    )
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_damaged_model_folders_are_one_sentence(model, data, tmp_path, capsys):
    import shutil

    for name, content, message in (
        ("config.json", "{}", "does not match the manifest"),
        ("labels.json", "[1, 2]", "does not match the manifest"),
    ):
        bad = tmp_path / name.split(".")[0]
        shutil.copytree(model, bad)
        (bad / name).write_text(content)
        rc, _, err = run(capsys, "predict", bad, data / "train.csv", "-o", tmp_path / f"{name}.csv")
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_model_whose_files_and_manifest_agree_but_do_not_fit_is_one_sentence(model, data, tmp_path, capsys):
    """Tampering that also rewrites the manifest is caught by validation, not by a traceback."""
    import shutil

    from mmfuse import files as F

    config = json.loads((model / "config.json").read_text())
    config["model"]["encoders"]["photo"]["out_dim"] = 7  # wrong sizes: the weights no longer fit
    for name, content, message in (
        ("config.json", "{}", "does not describe a model"),
        ("labels.json", '{"target": {"classes": 3}, "modalities": {}}', "labels.json' is malformed"),
        ("config.json", json.dumps(config), "does not fit the model its config.json describes"),
    ):
        bad = tmp_path / f"t-{name}-{len(content)}"
        shutil.copytree(model, bad)
        manifest = json.loads((bad / F.MANIFEST).read_text())
        data_ = {n: (bad / n).read_bytes() for n in manifest["files"]}
        data_[name] = content.encode()
        shutil.rmtree(bad)
        F.write_dir(bad, data_)
        rc, _, err = run(capsys, "predict", bad, data / "train.csv", "-o", tmp_path / f"{name}.csv")
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_distributed_fit_accepts_the_same_output_as_one_process(data, schema, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "mmfuse",
        *fit_argv(data, out, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("model saved to") == 1  # one process saves
    from mmfuse.predictor import MultimodalPredictor

    pred = MultimodalPredictor.load(out, base_dir=data).predict(data / "train.csv")
    assert len(pred) == 120 and pred["prediction"].isin(["c0", "c1"]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # no checkpoint leftovers
