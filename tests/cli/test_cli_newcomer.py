"""A newcomer's own files with default settings: standardized by default, missing cells refused,
dropped or imputed, gzip and other separators, and runs that end badly said so (diverged,
interrupted, no better than the majority class)."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from deltaprop.cli import app
from deltaprop.files.model_files import load_preprocessor

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_a_scratch_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def train_json(*args, code=0):
    result = invoke("train", *args, "--json", "--no-plots")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.fixture
def wine(tmp_path):
    """scikit-learn's wine data as its CSV comes: unscaled (proline in the hundreds)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "class"})
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_file_is_standardized_by_default_and_trains_well(wine, tmp_path):
    report = train_json("--data", wine, "--target", "class", "--out", tmp_path / "m.safetensors")
    assert report["test"]["accuracy"] >= 0.9  # scikit-learn's default MLP: 0.93–1.0
    assert report["data"]["features"] == 13
    prep = load_preprocessor(tmp_path / "m.safetensors")
    assert len(prep.mean) == 13 and prep.mean[-1] > 500  # proline's mean, stored for predict
    plain = train_json(
        "--data", wine, "--target", "class", "--no-standardize", "--out", tmp_path / "p.st"
    )
    assert plain["test"]["accuracy"] < 0.8
    assert load_preprocessor(tmp_path / "p.st").mean == ()


def test_a_run_no_better_than_the_majority_class_says_so_and_why(wine, tmp_path):
    report = train_json(
        "--data", wine, "--target", "class", "--no-standardize", "--epochs", "2", "--lr", "1e-5"
    )
    notes = " ".join(report["notes"])
    assert "no better than always answering the most common class" in notes
    assert "the features are not standardized" in notes and "--no-standardize" in notes


def test_the_summary_lists_what_each_column_became(tmp_path):
    path = tmp_path / "mixed.csv"
    rng = np.random.default_rng(0)
    rows = [f"{i},{rng.normal():.3f},{['a', 'b', 'c'][i % 3]},{i % 2}" for i in range(40)]
    path.write_text("id,x,kind,label\n" + "\n".join(rows) + "\n")
    report = train_json("--data", path, "--target", "label", "--drop", "id", "--epochs", "1")
    assert report["columns"] == {
        "numbers": ["x"],
        "categories": ["kind (3 levels)"],
        "dropped": ["id"],
        "target": ["label"],
    }
    text = invoke(
        "train", "--data", path, "--target", "label", "--drop", "id", "--epochs", "1", "--no-plots"
    ).stdout
    assert "kind (3 levels)" in text and "dropped" in text


