"""The TensorBoard callback: event files that TensorBoard reads, holding each epoch's logs."""

import struct

import numpy as np
import pytest

import deltaprop as dp

tensorboardX = pytest.importorskip("tensorboardX")


def read_events(directory):
    """Every scalar and histogram in a directory's event files: {tag: [(step, value), ...]},
    read as TensorBoard reads them (TFRecord framing, then the Event protocol buffer)."""
    from tensorboardX.proto import event_pb2

    found = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                shown = value.simple_value if kind == "simple_value" else value.histo
                found.setdefault(value.tag, []).append((event.step, shown))
    return found


def test_epoch_logs_and_histograms_are_written_as_keras_writes_them(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 3)), (rng.standard_normal(60) > 0).astype(int)
    net = dp.mlp([3, 4, 2], rng=0)
    board = dp.TensorBoard(tmp_path / "logs", histogram_freq=2)
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.01),
        X,
        y,
        epochs=4,
        rng=1,
        validation_split=0.2,
        callbacks=[board],
        verbose=0,
    )
    train = read_events(tmp_path / "logs" / "train")
    validation = read_events(tmp_path / "logs" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(
        [v for _, v in validation["epoch_accuracy"]], history["val_accuracy"], rtol=1e-6
    )
    assert "epoch_lr" in train and "epoch_val_loss" not in train
    weights = train["0.W"]
    assert [step for step, _ in weights] == [2, 4]  # every histogram_freq epochs
    assert weights[-1][1].num == net[0].W.value.size
    assert weights[-1][1].max == pytest.approx(float(net[0].W.value.max()), rel=1e-6)
    assert "0.W/gradient" in train


def test_histogram_freq_is_checked():
    with pytest.raises(ValueError, match="TensorBoard: histogram_freq must be >= 0, got -1"):
        dp.TensorBoard("logs", histogram_freq=-1)


def test_the_command_line_writes_them_with_tensorboard(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from deltaprop.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            "iris",
            "--epochs",
            "3",
            "--no-plots",
            "--quiet",
            "--tensorboard",
            str(tmp_path / "tb"),
        ],
    )
    assert result.exit_code == 0, result.output
    steps = [step for step, _ in read_events(tmp_path / "tb" / "validation")["epoch_loss"]]
    assert steps == [1, 2, 3]
