"""What PyTorch and Keras users try first: ``net(X)``, ``train()``/``eval()``, ``len`` and
indexing, ``state_dict``/``load_state_dict``, a Keras-style ``summary``, and an int seed."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import ShapeError


def _net(seed=0):
    return dp.Sequential(
        dp.Dense(4, 8, rng=seed), dp.ReLU(), dp.Dropout(0.5, rng=1), dp.Dense(8, 3, rng=seed + 1)
    )


def test_calling_the_model_runs_forward_in_its_mode():
    net, X = _net(), np.random.default_rng(2).standard_normal((5, 4))
    np.testing.assert_array_equal(net(X), net.forward(X))  # evaluation until train()
    assert net.train() is net and net.training
    trained = net(X)
    assert not np.array_equal(trained, net.forward(X))  # dropout's mask in training mode
    assert net.eval() is net and not net.training
    np.testing.assert_array_equal(net(X), net.predict_logits(X))


def test_len_and_indexing_as_torch_sequential():
    net = _net()
    assert len(net) == 4 and type(net[1]).__name__ == "ReLU"
    assert isinstance(net[:2], dp.Sequential) and len(net[:2]) == 2
    assert [type(layer).__name__ for layer in net] == ["Dense", "ReLU", "Dropout", "Dense"]


def test_load_state_dict_copies_in_place_after_checking_everything():
    source, target = _net(0), _net(5)
    state = {k: v.copy() for k, v in source.state_dict().items()}
    weight = target[0].W.value
    target.load_state_dict(state)
    assert target[0].W.value is weight  # in place: an optimizer built before still updates it
    X = np.ones((2, 4))
    np.testing.assert_array_equal(target(X), source(X))
    before = target[0].W.value.copy()
    with pytest.raises(KeyError, match=r"missing keys \['3.bias'\], unexpected keys \['3.b'\]"):
        target.load_state_dict({**{k: v for k, v in state.items() if k != "3.bias"}, "3.b": 0})
    with pytest.raises(ShapeError, match=r"'0.weight' has shape \(4, 8\), the layer's \(8, 4\)"):
        target.load_state_dict({**state, "0.weight": state["0.weight"].T})
    broken = {**state, "3.bias": np.array([0.0, np.nan, 0.0])}
    with pytest.raises(ValueError, match="'3.bias' holds NaN or inf values"):
        target.load_state_dict(broken)
    np.testing.assert_array_equal(target[0].W.value, before)  # nothing copied on an error


def test_load_state_dict_takes_a_torch_state_dict():
    torch = pytest.importorskip("torch")
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    state = {
        k.replace("2.", "3.") if k.startswith("2.") else k: v
        for k, v in reference.state_dict().items()
    }
    net = _net()
    net.load_state_dict(state)
    X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = reference(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(net(X), expected, rtol=1e-5, atol=1e-6)


def test_summary_lists_layers_output_shapes_and_parameter_counts(capsys):
    net = dp.Sequential(
        dp.Dense(784, 256, rng=0), dp.ReLU(), dp.BatchNorm(256), dp.Dense(256, 10, rng=1)
    )
    text = dp.summary(net)
    assert net.summary() is None and capsys.readouterr().out == text + "\n"  # Keras prints
    lines = text.splitlines()
    assert lines[0] == "Sequential: 784 inputs"
    assert lines[4].split() == ["(0)", "Dense", "(N,", "256)", "200,960"]  # 784·256 + 256
    assert lines[6].split()[:5] == ["(2)", "BatchNorm", "(N,", "256)", "512"]
    assert lines[7].split() == ["(3)", "Dense", "(N,", "10)", "2,570"]
    assert "parameters: 204,042 trained" in text
    assert f"size: {(204042 + 513) * 4 / 1024:,.1f} KiB (float32)" in text
    with pytest.raises(ValueError, match="pass input_features="):
        dp.summary(dp.Sequential(dp.ReLU()))
    assert dp.summary(dp.Sequential(dp.ReLU()), input_features=3).splitlines()[4].split()[-1] == "0"


def test_an_int_seed_is_a_new_generator_and_mlp_draws_every_layer_from_one():
    a, b = dp.mlp([3, 5, 5, 2], rng=7), dp.mlp([3, 5, 5, 2], rng=np.random.default_rng(7))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.value, q.value)
    first = dp.mlp([5, 5, 5], rng=7)
    assert not np.array_equal(first[0].W.value, first[2].W.value)  # not the same draw twice
    X, y = np.random.default_rng(0).standard_normal((40, 3)), np.arange(40) % 2
    runs = []
    for _ in range(2):
        net = dp.mlp([3, 4, 2], rng=0)
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.SGD(net.parameters(), lr=0.1),
            X,
            y,
            epochs=2,
            rng=3,
            verbose=0,
        )
        runs.append(net.flat_values.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
