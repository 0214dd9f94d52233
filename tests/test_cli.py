import re

import pytest
from typer.testing import CliRunner

from deltaprop.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_train_saves_and_info_reads(tmp_path):
    path = tmp_path / "bc.safetensors"
    result = runner.invoke(app, ["train", "--epochs", "15", "--save", str(path)])
    assert result.exit_code == 0, result.output
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", result.output).group(1))
    assert accuracy >= 0.9
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0 and "SigmoidBinaryCrossEntropy" in info.output


def test_info_on_a_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1 and "is empty" in result.output


def test_gradcheck_command():
    result = runner.invoke(app, ["gradcheck"])
    assert result.exit_code == 0 and "all gradients agree" in result.output


def test_bad_options_name_the_value():
    result = runner.invoke(app, ["train", "--dataset", "mnist"])
    assert result.exit_code != 0 and "unknown data set 'mnist'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0"], "Adam: lr must be > 0, got 0.0"),
        (["--lr", "inf"], "Adam: lr must be > 0, got inf"),
        (["--lr", "-1e-3"], "Adam: lr must be > 0, got -0.001"),
        (["--hidden", "0"], "expected comma-separated positive integers"),
        (["--hidden", ""], "expected comma-separated positive integers (such as 64,32), got ''"),
        (["--hidden", "16,x"], "got '16,x'"),
        (
            ["--seed", "-1"],
            "Invalid value for '--seed': Input should be greater than or equal to 0",
        ),
        (["--optimizer", "adamax"], "unknown optimizer 'adamax'; known: Adagrad, Adam"),
    ],
)
def test_invalid_values_are_usage_errors_in_one_line(args, message):
    result = runner.invoke(app, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_names_are_looked_up_in_the_registry_forgiving_case():
    result = runner.invoke(
        app, ["train", "--dataset", "two-moons", "--optimizer", "adamw", "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "two-moons: 750 training and 250 test samples" in result.output
