import json
import os
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import deltaprop as dp
from deltaprop.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_a_scratch_directory(tmp_path, monkeypatch):
    """Commands that write beside the working directory (deltaprop-runs/) write into tmp_path."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
def test_train_saves_and_info_reads(tmp_path):
    path = tmp_path / "bc.safetensors"
    result = runner.invoke(app, ["train", "--epochs", "15", "--save", str(path)])
    assert result.exit_code == 0, result.output
    accuracy = float(re.search(r"test accuracy\s*│\s*(\d\.\d+)", result.output).group(1))
    assert accuracy >= 0.9
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0 and "SigmoidBinaryCrossEntropy" in info.output
    assert "classes: malignant, benign" in info.output


def test_info_on_a_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 2 and "is empty" in result.output


def test_gradcheck_command():
    result = runner.invoke(app, ["gradcheck"])
    assert result.exit_code == 0 and "all gradients agree" in result.output


def test_bad_options_name_the_value():
    result = runner.invoke(app, ["train", "--dataset", "mnist"])
    assert result.exit_code == 2 and "unknown data set 'mnist'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0"], "--lr must be > 0, got 0.0"),
        (["--lr", "inf"], "--lr must be > 0, got inf"),
        (["--lr", "-1e-3"], "--lr must be > 0, got -0.001"),
        (["--hidden", "0"], "--hidden: expected comma-separated positive integers"),
        (["--hidden", ""], "expected comma-separated positive integers (such as 64,32), got ''"),
        (["--hidden", "16,x"], "got '16,x'"),
        (
            ["--seed", "-1"],
            "Invalid value for '--seed': Input should be greater than or equal to 0",
        ),
        (["--optimizer", "adamax"], "unknown optimizer 'adamax'; known: Adagrad, Adam"),
        (
            ["--threads", "0"],
            "Invalid value for '--threads': Input should be greater than or equal to 1",
        ),
    ],
)
def test_invalid_values_are_usage_errors_in_one_line(args, message):
    result = runner.invoke(app, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_threads_fixes_the_compiled_epochs_thread_count(tmp_path, monkeypatch):
    import deltaprop.cli.train as train_command

    asked = []

    def fit(*args, **options):
        asked.append(options["n_threads"])
        return dp.fit(*args, **options)

    monkeypatch.setattr(train_command, "fit", fit)
    args = ["train", "--dataset", "two-moons", "--epochs", "1", "--json", "--out"]
    assert (
        runner.invoke(app, [*args, str(tmp_path / "a.safetensors"), "--threads", "1"]).exit_code
        == 0
    )
    assert runner.invoke(app, [*args, str(tmp_path / "b.safetensors")]).exit_code == 0
    assert asked == [1, None]  # None: fit chooses by the load
    a, b = dp.load(tmp_path / "a.safetensors")[0], dp.load(tmp_path / "b.safetensors")[0]
    np.testing.assert_array_equal(a.flat_values, b.flat_values)


def test_names_are_looked_up_in_the_registry_forgiving_case(tmp_path):
    args = ["train", "--dataset", "two-moons", "--optimizer", "adamw", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--json", "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["data"]["name"] == "moons" and report["model"]["optimizer"].startswith("AdamW")
    assert report["split"] == {
        "train": 270,
        "validation": 30,
        "test": 100,
        "test_from": "25% of the rows, stratified by class, drawn with seed 0",
    }


def test_an_unusable_save_path_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for target, message in [
        (blocker / "m.safetensors", "is not a directory"),
        (tmp_path / "missing" / "m.safetensors", "does not exist"),
        (tmp_path, "it is a directory"),
    ]:
        result = runner.invoke(
            app, ["train", "--epochs", "1", "--verbose", "2", "--save", str(target)]
        )
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error: --out: ") and message in result.output
        assert "epoch 1/1" not in result.output  # refused before any training


def test_a_save_that_fails_after_training_keeps_the_model_elsewhere(tmp_path, monkeypatch):
    import deltaprop.cli.report

    real_save = deltaprop.cli.report.save
    wanted = tmp_path / "m.safetensors"

    def flaky_save(model, path, **kwargs):
        if str(path) == str(wanted):
            raise OSError(28, "No space left on device")
        real_save(model, path, **kwargs)

    monkeypatch.setattr(deltaprop.cli.report, "save", flaky_save)
    result = runner.invoke(app, ["train", "--epochs", "2", "--save", str(wanted)])
    assert result.exit_code == 1
    line = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert len(line) == 1 and "No space left on device" in line[0]
    kept = re.search(r"it was saved to '([^']+)' instead", line[0]).group(1)
    assert dp.load(kept)[0].input_features() == 30
    os.unlink(kept)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: os.mkfifo(p), "is not a regular file"),
        (lambda p: p.write_bytes(b"\x80\x04\x95" + bytes(40)), "is a Python pickle"),
        (lambda p: None, "no such model file"),
    ],
)
def test_info_on_anything_but_a_model_file_is_one_line(tmp_path, make, message):
    path = tmp_path / "x.safetensors"
    make(path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and message in result.output
    assert "Traceback" not in result.output


# --- explain ---------------------------------------------------------------------------------


def test_explain_replays_the_seed_and_checks_every_gradient():
    result = runner.invoke(app, ["explain"])
    assert result.exit_code == 0, result.output
    for title in (
        "Step 1: Gradient at output (layer 2 error)",
        "Step 3: Propagate gradient to hidden layer 1",
        "Step 4: Gradient through activation (ReLU)",
        "The general rule",
    ):
        assert title in result.output
    assert result.output.count("✓ relative error") == 11


def test_explain_the_neuron_prints_a_minus_y_times_x():
    result = runner.invoke(app, ["explain", "--neuron", "--seed", "3"])
    assert result.exit_code == 0, result.output
    values = dict(re.findall(r"^  (\S+(?: \S+)*) = (-?[\d.e-]+)$", result.output, re.M))
    a, y, x = float(values["a"]), float(values["y"]), float(values["x"])
    assert float(values["∂L/∂w (the engine's)"]) == pytest.approx((a - y) * x, rel=1e-3)
    assert "∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w" in result.output


def test_explain_a_model_file_on_a_data_set_row(tmp_path):
    X, _, y, _ = dp.datasets.digits().train_test_split()
    model = dp.mlp([64, 16, 10], rng=np.random.default_rng(0))
    path = tmp_path / "digits.safetensors"
    dp.save(model, path, loss=dp.SoftmaxCrossEntropy())
    result = runner.invoke(
        app, ["explain", "--model", str(path), "--data", "digits", "--index", "17"]
    )
    assert result.exit_code == 0, result.output
    assert "Dense(64, 16, bias=True, dtype='float32')" in result.output
    assert "W⁽¹⁾: shape (16, 64), norm" in result.output  # summarized, not printed whole
    _, X_test, _, y_test = dp.datasets.digits().train_test_split()
    label = int(y_test[17])
    y_line = re.search(r"^  y = \[(.*)\]ᵀ$", result.output, re.M).group(1)
    assert [float(v) for v in y_line.split(", ")].index(1.0) == label


def test_explain_exits_1_when_a_gradient_disagrees(tmp_path):
    class BrokenDense(dp.Dense):
        def backward(self, grad_out):
            return super().backward(grad_out) * 2.0

    dp.registry.LAYERS.register(BrokenDense)
    rng = np.random.default_rng(0)
    model = dp.Sequential(
        dp.Dense(3, 4, rng=rng),
        dp.Tanh(),
        BrokenDense(4, 2, rng=rng),
        dp.Tanh(),
        dp.Dense(2, 1, rng=rng),
    )
    path = tmp_path / "broken.safetensors"
    dp.save(model, path, loss=dp.SigmoidBinaryCrossEntropy())
    result = runner.invoke(app, ["explain", "--model", str(path)])
    assert result.exit_code == 1, result.output
    assert "✗ relative error" in result.output and "DISAGREE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "3,0,1"], "expected comma-separated positive integers"),
        (["--layers", "3"], "--layers needs an input and an output width"),
        (["--activation", "relu6"], "unknown activation 'relu6'; known: gelu, identity"),
        (["--loss", "hinge"], "unknown loss 'hinge'; known: MeanSquaredError (mse"),
        (["--format", "html"], "--format must be text, md or json, got 'html'"),
        (["--batch", "0"], "Invalid value for '--batch'"),
        (["--data", "digits"], "--data needs --model"),
        (["--model", "missing.safetensors"], "no such model file: 'missing.safetensors'"),
    ],
)
def test_explain_refuses_bad_options_in_one_line(args, message):
    result = runner.invoke(app, ["explain", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines


def test_explain_refuses_a_data_set_of_another_width_or_an_index_out_of_range(tmp_path):
    path = tmp_path / "m.safetensors"
    dp.save(dp.mlp([64, 4, 10], rng=np.random.default_rng(0)), path, loss=dp.SoftmaxCrossEntropy())
    for args, message in [
        (["--data", "breast-cancer"], "the model takes 64 features, but breast-cancer has 30"),
        (["--data", "digits", "--index", "450"], "--index 450 with --batch 1 is out of range"),
        (["--data", "nope"], "unknown data set 'nope'"),
    ]:
        result = runner.invoke(app, ["explain", "--model", str(path), *args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    clf = dp.MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs").fit(np.eye(4), [0, 1, 0, 1])
    dp.save(clf, tmp_path / "clf.safetensors")
    result = runner.invoke(app, ["explain", "--model", str(tmp_path / "clf.safetensors")])
    assert result.exit_code == 2 and "holds a MLPClassifier; --model takes a model file" in (
        result.output
    )


def test_explain_colours_titles_and_checks_in_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    import deltaprop.cli.explain as cli

    screen = io.StringIO()
    monkeypatch.setattr(
        cli, "Console", lambda **kw: Console(file=screen, force_terminal=True, width=120, **kw)
    )
    result = runner.invoke(app, ["explain"])
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "\x1b[1mStep 1: Gradient at output (layer 2 error)" in shown  # bold title
    assert "\x1b[1mNetwork" not in shown  # the summary is not a heading
    assert "\x1b[32m      ✓ relative error" in shown  # a green check
    assert re.sub(r"\x1b\[[0-9;]*m", "", shown).count("✓ relative error") == 11


def test_gradcheck_of_a_large_network_checks_a_sample(monkeypatch):
    import deltaprop.cli.explain as cli_explain

    calls = []
    real = cli_explain.gradcheck.check_model
    monkeypatch.setattr(
        cli_explain.gradcheck,
        "check_model",
        lambda *args, **kwargs: calls.append(kwargs["sample"]) or real(*args, **kwargs),
    )
    monkeypatch.setattr(cli_explain.gradcheck, "LARGE_CHECK", 100)  # 3-40-1: 201 parameters
    assert runner.invoke(app, ["gradcheck", "--hidden", "40"]).exit_code == 0
    assert runner.invoke(app, ["gradcheck", "--hidden", "40", "--sample", "7"]).exit_code == 0
    assert runner.invoke(app, ["gradcheck", "--hidden", "4"]).exit_code == 0
    assert calls == [cli_explain.DEFAULT_SAMPLE, 7, None]


def test_a_model_without_a_fixed_input_width_is_one_line(tmp_path):
    path = tmp_path / "relu.safetensors"
    dp.save(dp.Sequential(dp.ReLU()), path, loss=dp.MeanSquaredError())
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3,4\n")
    for args in (
        ["evaluate", str(path), "--data", str(rows)],
        ["predict", str(path), "--input", str(rows)],
        ["gradcheck", "--model", str(path)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert result.output.startswith("Error: the model's network has no layer of fixed input")
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--hidden", "200000,200000"], r"--hidden 200000,200000 would take 640\.1 GB"),
        (["train", "--data", "moons", "--samples", "10000000000000"], "--samples 10000000000000"),
        (["explain", "--layers", "3,200000,200000,1"], r"--layers 3,200000,200000,1 on --batch 1"),
        (["gradcheck", "--batch", "100000000000"], r"checking widths \[3, 4, 1\] on --batch"),
    ],
)
def test_sizes_beyond_memory_are_one_line_before_anything_is_allocated(args, message, monkeypatch):
    monkeypatch.setattr("deltaprop.cli.shared.available_memory", lambda: 24_000_000_000)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert re.match(rf"Error: {message}.* of memory; 24\.0 GB are available\n$", result.output)


def test_running_out_of_memory_anyway_is_one_line(monkeypatch):
    import deltaprop.cli.train as cli_train

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cli_train, "fit", no_memory)
    result = runner.invoke(app, ["train", "--data", "xor", "--epochs", "1", "--no-plots"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: out of memory: the data or the network asked for")
    assert "Traceback" not in result.output


def test_version_and_an_example_in_every_commands_help():
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output == f"deltaprop {dp.__version__}\n"
    for command in (
        "train",
        "evaluate",
        "predict",
        "info",
        "datasets",
        "gradcheck",
        "explain",
        "playground",
    ):
        shown = runner.invoke(app, [command, "--help"])
        assert shown.exit_code == 0
        assert f"Example: deltaprop {command} " in shown.output, command
