"""The data-to-model steps that the command line, the playground and its exported code share."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.training import pipeline


def test_prepare_fits_on_the_training_rows_and_scales_a_regression_target():
    data = dp.datasets.load("diabetes")
    run = pipeline.prepare(data, test_size=0.25, seed=3, standardize=True)
    assert len(run.X_train) + len(run.X_test) == data.n_rows == 442
    assert len(run.X_test) == 111  # ceil(0.25 × 442)
    # the features are standardized with the training rows' statistics only
    np.testing.assert_allclose(run.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(run.X_train.std(axis=0), 1, atol=1e-12)
    assert abs(run.X_test.mean()) > 1e-6
    # the target as the network trains on it: (y − mean) / scale of the training rows
    y = run.train.y
    np.testing.assert_allclose(run.y_train, (y - y.mean()) / y.std(), rtol=1e-12)
    np.testing.assert_allclose(run.prep.decode(run.y_test), run.test.y, rtol=1e-12)
    assert run.prep.split is None


def test_prepare_keeps_class_indices_and_casts_only_where_asked():
    data = dp.datasets.load("moons", n=200, seed=1)
    run = pipeline.prepare(data, seed=0, dtype=np.float32, record_split=True)
    assert run.X_train.dtype == np.float32 and run.y_train.dtype == np.int64
    np.testing.assert_array_equal(run.y_train, run.train.y)
    assert run.prep.split == {"test_size": None, "seed": 0, "missing": "refuse"}
    assert pipeline.prepare(data).X_train.dtype == np.float64


def test_choose_loss_by_task_and_by_name():
    two = pipeline.prepare(dp.datasets.load("moons", n=100)).prep
    three = pipeline.prepare(dp.datasets.load("iris")).prep
    assert type(pipeline.choose_loss(None, two)) is dp.SigmoidBinaryCrossEntropy
    assert type(pipeline.choose_loss("auto", three)) is dp.SoftmaxCrossEntropy
    assert type(pipeline.choose_loss("softmax-ce", two)) is dp.SoftmaxCrossEntropy
    with pytest.raises(
        ValueError, match="mse is a regression loss, but the task is classification"
    ):
        pipeline.choose_loss("mse", two)
    with pytest.raises(dp.UnknownNameError, match="nope"):
        pipeline.choose_loss("nope", two)


def test_widths_follow_the_features_and_the_loss():
    moons = pipeline.prepare(dp.datasets.load("moons", n=100)).prep
    iris = pipeline.prepare(dp.datasets.load("iris")).prep
    assert pipeline.widths(moons, dp.SigmoidBinaryCrossEntropy(), [8]) == [2, 8, 1]
    assert pipeline.widths(moons, dp.SoftmaxCrossEntropy(), [8]) == [2, 8, 2]
    assert pipeline.widths(iris, dp.SoftmaxCrossEntropy(), [5, 4]) == [4, 5, 4, 3]


def test_build_mlp_and_optimizer_are_the_plain_calls():
    prep = pipeline.prepare(dp.datasets.load("iris")).prep
    loss = dp.SoftmaxCrossEntropy()
    net = pipeline.build_mlp(prep, loss, [6], rng=np.random.default_rng(4), activation="tanh")
    same = dp.mlp([4, 6, 3], rng=np.random.default_rng(4), activation=dp.Tanh)
    assert [type(layer) for layer in net] == [dp.Dense, dp.Tanh, dp.Dense]
    np.testing.assert_array_equal(net.flat_values, same.flat_values)
    opt = pipeline.build_optimizer("sgd", net, 0.1, momentum=0.9)
    assert type(opt) is dp.SGD and opt.momentum == 0.9 and opt.lr == 0.1
    with pytest.raises(ValueError, match=r"SGD takes no \['gamma'\]; it takes \['clip_norm'"):
        pipeline.build_optimizer("sgd", net, 0.1, gamma=2)
    with pytest.raises(dp.UnknownNameError):
        pipeline.build_optimizer("lion", net, 0.1)
