"""The one registry: names to objects for files, the command line and the estimators."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import registry
from deltaprop.registry import Registry


@pytest.mark.parametrize(
    ("table", "name", "expected"),
    [
        (registry.LAYERS, "Dense", dp.Dense),
        (registry.LAYERS, "leakyrelu", dp.LeakyReLU),
        (registry.ACTIVATIONS, "relu", dp.ReLU),
        (registry.ACTIVATIONS, "logistic", dp.Sigmoid),  # scikit-learn's name
        (registry.ACTIVATIONS, "LEAKY_RELU", dp.LeakyReLU),
        (registry.LOSSES, "softmax-ce", dp.SoftmaxCrossEntropy),
        (registry.LOSSES, "bce", dp.SigmoidBinaryCrossEntropy),
        (registry.LOSSES, "mse", dp.MeanSquaredError),
        (registry.OPTIMIZERS, "adamw", dp.AdamW),
        (registry.OPTIMIZERS, "SGD", dp.SGD),
        (registry.SCHEDULES, "CosineDecay", dp.CosineDecay),
        (registry.INITIALIZERS, "he_normal", dp.initializers.he_normal),
        (registry.DATASETS, "digits", dp.datasets.digits),
    ],
)
def test_names_and_aliases_resolve(table, name, expected):
    assert table.get(name) is expected
    assert name in table


def test_every_kind_is_registered():
    built_in = {"Dense", "GELU", "Identity", "LeakyReLU", "ReLU", "Sequential", "Sigmoid"}
    assert built_in | {"Softmax", "Softplus", "Tanh"} <= set(registry.LAYERS)
    assert registry.OPTIMIZERS.names() == ["Adagrad", "Adam", "AdamW", "RMSprop", "SGD"]
    assert registry.SCHEDULES.names() == [
        "Constant",
        "CosineDecay",
        "ExponentialDecay",
        "InverseScaling",
        "StepDecay",
    ]
    assert registry.LOSSES.aliases("SoftmaxCrossEntropy") == ["ce", "cross-entropy", "softmax-ce"]
    assert {"breast-cancer", "digits", "moons", "iris", "fashion-mnist"} <= set(registry.DATASETS)
    assert registry.DATASETS.get("two_moons") is dp.datasets.moons  # the old name, an alias


def test_unknown_names_list_the_known_ones():
    with pytest.raises(dp.UnknownNameError, match=r"unknown optimizer 'adamax'; known: Adagrad, "):
        registry.OPTIMIZERS.get("adamax")
    with pytest.raises(dp.UnknownNameError, match="unknown loss 3"):
        registry.LOSSES.get(3)
    assert "os.system" not in registry.LAYERS


def test_a_name_stands_for_one_entry():
    table: Registry[object] = Registry("thing", "THINGS")
    table.register(dp.ReLU)
    table.register(dp.ReLU)  # the same entry again is fine
    with pytest.raises(ValueError, match="thing name 'relu' is already taken by 'ReLU'"):
        table.register(dp.Tanh, "relu")
    with pytest.raises(ValueError, match="give it a name"):
        table.register(object())
    assert len(table) == 1 and table.name_of(dp.ReLU) == "ReLU"


def test_the_initializer_table_is_shared_with_dense():
    def ones(rng, fan_in, fan_out, dtype):
        return np.ones((fan_out, fan_in), dtype)

    registry.INITIALIZERS.register(ones, "test_ones")
    layer = dp.Dense(2, 3, rng=np.random.default_rng(0), init="test_ones")
    np.testing.assert_array_equal(layer.W.value, np.ones((3, 2)))


def test_configurations_round_trip_through_the_registry():
    rng = np.random.default_rng(0)
    inner = dp.Sequential(dp.Dense(3, 4, rng=rng, dtype=np.float64), dp.LeakyReLU(0.2))
    net = dp.Sequential(inner, dp.Dense(4, 2, rng=rng, dtype=np.float64))
    config = registry.to_config(net, registry.LAYERS)
    assert config == {
        "type": "Sequential",
        "layers": [
            {
                "type": "Sequential",
                "layers": [
                    {
                        "type": "Dense",
                        "in_features": 3,
                        "out_features": 4,
                        "bias": True,
                        "dtype": "float64",
                    },
                    {"type": "LeakyReLU", "negative_slope": 0.2},
                ],
            },
            {
                "type": "Dense",
                "in_features": 4,
                "out_features": 2,
                "bias": True,
                "dtype": "float64",
            },
        ],
    }
    rebuilt = registry.from_config(config, registry.LAYERS)
    assert repr(rebuilt) == repr(net)
    assert registry.describe(config["layers"][0]) == (
        "Sequential(layers=[Dense(3, 4, bias=True, dtype='float64'), "
        "LeakyReLU(negative_slope=0.2)])"
    )
    schedule = dp.StepDecay(0.1, step_size=10, gamma=0.5)
    described = registry.to_config(schedule, registry.SCHEDULES)
    assert described == {"type": "StepDecay", "lr": 0.1, "step_size": 10, "gamma": 0.5}
    assert repr(registry.from_config(described, registry.SCHEDULES)) == repr(schedule)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1, 2], r"architecture: expected a layer description with a 'type', got \[1, 2\]"),
        ({"type": "Dense", "in_features": 2}, r"architecture: invalid arguments for Dense"),
        ({"type": "Dense", "in_features": 2.5, "out_features": 2}, "in_features must be an int"),
        ({"type": "Sequential", "layers": [{"type": "Eval"}]}, "unknown layer 'Eval'"),
    ],
)
def test_bad_configurations_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        registry.from_config(config, registry.LAYERS, "architecture")
