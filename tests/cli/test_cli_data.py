"""The command line on real data: train → evaluate → predict, data files, plots, bad input."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import deltaprop as dp
from conftest import CUDA
from deltaprop import datasets
from deltaprop.cli import app
from deltaprop.data.builtin import _FM_FILES
from deltaprop.data.tables import read_table

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_a_scratch_directory(tmp_path, monkeypatch):
    """Commands that write beside the working directory (deltaprop-runs/) write into tmp_path."""
    monkeypatch.chdir(tmp_path)


PNG = b"\x89PNG\r\n\x1a\n"
QUICK_FIT = ("--standardize", "--epochs", "60", "--lr", "0.01")
"""Enough training for the small sets of these tests to be learned well."""


def run(*args, code=0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


def run_json(*args):
    return json.loads(run(*args, "--json").stdout)


def one_line_error(*args):
    """Exit code 2 and exactly one plain line, no traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return result.output.strip()


@pytest.fixture
def flowers(tmp_path):
    """Iris as a CSV with string labels, a quoted header and the label column in the middle."""
    iris = datasets.iris()
    path = tmp_path / "flowers.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["sepal length", "sepal width", "species", "petal length", "petal width"])
        for x, k in zip(iris.X, iris.y, strict=True):
            writer.writerow([x[0], x[1], iris.class_names[k], x[2], x[3]])
    return path


def train_flowers(flowers, model, *options):
    """Train on the flowers CSV (target: species) into ``model``."""
    return run("train", "--data", flowers, "--target", "species", "--out", model, *options)


def is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 2000


# --- train ----------------------------------------------------------------------------------


def test_default_train_writes_model_and_plots_into_a_fresh_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", "--epochs", "3")
    run_dir = tmp_path / "deltaprop-runs" / "breast-cancer"
    for name in (
        "model.safetensors",
        "learning-curves.png",
        "diagnostics.png",
        "confusion-matrix.png",
    ):
        assert (run_dir / name).exists() and str(run_dir.relative_to(tmp_path) / name) in (
            result.output
        )
    assert "383 train, 43 validation, 143 test" in result.output
    assert "stratified by class, drawn with seed 0" in result.output
    for png in run_dir.glob("*.png"):
        assert is_png(png)
    run("train", "--epochs", "1")  # nothing is overwritten: a new directory
    assert (tmp_path / "deltaprop-runs" / "breast-cancer-2" / "model.safetensors").exists()


