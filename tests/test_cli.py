import os
import re

import pytest
from typer.testing import CliRunner

import deltaprop as dp
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


def test_an_unusable_save_path_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for target, message in [
        (blocker / "m.safetensors", "is not a directory"),
        (tmp_path / "missing" / "m.safetensors", "does not exist"),
        (tmp_path, "it is a directory"),
    ]:
        result = runner.invoke(app, ["train", "--epochs", "1", "--save", str(target)])
        assert result.exit_code == 2, result.output
        assert "Invalid value for --save" in result.output and message in result.output
        assert "epoch 1/1" not in result.output  # refused before any training


def test_a_save_that_fails_after_training_keeps_the_model_elsewhere(tmp_path, monkeypatch):
    import deltaprop.cli

    real_save = deltaprop.cli.save
    wanted = tmp_path / "m.safetensors"

    def flaky_save(model, path, **kwargs):
        if str(path) == str(wanted):
            raise OSError(28, "No space left on device")
        real_save(model, path, **kwargs)

    monkeypatch.setattr(deltaprop.cli, "save", flaky_save)
    result = runner.invoke(app, ["train", "--epochs", "2", "--save", str(wanted)])
    assert result.exit_code == 1
    line = [x for x in result.output.splitlines() if x.startswith("error:")]
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
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output
    assert "Traceback" not in result.output
