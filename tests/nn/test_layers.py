import copy
import re

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import initializers

ACTIVATIONS = [
    dp.Identity,
    dp.ReLU,
    dp.LeakyReLU,
    dp.Sigmoid,
    dp.Tanh,
    dp.GELU,
    dp.Softplus,
    dp.Softmax,
]


def test_user_example_from_the_issue(rng):
    X = rng.standard_normal((10, 3)).astype(np.float32)
    y = (rng.random(10) > 0.5).astype(np.float32)
    net = dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU(), dp.Dense(4, 1, rng=rng))
    loss = dp.SigmoidBinaryCrossEntropy()
    logits = net.forward(X, training=True)
    L = loss.forward(logits, y)
    grad_X = net.backward(loss.backward())
    assert grad_X.shape == (10, 3)
    assert [(p.name, p.value.shape, p.grad.shape) for p in net.parameters()] == [
        ("0.W", (4, 3), (4, 3)),
        ("0.b", (4,), (4,)),
        ("2.W", (1, 4), (1, 4)),
        ("2.b", (1,), (1,)),
    ]
    probs = loss.predict(net.forward(X))
    assert probs.shape == (10, 1) and np.all((probs > 0) & (probs < 1))
    assert L > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_silent_upcast(dtype, rng):
    net = dp.Sequential(
        dp.Dense(3, 4, rng=rng, dtype=dtype),
        dp.ReLU(),
        dp.Dense(4, 5, rng=rng, dtype=dtype),
        dp.Tanh(),
        dp.Dense(5, 2, rng=rng, dtype=dtype),
    )
    X = rng.standard_normal((6, 3)).astype(dtype)
    loss = dp.SoftmaxCrossEntropy()
    logits = net.forward(X, training=True)
    assert logits.dtype == dtype
    loss.forward(logits, rng.integers(0, 2, 6))
    delta = loss.backward()
    assert delta.dtype == dtype
    assert net.backward(delta).dtype == dtype
    for p in net.parameters():
        assert p.value.dtype == dtype and p.grad.dtype == dtype
    assert net.flat_values.dtype == dtype


def test_float64_data_into_float32_network_computes_in_float32(rng):
    net = dp.Sequential(dp.Dense(3, 2, rng=rng))
    assert net.forward(rng.standard_normal((4, 3))).dtype == np.float32


def test_parameters_are_views_into_flat_buffers(rng):
    net = dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU(), dp.Dense(4, 2, rng=rng))
    assert net.flat_values.size == 3 * 4 + 4 + 4 * 2 + 2
    net.flat_values[:] = 0.5
    assert np.all(net[0].W.value == 0.5) and np.all(net[2].b.value == 0.5)
    net.forward(rng.standard_normal((5, 3)).astype(np.float32), training=True)
    net.backward(np.ones((5, 2), np.float32))
    np.testing.assert_array_equal(net.flat_grads[-2:], [5, 5])  # db = Σ_n δ_n


def test_backward_sets_rather_than_accumulates(rng):
    layer = dp.Dense(3, 2, rng=rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(x, training=True)
    g = np.ones((4, 2), np.float32)
    layer.backward(g)
    first = layer.W.grad.copy()
    layer.backward(g)
    np.testing.assert_array_equal(layer.W.grad, first)


def test_sequential_container_protocol(rng):
    layers = [dp.Dense(3, 4, rng=rng), dp.ReLU(), dp.Dense(4, 2, rng=rng)]
    net = dp.Sequential(*layers)
    assert len(net) == 3 and list(net) == layers and net[1] is layers[1]
    head = net[:2]
    assert isinstance(head, dp.Sequential) and len(head) == 2
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        head.forward(x), np.maximum(x @ layers[0].W.value.T + layers[0].b.value, 0)
    )
    assert head.parameters()[0] is net.parameters()[0]  # a slice shares the parameters
    assert "Dense(3, 4" in repr(net)


def test_nested_sequential_shares_one_flat_buffer(rng):
    inner = dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU())
    outer = dp.Sequential(inner, dp.Dense(4, 2, rng=rng))
    assert [p.name for p in outer.parameters()] == ["0.0.W", "0.0.b", "1.W", "1.b"]
    outer.flat_values[:] = 1.0
    assert np.all(inner.flat_values == 1.0) and np.all(inner[0].W.value == 1.0)