def test_train_json_reports_split_history_and_test_metrics(tmp_path):
    report = run_json(
        "train",
        "--data",
        "iris",
        "--epochs",
        "4",
        "--standardize",
        "--out",
        tmp_path / "m.safetensors",
        "--plots",
        tmp_path / "p",
    )
    assert report["data"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert (
        report["split"]["test"] == 38
        and report["split"]["train"] + report["split"]["validation"] == 112
    )
    assert report["epochs"] == 4 and len(report["history"]["val_accuracy"]) == 4
    test = report["test"]
    assert test["rows"] == 38 and 0 <= test["accuracy"] <= 1
    assert np.sum(test["confusion_matrix"]) == 38
    assert [c["class"] for c in test["classes"]] == ["setosa", "versicolor", "virginica"]
    assert report["model"]["layers"][0] == "Dense(4, 16, bias=True, dtype='float32')"
    assert sorted(p.rsplit("/", 1)[1] for p in report["plots"]) == [
        "confusion-matrix.png",  # no decision boundary: iris has 4 features
        "diagnostics.png",
        "learning-curves.png",
    ]


def test_two_dimensional_data_gets_a_decision_boundary(tmp_path):
    run(
        "train",
        "--data",
        "spirals",
        "--samples",
        "200",
        "--noise",
        "0.05",
        "--epochs",
        "2",
        "--hidden",
        "8,8",
        "--out",
        tmp_path / "s.safetensors",
        "--plots",
        tmp_path,
    )
    assert is_png(tmp_path / "decision-boundary.png")


def test_round_trip_train_predict_evaluate_on_a_csv_with_string_labels(flowers, tmp_path):
    model = tmp_path / "flowers.safetensors"
    train = json.loads(train_flowers(flowers, model, *QUICK_FIT, "--no-plots", "--json").stdout)
    assert train["data"]["task"] == "classification"
    assert train["test"]["accuracy"] >= 0.85
    new = tmp_path / "new.csv"  # other column order, no label column
    rows = [[0.2, 5.1, 3.5, 1.4], [2.3, 6.9, 3.1, 5.4], [1.3, 5.7, 2.8, 4.1]]
    new.write_text(
        "petal width,sepal length,sepal width,petal length\n"
        + "".join(",".join(map(str, r)) + "\n" for r in rows)
    )
    predicted = run("predict", model, "--input", new, "--proba").stdout
    lines = list(csv.reader(io.StringIO(predicted)))
    assert lines[0] == ["prediction", "p(setosa)", "p(versicolor)", "p(virginica)"]
    assert [line[0] for line in lines[1:]] == ["setosa", "virginica", "versicolor"]
    np.testing.assert_allclose([sum(map(float, line[1:])) for line in lines[1:]], 1, rtol=1e-5)
    # the same numbers from the library: load the model and its preprocessing
    net, loss = dp.load(model)
    prep = dp.load_preprocessor(model)
    X = prep.transform(read_table(new))
    probabilities = dp.predict(net, loss, X)
    np.testing.assert_allclose(
        [[float(v) for v in line[1:]] for line in lines[1:]], probabilities, rtol=1e-5
    )
    evaluated = run_json("evaluate", model, "--data", flowers)  # the training file: its test rows
    assert evaluated["split"] == "test" and evaluated["rows"] == 38
    assert evaluated["accuracy"] >= 0.85
    everything = run_json("evaluate", model, "--data", flowers, "--split", "all")
    assert everything["split"] == "all" and everything["rows"] == 150


def test_evaluate_a_builtin_set_scores_the_test_rows_of_training(tmp_path):
    model = tmp_path / "wine.safetensors"
    train = run_json(
        "train",
        "--data",
        "wine",
        "--epochs",
        "5",
        "--test-size",
        "0.3",
        "--seed",
        "3",
        "--out",
        model,
        "--no-plots",
    )
    evaluated = run_json("evaluate", model)  # the data and its split come from the file
    assert evaluated["data"] == "wine" and evaluated["rows"] == train["split"]["test"] == 54
    assert evaluated["accuracy"] == pytest.approx(train["test"]["accuracy"])
    table = run("evaluate", model, "--plots", tmp_path).output
    assert "confusion matrix (rows: true class" in table and "class_0" in table
    assert is_png(tmp_path / "confusion-matrix.png")
    assert run_json("evaluate", model, "--split", "all")["rows"] == 178


def test_regression_from_a_csv_reports_in_the_targets_units(tmp_path):
    rng = np.random.default_rng(0)
    area = rng.uniform(30, 200, 200)
    price = 3000 * area + rng.normal(0, 5000, 200)
    path = tmp_path / "houses.csv"
    path.write_text(
        "area,price\n" + "".join(f"{a:.2f},{p:.0f}\n" for a, p in zip(area, price, strict=True))
    )
    model = tmp_path / "h.safetensors"
    report = run_json(
        "train",
        "--data",
        path,
        "--target",
        "price",
        "--task",
        "regression",
        *QUICK_FIT,
        "--out",
        model,
        "--plots",
        tmp_path,
    )
    assert report["data"]["task"] == "regression" and report["test"]["r2"] > 0.95
    assert 4000 < report["test"]["rmse"] < 60000  # in price units, not standardized ones
    assert is_png(tmp_path / "predicted-vs-true.png")
    predicted = run("predict", model, "--input", path).stdout.splitlines()
    values = np.array([float(v) for v in predicted[1:]])
    assert predicted[0] == "prediction" and abs(values.mean() - price.mean()) < 0.1 * price.mean()


def test_parquet_and_npz_files_train(tmp_path):
    X, y = datasets.moons(n=120)
    npz = tmp_path / "m.npz"
    np.savez(npz, X=X, y=y)
    report = run_json(
        "train", "--data", npz, "--epochs", "2", "--out", tmp_path / "a", "--no-plots"
    )
    assert report["data"]["features"] == 2 and report["data"]["classes"] == [0, 1]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(
        pa.table({"x1": X[:, 0], "x2": X[:, 1], "label": ["a", "b"] * 60}), tmp_path / "m.parquet"
    )
    report = run_json(
        "train",
        "--data",
        tmp_path / "m.parquet",
        "--target",
        "label",
        "--epochs",
        "2",
        "--out",
        tmp_path / "b",
        "--no-plots",
    )
    assert report["data"]["classes"] == ["a", "b"]


def test_categorical_columns_are_one_hot_encoded_and_stored(tmp_path):
    rng = np.random.default_rng(1)
    colours = rng.choice(["red", "green", "blue"], 120)
    path = tmp_path / "c.csv"
    path.write_text(
        "colour,size,label\n"
        + "".join(
            f"{c},{s:.2f},{int(c == 'red')}\n"
            for c, s in zip(colours, rng.normal(size=120), strict=True)
        )
    )
    model = tmp_path / "c.safetensors"
    run(
        "train",
        "--data",
        path,
        "--target",
        "label",
        "--epochs",
        "30",
        "--out",
        model,
        "--no-plots",
        "--quiet",
    )
    info = run_json("info", model)
    assert info["preprocessing"]["categories"] == {"colour": ["blue", "green", "red"]}
    assert info["architecture"]["layers"][0]["in_features"] == 4


# --- the other commands ---------------------------------------------------------------------


def test_datasets_lists_every_builtin_set():
    rows = {row["name"]: row for row in run_json("datasets")}
    assert set(rows) == set(datasets.LOADERS)
    assert rows["iris"]["rows"] == 150 and rows["iris"]["classes"] == 3
    assert rows["diabetes"]["task"] == "regression" and rows["diabetes"]["classes"] is None
    assert "spirals" in run("datasets").output


def test_gradcheck_takes_widths_activation_and_loss():
    report = run_json(
        "gradcheck", "--hidden", "8,8", "--activation", "tanh", "--loss", "softmax-ce"
    )
    assert report["ok"] and report["worst"] < 1e-6
    assert set(report["errors"]) == {
        "0.W",
        "0.b",
        "2.W",
        "2.b",
        "4.W",
        "4.b",
        "input",
    }
    assert "Dense(8, 3" in report["subject"]


def test_gradcheck_a_saved_model(tmp_path):
    model = tmp_path / "m.safetensors"
    run("train", "--data", "iris", "--epochs", "1", "--out", model, "--no-plots", "-q")
    assert run_json("gradcheck", "--model", model)["ok"]


# --- bad input: exit code 2, one line -------------------------------------------------------


@pytest.fixture
def bad_files(tmp_path, flowers):
    (tmp_path / "nan.csv").write_text("a,b,y\n1,2,0\n,3,1\n4,NaN,0\n5,6,1\n")
    (tmp_path / "ids.csv").write_text("name,y\n" + "".join(f"n{i},{i % 2}\n" for i in range(30)))
    fm = tmp_path / "fm"
    fm.mkdir()
    for name in _FM_FILES:
        (fm / name).write_bytes(b"\x1f\x8b garbage")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--data", "mnist"],
            "unknown data set 'mnist'; known: blobs, breast-cancer, circles",
        ),
        (["train", "--data", "{tmp}/nope.csv"], "no such file"),
        (
            ["train", "--data", "{flowers}", "--target", "kind"],
            "has no column 'kind'; the columns "
            "are ['sepal length', 'sepal width', 'species', 'petal length', 'petal width']",
        ),
        (["train", "--data", "{flowers}"], "name the target column with --target"),
        (["train", "--data", "{tmp}/ids.csv"], "column 'name' holds text with 30 distinct values"),
        (
            ["train", "--data", "{tmp}/nan.csv"],
            "--data: the data holds 2 missing cells in 2 of 4 rows (a: 1, b: 1); the first in "
            "row 2, column 'a'. --missing drop",
        ),
        (["train", "--data", "fashion-mnist", "--data-dir", "{tmp}/fm"], "truncated or corrupt"),
        (["train", "--data", "iris", "--samples", "50"], "--samples does not apply to data set"),
        (["train", "--dtype", "float16"], "--dtype must be float32 or float64, got 'float16'"),
        (["train", "--device", "tpu"], "--device: device must be 'cpu', 'cuda' or 'cuda:N'"),
        (["train", "--test-size", "1.5"], "--test-size must be in (0, 1), got 1.5"),
        (["train", "--schedule", "sometimes"], "unknown schedule 'sometimes'"),
        (["train", "--opt", "momentum"], "--opt: expected NAME=VALUE"),
        (["train", "--opt", "gamma=2"], "Adam takes no ['gamma']"),
        (
            ["train", "--data", "diabetes", "--loss", "bce"],
            "is a classification loss, but the task is regression",
        ),
        (["evaluate", "{tmp}/corrupt.safetensors"], "corrupt.safetensors"),
        (["evaluate", "{tmp}/missing.safetensors"], "no such model file"),
        (["predict", "{tmp}/missing.safetensors", "--input", "{flowers}"], "no such model file"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(bad_files, flowers, args, message):
    filled = [a.format(tmp=bad_files, flowers=flowers) for a in args]
    line = (
        one_line_error(*filled, "--epochs", "1") if args[0] == "train" else one_line_error(*filled)
    )
    assert message in line


def test_a_model_whose_columns_differ_from_the_data_is_refused(flowers, tmp_path):
    model = tmp_path / "m.safetensors"
    run(
        "train",
        "--data",
        flowers,
        "--target",
        "species",
        "--epochs",
        "1",
        "--out",
        model,
        "--no-plots",
        "-q",
    )
    other = tmp_path / "other.csv"
    other.write_text("sepal length,sepal width\n1,2\n")
    line = one_line_error("predict", model, "--input", other)
    assert "the model reads 4 columns, and the data lacks 2 of them" in line
    digits = tmp_path / "d.safetensors"
    run("train", "--data", "digits", "--epochs", "1", "--out", digits, "--no-plots", "-q")
    assert "lacks 64 of them" in one_line_error("evaluate", digits, "--data", "iris")


def test_nothing_passed_is_overwritten_without_force(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"precious")
    line = one_line_error("train", "--epochs", "1", "--out", model)
    assert "exists; pass --force to overwrite it" in line and model.read_bytes() == b"precious"
    run("train", "--epochs", "1", "--out", model, "--force", "--no-plots", "-q")
    assert dp.load(model)[0].input_features() == 30
    out = tmp_path / "p.csv"
    out.write_text("keep")
    assert "exists" in one_line_error("predict", model, "--input", model, "--output", out)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "learning-curves.png").write_bytes(b"mine")
    line = one_line_error(
        "train", "--epochs", "1", "--out", tmp_path / "n.safetensors", "--plots", tmp_path / "plots"
    )
    assert "learning-curves.png' exists" in line


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "train", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and isinstance(result.exception, FileNotFoundError)


