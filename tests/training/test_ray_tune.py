"""TuneReport hands each epoch's logs to ``ray.tune.report`` (Ray itself is not started in the
tests: its servers listen on every interface; a stand-in module records the reports)."""

import sys
import types

import numpy as np
import pytest

import deltaprop as dp


@pytest.fixture
def reports(monkeypatch):
    seen = []
    tune = types.ModuleType("ray.tune")
    tune.report = lambda metrics: seen.append(dict(metrics))
    ray = types.ModuleType("ray")
    ray.tune = tune
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.tune", tune)
    return seen


def test_every_epoch_is_reported_with_its_logs(reports):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((80, 3)), rng.integers(0, 2, 80)
    net = dp.mlp([3, 4, 2], rng=0)
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=3,
        rng=1,
        validation_split=0.25,
        callbacks=[dp.TuneReport()],
        verbose=0,
    )
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert [r["val_loss"] for r in reports] == pytest.approx(history["val_loss"])
    assert set(reports[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    chosen = []
    net = dp.mlp([3, 4, 2], rng=0)
    reports.clear()
    dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=1,
        rng=1,
        callbacks=[dp.TuneReport(metrics=["loss"])],
        verbose=0,
    )
    chosen = reports[0]
    assert set(chosen) == {"epoch", "loss"}


def test_without_ray_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    net = dp.mlp([3, 4, 2], rng=0)
    X, y = np.zeros((8, 3)), np.zeros(8, dtype=int)
    with pytest.raises(ImportError, match=r"pip install 'ray\[tune\]'"):
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.SGD(net.parameters(), lr=0.1),
            X,
            y,
            callbacks=[dp.TuneReport()],
            verbose=0,
        )
