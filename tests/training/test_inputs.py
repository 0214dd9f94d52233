"""What fit, evaluate and predict accept: every refusal names the argument and the value."""

import numpy as np
import pytest

import deltaprop as dp
from support import classification_data


@pytest.fixture
def setup(rng):
    X, y = classification_data(rng, n=40)
    net = dp.mlp([5, 8, 3], rng=rng)
    return net, dp.SoftmaxCrossEntropy(), dp.Adam(net.parameters()), X, y


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"validation_split": "0.1"}, TypeError, r"validation_split must be a number, got '0.1'"),
        ({"validation_split": None}, TypeError, r"validation_split must be a number, got None"),
        ({"validation_data": "X"}, TypeError, r"validation_data must be a pair .*got a str"),
        (
            {"validation_data": ("X",)},
            TypeError,
            r"a triple .X_val, y_val, weights., got a tuple of length 1",
        ),
        ({"validation_data": (1, 2, 3, 4)}, TypeError, "got a tuple of length 4"),
        ({"callbacks": [print]}, TypeError, r"callbacks\[0\] must be a Callback such as"),
        ({"callbacks": [dp.EarlyStopping]}, TypeError, "the class EarlyStopping: create one"),
        ({"callbacks": dp.EarlyStopping()}, TypeError, "callbacks must be a list of Callbacks"),
        ({"shuffle": "yes"}, TypeError, "shuffle must be True or False, got 'yes'"),
        ({"epochs": 2.0}, TypeError, "epochs must be an integer, got 2.0"),
        ({"rng": "0"}, TypeError, "rng must be a numpy.random.Generator"),
    ],
)
def test_wrong_arguments_to_fit_are_named(setup, change, error, message):
    net, loss, opt, X, y = setup
    before = net.flat_values.copy()
    with pytest.raises(error, match=message):
        dp.fit(net, loss, opt, X, y, **{"verbose": 0, "rng": np.random.default_rng(0), **change})
    np.testing.assert_array_equal(net.flat_values, before)


@pytest.mark.parametrize(
    ("part", "value", "message"),
    [
        (
            "loss",
            dp.SoftmaxCrossEntropy,
            r"loss must be a Loss .*the class SoftmaxCrossEntropy: "
            r"create one, e.g. SoftmaxCrossEntropy\(\)",
        ),
        ("loss", "softmax-ce", r"the string 'softmax-ce': names are for the command line"),
        ("optimizer", dp.Adam, r"optimizer must be a Optimizer .*the class Adam"),
        ("optimizer", "adam", "the string 'adam'"),
    ],
)
def test_a_class_or_a_name_where_an_object_belongs_is_explained(setup, part, value, message):
    net, loss, opt, X, y = setup
    parts = {"loss": loss, "optimizer": opt, part: value}
    with pytest.raises(TypeError, match=message):
        dp.fit(net, parts["loss"], parts["optimizer"], X, y, verbose=0)


def test_integer_types_are_taken_alike_everywhere(setup):
    net, loss, opt, X, y = setup
    size = np.int64(16)
    dp.fit(net, loss, opt, X, y, epochs=np.int32(1), batch_size=size, verbose=0)
    assert dp.evaluate(net, loss, X, y, batch_size=size)["loss"] > 0
    assert dp.predict(net, loss, X, batch_size=size).shape == (40, 3)
    assert net.predict_logits(X, batch_size=size).shape == (40, 3)


def test_predict_refuses_what_evaluate_refuses(setup):
    net, loss, _, X, y = setup
    X[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in X: 1 value in 1 row \(first in row 7\)"):
        dp.evaluate(net, loss, X, y)
    with pytest.raises(ValueError, match=r"NaN or inf in X: 1 value in 1 row \(first in row 7\)"):
        dp.predict(net, loss, X)


def test_values_beyond_float32_are_said_to_overflow(setup):
    net, loss, opt, X, y = setup
    X64 = X.astype(np.float64)
    X64[3, 0] = 1e39  # finite in the user's float64 data
    with pytest.raises(
        ValueError,
        match=r"beyond float32's range \(largest magnitude 1e\+39.*"
        r"in 1 row \(first in row 3\).*dtype=np.float64",
    ):
        dp.fit(net, loss, opt, X64, y, verbose=0)
    X64[3, 0] = np.inf  # a real inf is still called one
    with pytest.raises(ValueError, match=r"NaN or inf in X: 1 value in 1 row \(first in row 3\)"):
        dp.predict(net, loss, X64)


@pytest.mark.parametrize(
    ("last", "loss"),
    [(dp.Softmax, dp.SoftmaxCrossEntropy), (dp.Sigmoid, dp.SigmoidBinaryCrossEntropy)],
)
def test_an_output_activation_applied_twice_is_warned_about(rng, last, loss):
    net = dp.Sequential(dp.Dense(4, 3, rng=rng), last())
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 2, 6)
    targets = y if loss is dp.SoftmaxCrossEntropy else np.eye(3)[y]
    with pytest.warns(
        UserWarning,
        match=f"ends in {last.__name__} and {loss.__name__} applies it again: it is applied twice",
    ):
        dp.evaluate(net, loss(), X, targets)


def test_class_indices_may_come_as_a_column(setup):
    net, loss, opt, X, y = setup
    dp.fit(net, loss, opt, X, y.reshape(-1, 1), epochs=1, verbose=0)
    assert dp.evaluate(net, loss, X, y.reshape(-1, 1)) == dp.evaluate(net, loss, X, y)


def test_a_model_without_dense_layers_takes_any_width(rng):
    net = dp.Sequential(dp.Identity())
    X, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    assert dp.evaluate(net, dp.MeanSquaredError(), X, y)["mse"] == pytest.approx(
        float(np.mean((X - y) ** 2)), rel=1e-6
    )


def test_data_frames_with_boolean_and_nullable_columns_are_taken(rng):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "flag": [True, False, True, True, False, False],
            "count": pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"),
            "value": [0.5, -1.0, 2.0, 0.0, 1.5, -0.5],
        }
    )
    labels = pd.Series([0, 1, 1, 0, 1, 0], dtype="Int64")
    net = dp.mlp([3, 4, 2], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    dp.fit(net, loss, dp.Adam(net.parameters()), frame, labels, epochs=2, verbose=0)
    np.testing.assert_array_equal(
        dp.predict(net, loss, frame), dp.predict(net, loss, frame.to_numpy(dtype=float))
    )
    frame.loc[2, "count"] = pd.NA
    with pytest.raises(ValueError, match=r"NaN or inf in X: 1 value in 1 row \(first in row 2\)"):
        dp.predict(net, loss, frame)
    frame["name"] = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(TypeError, match="X must hold real numbers"):
        dp.predict(net, loss, frame)
