"""Callbacks: stopping, the learning rate, checkpoints and logs, and a look inside."""

import csv
import math

import numpy as np
import pytest

import deltaprop as dp
from support import classification_data as _data
from support import train_small as _train


def test_early_stopping_restores_best_weights_and_says_why():
    rng = np.random.default_rng(0)
    X, y = _data(rng, n=100)
    y = rng.integers(0, 3, 100)  # noise labels: validation loss gets worse as the net memorizes
    net = dp.mlp([5, 64, 3], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    stopper = dp.EarlyStopping(patience=2, restore_best_weights=True)
    saved = {}

    class Snapshot(dp.Callback):
        def on_epoch_end(self, run, epoch, logs):
            saved[epoch] = run.model.flat_values.copy()

    history = dp.fit(
        net,
        loss,
        dp.Adam(net.parameters(), lr=0.02),
        X,
        y,
        epochs=50,
        batch_size=10,
        rng=rng,
        validation_split=0.3,
        verbose=0,
        callbacks=[stopper, Snapshot()],
    )
    best = int(np.argmin(history["val_loss"]))
    assert history.n_epochs == best + 3 < 50
    assert "did not improve" in history.stop_reason and f"epoch {best + 1}" in history.stop_reason
    np.testing.assert_array_equal(net.flat_values, saved[best])


def test_restore_best_weights_also_when_training_runs_to_the_end():
    net, history = _train(
        0,
        epochs=5,
        validation_split=0.2,
        callbacks=[dp.EarlyStopping(patience=10, restore_best_weights=True)],
    )
    assert history.n_epochs == 5 and "restored the weights" in history.stop_reason


def test_terminate_on_nan_checks_epoch_metrics():
    run = type("Run", (), {"stop": lambda self, reason: setattr(self, "reason", reason)})()
    dp.TerminateOnNaN().on_epoch_end(run, 2, {"loss": 0.5, "val_loss": math.nan})
    assert run.reason == "non-finite metrics at epoch 3: val_loss"


def test_reduce_lr_on_plateau_lowers_the_rate():
    _, history = _train(
        0,
        epochs=6,
        validation_split=0.2,
        opt=None,
        callbacks=[dp.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0)],
    )
    # epoch 1 sets the best; from epoch 2 on every epoch misses min_delta and halves the rate,
    # which the next epoch trains with
    assert history["lr"] == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3, 1.25e-3, 6.25e-4])


def test_csv_logger_and_diagnostics(tmp_path):
    path = tmp_path / "log.csv"
    _, history = _train(
        0,
        epochs=3,
        validation_split=0.2,
        callbacks=[dp.Diagnostics(probe_size=64), dp.CSVLogger(path)],
    )
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["loss"]) == pytest.approx(history["loss"][2])
    for key in ("grad_norm/0.W", "grad_norm/2.b", "dead_fraction/1", "act_mean/1", "act_std/0"):
        assert len(history[key]) == 3 and all(np.isfinite(history[key])), key
    assert 0.0 <= history["dead_fraction/1"][0] <= 1.0
    assert history["act_mean/1"][0] >= 0  # ReLU outputs


@pytest.mark.parametrize("activation", [dp.ReLU, dp.Softplus, dp.GELU])
def test_dead_fraction_counts_closed_gates_of_the_layer_input(activation):
    """The gate 1[z > 0] is read from the activation's input z: Softplus outputs, always > 0,
    would hide dead units."""
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    net = dp.mlp([5, 4, 3], rng=rng, activation=activation)
    net[0].b.value[:2] = -100.0  # two units whose gate never opens
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.SGD(net.parameters(), lr=1e-3),
        X,
        y,
        epochs=1,
        rng=rng,
        verbose=0,
        callbacks=[dp.Diagnostics()],
    )
    assert history["dead_fraction/1"] == [0.5]
    assert "dead_fraction/0" not in history and "dead_fraction/2" not in history


def test_unknown_monitor_is_a_clear_error():
    with pytest.raises(ValueError, match=r"monitor='val_los' is not a logged metric"):
        _train(0, epochs=1, validation_split=0.2, callbacks=[dp.EarlyStopping("val_los")])