@pytest.mark.slow
def test_debug_may_stand_anywhere_on_the_command_line(tmp_path):
    command = [sys.executable, "-m", "deltaprop", "train", "--data", str(tmp_path / "x.csv")]
    plain = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode == 2 and plain.stderr.startswith("Error: --data: no such file")
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


# --- Fashion-MNIST end to end ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(), reason="Debian's dataset-fashion-mnist not installed"
)
def test_fashion_mnist_reaches_0885_with_two_hidden_layers_in_ten_epochs(tmp_path):
    model = tmp_path / "fm.safetensors"
    report = run_json(
        "train",
        "--data",
        "fashion-mnist",
        "--hidden",
        "256,128",
        "--epochs",
        "10",
        "--out",
        model,
        "--plots",
        tmp_path,
    )
    assert report["split"]["test_from"] == "fashion-mnist's own test split"
    assert report["test"]["accuracy"] >= 0.885
    evaluated = run_json("evaluate", model, "--data", "fashion-mnist")
    assert evaluated["rows"] == 10000
    assert evaluated["accuracy"] == pytest.approx(report["test"]["accuracy"])
    assert evaluated["classes"][9]["class"] == "Ankle boot"


def test_every_command_and_option_has_help():
    import typer.main

    command = typer.main.get_command(app)
    missing = [
        f"{name} {param.name}"
        for name, sub in command.commands.items()
        for param in sub.params
        if not getattr(param, "help", None)
    ]
    assert not missing
    assert all(sub.help for sub in command.commands.values())
    assert "--install-completion" in run("--help").output