@pytest.fixture
def holes(tmp_path):
    """40 rows, two of them with an empty cell: one number, one category."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(40):
        x = rng.normal() + (i % 2)
        number = "" if i == 5 else f"{x:.4f}"
        kind = "NA" if i == 9 else ["p", "q"][i % 2]
        lines.append(f"{number},{kind},{i % 2}")
    path = tmp_path / "holes.csv"
    path.write_text("x,kind,y\n" + "\n".join(lines) + "\n")
    return path


def test_missing_cells_are_refused_by_default_with_the_flags_that_handle_them(holes):
    result = invoke("train", "--data", holes, "--epochs", "1", "--no-plots")
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith("Error: --data: the data holds 2 missing cells in 2 of 40 rows")
    assert "(x: 1, kind: 1)" in line and "row 6, column 'x'" in line
    assert "--missing drop" in line and "--missing impute" in line


def test_missing_drop_leaves_the_rows_out_and_says_how_many(holes):
    report = train_json("--data", holes, "--missing", "drop", "--epochs", "1")
    split = report["split"]
    assert split["train"] + split["validation"] + split["test"] == 38
    assert report["notes"][0].startswith("2 missing cells in 2 of 40 rows (x: 1, kind: 1)")
    assert "those rows were dropped" in report["notes"][0]


def test_missing_impute_fills_with_training_means_and_predict_fills_the_same(holes, tmp_path):
    model = tmp_path / "m.safetensors"
    report = train_json("--data", holes, "--missing", "impute", "--epochs", "1", "--out", model)
    assert "each filled with its column's training mean" in report["notes"][0]
    prep = load_preprocessor(model)
    assert set(prep.fill) == {"x", "kind"} and prep.fill["kind"] in ("p", "q")
    new = tmp_path / "new.csv"
    new.write_text(f"x,kind\n,p\n{prep.fill['x']!r},p\n")
    out = invoke("predict", model, "--input", new, "--proba").stdout.splitlines()
    assert out[1] == out[2]  # the empty cell became the stored mean
    # a model trained without imputation refuses the same file and says why
    plain = tmp_path / "plain.safetensors"
    train_json("--data", holes, "--missing", "drop", "--epochs", "1", "--out", plain)
    refused = invoke("predict", plain, "--input", new)
    assert refused.exit_code == 2 and "--missing impute" in refused.output


def test_missing_must_be_a_known_strategy(holes):
    result = invoke("train", "--data", holes, "--missing", "mean")
    assert result.exit_code == 2
    assert "--missing must be one of refuse, drop, impute, got 'mean'" in result.output


def test_gzipped_files_and_an_explicit_separator_are_read(wine, tmp_path):
    gz = tmp_path / "wine.csv.gz"
    gz.write_bytes(gzip.compress(wine.read_bytes()))
    report = train_json("--data", gz, "--target", "class", "--epochs", "1")
    assert report["data"]["features"] == 13 and report["data"]["source"].startswith("csv file")
    piped = tmp_path / "wine.txt"
    piped.write_text(wine.read_text().replace(",", "|"))
    report = train_json("--data", piped, "--target", "class", "--sep", "|", "--epochs", "1")
    assert report["data"]["features"] == 13
    broken = tmp_path / "bad.gz"
    broken.write_bytes(b"not gzip at all")
    result = invoke("train", "--data", broken, "--epochs", "1")
    assert result.exit_code == 2 and "is not a readable gzip file" in result.output


def test_a_row_of_another_width_suggests_the_separator(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,y\n1;2;0\n")
    result = invoke("train", "--data", odd, "--target", "y", "--sep", ";")
    assert result.exit_code == 2
    assert "fields separated by ';'" in result.output
    assert "are its fields separated by ','? Say so with --sep" in result.output


def test_a_diverged_run_fails_with_the_cli_flags_that_fix_it(wine, tmp_path):
    model = tmp_path / "div.safetensors"
    result = invoke(
        "train",
        "--data",
        wine,
        "--target",
        "class",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--no-plots",
        "--out",
        model,
        "--quiet",
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # no RuntimeWarning with a source path
    assert lines[0].startswith("Error: training diverged: non-finite")
    assert (
        "Try a smaller --lr (it was 1e+06) or gradient clipping with --opt clip_norm=1" in lines[0]
    )
    assert "learning rate (lr)" not in lines[0]
    assert not model.exists()  # diverged in its first epoch: nothing worth keeping was saved


def test_an_unusually_large_learning_rate_is_pointed_out(wine):
    result = invoke(
        "train", "--data", wine, "--target", "class", "--lr", "5", "--epochs", "1", "--no-plots"
    )
    assert "note: --lr 5 is unusually large (Adam's usual is 0.001)" in result.output
    quiet = invoke(
        "train", "--data", wine, "--target", "class", "--lr", "0.5", "--epochs", "1", "--no-plots"
    )
    assert "unusually large" not in quiet.output


@pytest.mark.parametrize("patience", ["0", "100000"])
def test_ctrl_c_saves_the_best_model_so_far_and_says_where(wine, tmp_path, patience):
    model = tmp_path / "model.safetensors"
    command = [
        sys.executable,
        "-m",
        "deltaprop",
        "train",
        "--data",
        str(wine),
        "--target",
        "class",
        "--epochs",
        "100000",
        "--patience",
        patience,
        "--verbose",
        "2",
        "--no-plots",
        "--out",
        str(model),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while "epoch 3" not in seen.lower() and time.monotonic() < deadline:
            seen += process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    line = next(line for line in err.splitlines() if line.startswith("interrupted"))
    kept = "the model after epoch" if patience == "0" else "the best model so far (epoch "
    assert f"saved {kept}" in line and str(model) in line
    if patience != "0":
        assert ", val_loss " in line
    prep = load_preprocessor(model)
    assert prep is not None and len(prep.mean) == 13


def test_evaluate_finds_the_training_file_and_scores_its_test_rows(wine, tmp_path, monkeypatch):
    model = tmp_path / "runs" / "wine.safetensors"
    model.parent.mkdir()
    trained = train_json("--data", "wine.csv", "--target", "class", "--out", model)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # only the file's name was typed at training time
    result = invoke("evaluate", model, "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["split"] == "test" and scored["rows"] == trained["split"]["test"] == 45
    assert scored["accuracy"] == pytest.approx(trained["test"]["accuracy"])
    train_rows = json.loads(invoke("evaluate", model, "--split", "train", "--json").stdout)
    assert train_rows["rows"] == 178 - 45
    text = invoke("evaluate", model, "--split", "all").stdout
    assert "all rows (178)" in text and "include those the model was trained on" in text
    # moved beside the model: found there; gone: the error names --data
    wine.rename(model.parent / "wine.csv")
    assert json.loads(invoke("evaluate", model, "--json").stdout)["rows"] == 45
    (model.parent / "wine.csv").unlink()
    gone = invoke("evaluate", model)
    assert gone.exit_code == 2 and "which is no longer there" in gone.output
    assert "--data" in gone.output


def test_evaluate_another_file_scores_all_its_rows_and_refuses_a_split(wine, tmp_path):
    model = tmp_path / "m.safetensors"
    train_json("--data", wine, "--target", "class", "--epochs", "5", "--out", model)
    other = tmp_path / "other.csv"
    other.write_text(wine.read_text())
    scored = json.loads(invoke("evaluate", model, "--data", other, "--json").stdout)
    assert scored["split"] == "all" and scored["rows"] == 178
    refused = invoke("evaluate", model, "--data", other, "--split", "test")
    assert refused.exit_code == 2
    assert (
        "does not record how the test rows of" in refused.output and "--split all" in refused.output
    )


def test_evaluate_repeats_a_dropped_rows_split(holes, tmp_path):
    model = tmp_path / "m.safetensors"
    trained = train_json("--data", holes, "--missing", "drop", "--epochs", "2", "--out", model)
    scored = json.loads(invoke("evaluate", model, "--json").stdout)
    assert scored["rows"] == trained["split"]["test"] == 10
    assert scored["accuracy"] == pytest.approx(trained["test"]["accuracy"])


def test_a_regression_table_says_which_numbers_are_on_the_standardized_target(tmp_path):
    from sklearn.datasets import load_diabetes

    path = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    model = tmp_path / "m.safetensors"
    text = invoke(
        "train", "--data", path, "--target", "target", "--epochs", "3", "--no-plots", "--out", model
    ).stdout
    assert "last epoch loss (standardized target)" in text
    assert "last epoch mse (standardized target)" in text
    assert "test loss (standardized target)" in text and "test mse  " in text
    assert "loss (standardized target)" in invoke("evaluate", model).stdout


def test_a_bare_deltaprop_shows_the_help_and_the_quick_start(tmp_path):
    bare = subprocess.run(
        [sys.executable, "-c", "from deltaprop.cli import main; main()"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert bare.returncode == 0, bare.stderr
    assert "Commands:" in bare.stdout and "train" in bare.stdout
    assert bare.stdout.strip().endswith(
        "deltaprop train --data your.csv --target COLUMN trains on your file."
    )
    assert not (tmp_path / "deltaprop-runs").exists()  # nothing trained


def test_explain_a_model_uses_its_training_data_or_says_the_inputs_are_random(wine, tmp_path):
    model = tmp_path / "m.safetensors"
    train_json("--data", wine, "--target", "class", "--epochs", "2", "--out", model)
    result = runner.invoke(app, ["explain", "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert f"note: row 0 of {wine}'s test rows" in result.stderr
    wine.unlink()
    result = runner.invoke(app, ["explain", "--model", str(model)])
    assert "the inputs are random samples (standard normal)" in result.stderr


def test_a_batch_explain_writes_the_product_as_the_code_computes_it():
    text = invoke("explain", "--batch", "3").stdout
    assert "Z⁽¹⁾ = X W⁽¹⁾ᵀ + b⁽¹⁾" in text and "shapes: (3, 4) = (3, 3)·(3, 4) + (1, 4)" in text
    assert "Row n of Z⁽¹⁾ is sample n's z⁽¹⁾ = W⁽¹⁾ x + b⁽¹⁾" in text
    assert "A⁽¹⁾ = ReLU(Z⁽¹⁾)" in text
    single = invoke("explain").stdout
    assert "z⁽¹⁾ = W⁽¹⁾ x + b⁽¹⁾" in single and "shapes: (4, 1) = (4, 3)·(3, 1) + (4, 1)" in single
    assert "W⁽¹⁾ ← W⁽¹⁾ − η ∂L/∂W⁽¹⁾" in single  # the update the gradients are for