def test_model_checkpoint_fills_in_the_epoch_and_keeps_other_braces(tmp_path):
    template = tmp_path / "{loss}-ckpt-{epoch:02d}-{epoch}.safetensors"
    _train(0, epochs=2, callbacks=[dp.ModelCheckpoint(template)])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["{loss}-ckpt-01-1.safetensors", "{loss}-ckpt-02-2.safetensors"]
    assert dp.inspect_file(tmp_path / written[1]).epoch == 2
    with pytest.raises(ValueError, match=r"has an \{epoch\} field with an invalid format spec"):
        dp.ModelCheckpoint(tmp_path / "c-{epoch:q}.safetensors")


def test_model_checkpoint_save_best_only_writes_when_the_metric_improves(tmp_path):
    rng = np.random.default_rng(0)
    X, _ = _data(rng, n=100)
    y = rng.integers(0, 3, 100)  # noise labels: the validation loss falls, then rises
    net = dp.mlp([5, 64, 3], rng=rng)
    checkpoint = dp.ModelCheckpoint(tmp_path / "best-{epoch}.safetensors", save_best_only=True)
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.02),
        X,
        y,
        epochs=10,
        batch_size=10,
        rng=rng,
        validation_split=0.3,
        verbose=0,
        callbacks=[checkpoint],
    )
    losses = history["val_loss"]
    improved = [e + 1 for e, v in enumerate(losses) if v < min(losses[:e], default=math.inf)]
    written = sorted(int(p.stem.split("-")[1]) for p in tmp_path.iterdir())
    assert written == improved and len(written) < 10
    assert checkpoint.best == min(losses)
    best = dp.inspect_file(tmp_path / f"best-{written[-1]}.safetensors")
    assert best.epoch == int(np.argmin(losses)) + 1


def test_csv_logger_appends_under_the_existing_header(tmp_path):
    path = tmp_path / "log.csv"
    _train(0, epochs=2, callbacks=[dp.CSVLogger(path)])
    _train(1, epochs=1, callbacks=[dp.CSVLogger(path, append=True)])
    rows = list(csv.reader(open(path)))
    assert rows[0][:3] == ["epoch", "loss", "accuracy"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "1"]  # three runs' epochs, one header
    _train(2, epochs=1, callbacks=[dp.CSVLogger(path)])  # without append: a fresh file
    assert [r[0] for r in csv.reader(open(path))] == ["epoch", "1"]


def test_hooks_fire_in_order_and_after_epoch_still_works_with_a_warning():
    calls = []

    class Recorder(dp.Callback):
        def on_train_begin(self, run):
            calls.append("train_begin")

        def on_epoch_begin(self, run, epoch):
            calls.append(f"epoch_begin {epoch}")

        def on_epoch_end(self, run, epoch, logs):
            calls.append(f"epoch_end {epoch} recorded={run.history.n_epochs}")

        def on_epoch_recorded(self, run):
            calls.append(f"recorded epoch={run.epoch} history={run.history.n_epochs}")

        def on_train_end(self, run):
            calls.append("train_end")

    _, history = _train(0, epochs=2, batch_size=200, callbacks=[Recorder()])
    assert calls == [
        "train_begin",
        "epoch_begin 0",
        "epoch_end 0 recorded=0",
        "recorded epoch=1 history=1",
        "epoch_begin 1",
        "epoch_end 1 recorded=1",
        "recorded epoch=2 history=2",
        "train_end",
    ]
    assert history.n_epochs == 2


def test_callback_arguments_are_checked_at_construction(tmp_path):
    with pytest.raises(ValueError, match="EarlyStopping: patience must be >= 0, got -1"):
        dp.EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="EarlyStopping: min_delta must be a number, got '0.1'"):
        dp.EarlyStopping(min_delta="0.1")
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be in \(0, 1\), got 1.0"):
        dp.ReduceLROnPlateau(factor=1)
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'min', 'max'; got 'up'"):
        dp.ModelCheckpoint(tmp_path / "c.safetensors", mode="up")