@pytest.mark.parametrize("cls", ACTIVATIONS)
def test_activation_keeps_shape_and_dtype(cls, rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out = cls().forward(x)
    assert out.shape == x.shape and out.dtype == np.float32


def test_activation_values(rng):
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(dp.ReLU().forward(z), [[0, 0, 0, 0.5, 3]])
    np.testing.assert_allclose(dp.LeakyReLU(0.1).forward(z), [[-0.2, -0.05, 0, 0.5, 3]])
    np.testing.assert_allclose(dp.Sigmoid().forward(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(dp.Softplus().forward(z), np.log1p(np.exp(z)))
    # GELU(1) = Φ(1) = 0.841344746...
    np.testing.assert_allclose(dp.GELU().forward(np.array([[1.0]])), [[0.8413447460685429]])
    np.testing.assert_allclose(dp.Softmax().forward(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


@pytest.mark.parametrize(
    "cls", [*ACTIVATIONS, lambda: dp.Dense(5, 2, rng=np.random.default_rng(0))]
)
def test_backward_before_training_forward_is_refused(cls, rng):
    layer = cls()
    with pytest.raises(dp.ForwardNotCalledError, match="before forward"):
        layer.backward(np.ones((4, 5 if not isinstance(layer, dp.Dense) else 2)))
    layer.forward(rng.standard_normal((4, 5)))  # inference forward caches nothing
    with pytest.raises(dp.ForwardNotCalledError):
        layer.backward(np.ones((4, 5 if not isinstance(layer, dp.Dense) else 2)))


def test_input_width_mismatch_names_layer_and_shapes(rng):
    net = dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU(), dp.Dense(4, 1, rng=rng))
    with pytest.raises(dp.ShapeError, match=r"5 features \(shape \(2, 5\)\).*expects 3"):
        net.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"Dense\(3, 4\).*7 features.*expected 3"):
        net[0].forward(np.zeros((2, 7), np.float32))
    with pytest.raises(dp.ShapeError, match="2-D"):
        net.forward(np.zeros(3))


def test_widths_that_do_not_chain_name_both_layers(rng):
    with pytest.raises(
        dp.ShapeError, match=r"layer 0 \(Dense\(3, 4.*outputs 4.*layer 2 \(Dense\(5, 1"
    ):
        dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU(), dp.Dense(5, 1, rng=rng))


def test_constructor_arguments_are_validated(rng):
    with pytest.raises(ValueError, match="Dense: in_features must be >= 1, got 0"):
        dp.Dense(0, 3, rng=rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        dp.Dense(2, 3, rng=np.random.RandomState(42))
    with pytest.raises(ValueError, match="init must be one of .*got 'xavier'"):
        dp.Dense(2, 3, rng=rng, init="xavier")
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        dp.Dense(2, 3, rng=rng, dtype=np.int32)
    with pytest.raises(TypeError, match="element 1 must be a Layer"):
        dp.Sequential(dp.ReLU(), "relu")


@pytest.mark.parametrize("name", sorted(initializers.INITIALIZERS))
def test_initializer_variance(name):
    fan_in, fan_out = 400, 300
    W = initializers.get(name)(np.random.default_rng(1), fan_in, fan_out, np.float64)
    assert W.shape == (fan_out, fan_in)
    rule = name.split("_")[0]
    expected = {"he": 2 / fan_in, "glorot": 2 / (fan_in + fan_out), "lecun": 1 / fan_in}[rule]
    assert W.var() == pytest.approx(expected, rel=0.03)


def test_auto_init_is_he_before_relu_and_glorot_otherwise():
    fan_in, fan_out = 400, 300
    relu_net = dp.Sequential(dp.Dense(fan_in, fan_out, rng=np.random.default_rng(1)), dp.ReLU())
    tanh_net = dp.Sequential(dp.Dense(fan_in, fan_out, rng=np.random.default_rng(1)), dp.Tanh())
    assert relu_net[0].W.value.var() == pytest.approx(2 / fan_in, rel=0.03)
    assert tanh_net[0].W.value.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.03)
    # weights the user set before composing are kept as they are
    layer = dp.Dense(2, 2, rng=np.random.default_rng(0))
    layer.W.value[...] = [[1, 2], [3, 4]]
    dp.Sequential(layer, dp.ReLU())
    np.testing.assert_array_equal(layer.W.value, [[1, 2], [3, 4]])


def test_slices_with_a_step_are_refused(rng):
    net = dp.mlp([3, 4, 4, 2], rng=rng)
    with pytest.raises(ValueError, match=r"slices must be contiguous \(step 1\), got slice\(None"):
        net[::2]
    with pytest.raises(ValueError, match="step 1"):
        net[::-1]
    tail = net[2:]
    assert len(tail) == 3 and tail.parameters()[0] is net[2].W
    assert np.shares_memory(tail.flat_values, net.flat_values)


@pytest.mark.parametrize(
    "layer",
    [
        dp.Dense(3, 4, rng=np.random.default_rng(0), bias=False, dtype=np.float64),
        dp.LeakyReLU(0.3),
        *(cls() for cls in ACTIVATIONS if cls is not dp.LeakyReLU),
        dp.mlp([3, 4, 2], rng=np.random.default_rng(0)),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_rebuilds_the_layer(layer):
    config = layer.config()
    rebuilt = type(layer).from_config(copy.deepcopy(config))  # a Sequential's layers are its own
    assert repr(rebuilt) == repr(layer)
    assert rebuilt.config().keys() == config.keys()


def test_state_dict_names_follow_pytorch(rng):
    inner = dp.Sequential(dp.Dense(3, 4, rng=rng), dp.ReLU())
    net = dp.Sequential(inner, dp.Dense(4, 2, rng=rng, bias=False))
    tensors = net.state_dict()
    assert list(tensors) == ["0.0.weight", "0.0.bias", "1.weight"]
    assert tensors["0.0.weight"] is inner[0].W.value  # the arrays themselves: loading writes here
    assert [name for name, _ in net.named_parameters()] == ["0.0.W", "0.0.b", "1.W"]


def test_astype_converts_every_parameter_and_keeps_the_values(rng):
    net = dp.mlp([3, 5, 2], rng=rng)
    before = net.flat_values.copy()
    X = rng.standard_normal((4, 3))
    same = net.astype(np.float64)
    assert same is net and net.dtype == np.float64 and net[0].dtype == np.float64
    assert net.flat_values.dtype == np.float64 and all(
        p.value.dtype == np.float64 and np.shares_memory(p.value, net.flat_values)
        for p in net.parameters()
    )
    np.testing.assert_array_equal(net.flat_values, before.astype(np.float64))
    assert net.forward(X).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        net.astype(np.int32)


def test_the_protocol_answers_for_the_built_in_layers(rng):
    assert [cls.relu_like for cls in (dp.ReLU, dp.LeakyReLU, dp.GELU, dp.Softplus)] == [True] * 4
    assert not any(cls.relu_like for cls in (dp.Sigmoid, dp.Tanh, dp.Identity, dp.Softmax))
    net = dp.mlp([3, 4, 2], rng=rng)
    assert net.input_features() == 3 and net.output_features(3) == 2
    assert dp.ReLU().input_features() is None and dp.ReLU().output_features(7) == 7
    assert not net.differs_in_training() and net.generators() == []


def test_mlp_builds_dense_layers_with_activations_between(rng):
    net = dp.mlp([4, 8, 6, 2], rng=rng, activation=lambda: dp.LeakyReLU(0.1), dtype=np.float64)
    assert [type(layer).__name__ for layer in net] == [
        "Dense",
        "LeakyReLU",
        "Dense",
        "LeakyReLU",
        "Dense",
    ]
    assert [net[i].out_features for i in (0, 2, 4)] == [8, 6, 2]
    assert net.dtype == np.float64 and net[1] is not net[3]
    with pytest.raises(ValueError, match=r"mlp: widths needs an input and an output width"):
        dp.mlp([4], rng=rng)
    with pytest.raises(ValueError, match=r"mlp: widths\[1\] must be >= 1, got 0"):
        dp.mlp([4, 0, 2], rng=rng)
    with pytest.raises(TypeError, match="mlp: activation must make a Layer"):
        dp.mlp([4, 3, 2], rng=rng, activation=lambda: "relu")


# --- ownership: a layer belongs to one model, an optimizer to its parameters --------------


def test_a_layer_appears_once_in_a_model(rng):
    dense, relu = dp.Dense(4, 4, rng=rng), dp.ReLU()
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\(4, 4.*is the same object as layer 0"):
        dp.Sequential(dense, relu, dense)
    with pytest.raises(ValueError, match=r"layer 3 \(ReLU\(\)\) is the same object as layer 1"):
        dp.Sequential(dp.Dense(4, 4, rng=rng), relu, dp.Dense(4, 4, rng=rng), relu)


def test_a_layer_or_sub_model_belongs_to_one_model(rng):
    inner = dp.mlp([3, 4], rng=rng)
    first = dp.Sequential(inner, dp.ReLU(), dp.Dense(4, 2, rng=rng))
    assert inner.owner is first and first[2].owner is first and first.owner is None
    with pytest.raises(ValueError, match=r"layer 0 .* is already part of another model"):
        dp.Sequential(inner, dp.Dense(4, 1, rng=rng))
    with pytest.raises(ValueError, match="copy.deepcopy"):
        dp.Sequential(*first.layers)
    clone = copy.deepcopy(first[2])  # an independent copy belongs to no one
    assert clone.owner is None and dp.Sequential(clone).layers[0] is clone
    whole = copy.deepcopy(first)  # a copied model owns its copied layers
    assert whole[0].owner is whole and whole[0][0].owner is whole[0]
    del first, inner
    import gc

    gc.collect()


def test_layers_of_a_model_that_is_gone_are_free_again():
    import gc

    layers = [dp.Dense(3, 2, rng=np.random.default_rng(0)), dp.ReLU()]
    net = dp.Sequential(*layers)
    del net
    gc.collect()
    assert dp.Sequential(*layers).layers[0] is layers[0]


def test_an_optimizer_follows_parameters_moved_into_a_larger_model(rng):
    model = dp.mlp([3, 4, 2], rng=rng)
    opt = dp.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.forward(np.ones((2, 3), np.float32), training=True)
    model.backward(np.ones((2, 2), np.float32))
    opt.step()  # momentum state now holds one step
    wrapped = dp.Sequential(model, dp.Tanh())  # moves the parameters into a new buffer
    before = wrapped.flat_values.copy()
    expected_state = opt.state["momentum_buffer"].copy()
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    # b = 0.9 b + g with g = 1, then θ ← θ − 0.1 b: in the parameters' new home
    np.testing.assert_allclose(
        wrapped.flat_values, before - 0.1 * (0.9 * expected_state + 1.0), rtol=1e-6
    )
    with pytest.raises(TypeError, match="build the optimizer again after astype"):
        model.astype(np.float64)
        opt.step()


def test_an_optimizer_refuses_the_same_parameter_twice(rng):
    params = dp.mlp([3, 2], rng=rng).parameters()
    with pytest.raises(
        ValueError, match=r"parameter '0.W' appears twice in the list \(at 0 and 2\)"
    ):
        dp.Adam(params + params[:1])


def test_fit_refuses_an_optimizer_built_for_another_model(rng):
    X = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    old = dp.mlp([3, 4, 2], rng=rng)
    opt = dp.Adam(old.parameters())
    new = dp.mlp([3, 4, 2], rng=rng)  # the notebook case: the model cell ran again
    before = new.flat_values.copy()
    with pytest.raises(
        ValueError,
        match=r"optimizer was built for other parameters than the model's \(4 of the model's 4",
    ):
        dp.fit(new, dp.SoftmaxCrossEntropy(), opt, X, y, epochs=1, rng=rng, verbose=0)
    np.testing.assert_array_equal(new.flat_values, before)


def test_a_pickled_model_round_trips_with_its_storage_and_owners(rng):
    import pickle

    net = dp.Sequential(dp.mlp([3, 4], rng=rng), dp.ReLU(), dp.Dense(4, 2, rng=rng))
    back = pickle.loads(pickle.dumps(net))
    X = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert np.shares_memory(back[0][0].W.value, back.flat_values)
    assert back[0].owner is back and back[0][0].owner is back[0]


@pytest.mark.parametrize(
    "cls", [*ACTIVATIONS, lambda: dp.Dense(5, 5, rng=np.random.default_rng(0))]
)
@pytest.mark.parametrize("shape", [(1, 5), (200, 5), (4, 1), (4, 6)])
def test_backward_refuses_a_gradient_of_another_shape(cls, shape, rng):
    """No broadcasting: a (1, D) gradient against (N, D) outputs would give garbage silently."""
    layer = cls()
    layer.forward(rng.standard_normal((4, 5)), training=True)
    with pytest.raises(ValueError, match=r"shape|grad_out"):
        layer.backward(np.ones(shape))


@pytest.mark.parametrize("shape", [(1, 5), (4, 6)])
def test_backward_params_refuses_a_gradient_of_another_shape_as_every_backward_does(shape, rng):
    layer = dp.Dense(5, 5, rng=rng)
    layer.forward(rng.standard_normal((4, 5)), training=True)
    message = re.escape(f"Dense(5, 5).backward: grad_out has shape {shape}, expected (4, 5)")
    for backward in (layer.backward, layer.backward_params):
        with pytest.raises(dp.ShapeError, match=message):
            backward(np.ones(shape))
