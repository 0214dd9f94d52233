import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import plots

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data.startswith(PNG)
    # the IHDR chunk: width and height, big-endian, at bytes 16-24
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_learning_curves_with_and_without_validation(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]}
    assert plots.learning_curves(history, tmp_path / "a.png") == str(tmp_path / "a.png")
    assert png_size(tmp_path / "a.png") == (1040, 400)  # two panels: loss and accuracy
    plots.learning_curves({"loss": [1.0, 0.5]}, tmp_path / "b.png")
    assert png_size(tmp_path / "b.png") == (520, 400)


def test_decision_boundary_confusion_matrix_diagnostics_and_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = (X[:, 0] > 0).astype(int)

    def proba(points):
        p = 1 / (1 + np.exp(-5 * points[:, 0]))
        return np.column_stack([1 - p, p])

    plots.decision_boundary(proba, X, y, ["left", "right"], tmp_path / "d.png", resolution=50)
    plots.confusion_matrix(np.array([[5, 1], [2, 7]]), ["a", "b"], tmp_path / "c.png")
    history = {"grad_norm/0.W": [1.0, 0.5], "dead_fraction/1": [0.0, 0.1], "loss": [1, 0]}
    plots.diagnostics(history, tmp_path / "g.png")
    plots.predicted_vs_true(np.arange(10.0), np.arange(10.0) + 1, tmp_path / "r.png")
    for name in "dcgr":
        assert (tmp_path / f"{name}.png").stat().st_size > 5000


def test_a_plot_into_a_missing_directory_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        plots.learning_curves({"loss": [1.0]}, tmp_path / "missing" / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_diagnostics_from_a_real_run(tmp_path):
    rng = np.random.default_rng(0)
    X, y = dp.datasets.moons(n=100)
    net = dp.mlp([2, 8, 1], rng=rng)
    history = dp.fit(
        net,
        dp.SigmoidBinaryCrossEntropy(),
        dp.Adam(net.parameters()),
        X,
        y,
        epochs=3,
        rng=rng,
        verbose=0,
        callbacks=[dp.Diagnostics()],
    )
    plots.diagnostics(history, tmp_path / "g.png")
    assert png_size(tmp_path / "g.png") == (1040, 400)