def test_explain_a_trained_model_on_a_row_of_its_data(flowers, tmp_path):
    model = tmp_path / "m.safetensors"
    train_flowers(flowers, model, "--standardize", "--epochs", "2", "--no-plots", "-q")
    result = run("explain", "--model", model, "--data", flowers, "--index", "3", "--format", "json")
    document = json.loads(result.stdout)
    assert document["ok"]


def test_a_failed_run_leaves_no_directories_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error("train", "--data", "nope.csv")
    one_line_error("train", "--data", "iris", "--plots", tmp_path / "a" / "b", "--opt", "x=1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_train_on_cuda_without_a_gpu_says_what_to_install():
    line = one_line_error("train", "--device", "cuda", "--epochs", "1")
    assert "--device: device='cuda' needs CuPy" in line or "no usable CUDA device" in line
    assert "pip install 'deltaprop[cuda12]'" in line


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_train_on_cuda_reports_the_device():
    document = run_json("train", "--device", "cuda", "--epochs", "2", "--no-plots")
    assert document["model"]["device"].startswith("cuda:")
    assert document["test"]["accuracy"] > 0.9


def test_predict_reads_standard_input_and_writes_standard_output_for_a_dash(flowers, tmp_path):
    model = tmp_path / "flowers.safetensors"
    train_flowers(flowers, model, "--epochs", "3", "--no-plots", "--quiet")
    rows = "sepal length,sepal width,petal length,petal width\n5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.3\n"
    new = tmp_path / "new.csv"
    new.write_text(rows)
    from_file = run("predict", model, "--input", new).stdout
    result = runner.invoke(
        app, ["predict", str(model), "--input", "-", "--output", "-"], input=rows
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == from_file and len(from_file.splitlines()) == 3
    assert not (Path.cwd() / "-").exists()


def test_a_seed_beyond_what_the_split_takes_names_the_seed():
    result = one_line_error("train", "--data", "xor", "--seed", str(2**32))
    assert "--seed" in result and "--test-size" not in result


def test_predict_appends_to_the_input_rows_notes_extra_columns_and_refuses_proba_for_values(
    flowers, tmp_path
):
    model = tmp_path / "flowers.safetensors"
    train_flowers(flowers, model, "--epochs", "3", "--no-plots", "--quiet")
    new = tmp_path / "new.csv"
    new.write_text(
        "id,petal width,sepal length,sepal width,petal length\n"
        "a7,0.2,5.1,3.5,1.4\nb8,2.3,6.9,3.1,5.4\n"
    )
    plain = list(csv.reader(io.StringIO(run("predict", model, "--input", new, "--proba").stdout)))
    result = runner.invoke(app, ["predict", str(model), "--input", str(new), "--append", "--proba"])
    assert result.exit_code == 0, result.output
    assert "Note: columns the model does not read: 'id'" in result.stderr
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert lines[0] == [
        "id",
        "petal width",
        "sepal length",
        "sepal width",
        "petal length",
        *plain[0],
    ]
    assert lines[1] == ["a7", "0.2", "5.1", "3.5", "1.4", *plain[1]]
    assert lines[2][:5] == ["b8", "2.3", "6.9", "3.1", "5.4"] and lines[2][5:] == plain[2]
    regression = tmp_path / "values.safetensors"
    run(
        "train", "--data", "diabetes", "--epochs", "1", "--no-plots", "--quiet", "--out", regression
    )
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    error = one_line_error("predict", regression, "--input", rows, "--proba")
    assert error == (
        "Error: --proba: the model is a regression model; it predicts values, not probabilities"
    )


def test_info_lists_the_input_columns(flowers, tmp_path):
    model = tmp_path / "flowers.safetensors"
    train_flowers(flowers, model, "--epochs", "1", "--no-plots", "--quiet")
    shown = run("info", model).stdout
    assert (
        "  input columns (4): 'sepal length', 'sepal width', 'petal length', 'petal width'\n"
        in shown
    )
    assert "  features: 4\n" in shown


def test_predicted_values_carry_the_digits_the_model_computes(tmp_path):
    model = tmp_path / "values.safetensors"
    run("train", "--data", "diabetes", "--epochs", "1", "--no-plots", "--quiet", "--out", model)
    rows = tmp_path / "rows.csv"
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    rows.write_text(",".join(names) + "\n" + ",".join(["0.01"] * 10) + "\n")
    value = run("predict", model, "--input", rows).stdout.splitlines()[1]
    digits = value.replace("-", "").replace(".", "").lstrip("0").split("e")[0]
    assert 1 <= len(digits) <= 7, value  # float32: 7 significant digits, not 17
    net, loss = dp.load(model)
    prep = dp.load_preprocessor(model)
    expected = prep.decode(dp.predict(net, loss, prep.transform(read_table(rows)))[:, 0])[0]
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_an_integer_identifier_column_is_pointed_out(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "ids.csv"
    x = rng.standard_normal(60)
    path.write_text(
        "id,x,y\n" + "".join(f"{1000 + i},{v:.3f},{int(v > 0)}\n" for i, v in enumerate(x))
    )
    report = run_json(
        "train",
        "--data",
        path,
        "--target",
        "y",
        "--epochs",
        "1",
        "--no-plots",
        "--out",
        tmp_path / "m.safetensors",
    )
    assert report["notes"][:1] == [
        "column 'id' holds a different whole number in every row: it looks like an identifier "
        "and was used as a feature (--drop 'id' leaves it out)"
    ]
    dropped = run_json(
        "train",
        "--data",
        path,
        "--target",
        "y",
        "--drop",
        "id",
        "--epochs",
        "1",
        "--no-plots",
        "--out",
        tmp_path / "n.safetensors",
    )
    assert not any("identifier" in note for note in dropped["notes"])
    assert dropped["data"]["features"] == 1 and dropped["columns"]["dropped"] == ["id"]
