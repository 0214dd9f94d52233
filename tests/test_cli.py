import re

from typer.testing import CliRunner

from deltaprop.cli import app

runner = CliRunner()


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
