"""A new layer type is one class and one registry entry: nothing in the library changes.

Two layers are defined here, as a user would: ``PReLU`` (a learned slope per feature, with a
parameter, a configuration and a PyTorch twin) and ``GaussianNoise`` (different in training and
evaluation, and drawing random numbers from the generator ``fit`` offers). Each is saved, loaded,
gradient-checked, traced and trained through the Layer protocol alone.
"""

from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import gradcheck


class PReLU(dp.Layer):
    """a = z for z > 0, α_j z otherwise, with a slope α_j learned per feature.

    Backward: ∂L/∂z = g ⊙ (1 if z > 0 else α); ∂L/∂α_j = Σ_n g_nj min(z_nj, 0).
    Its tensor is ``weight``, as ``torch.nn.PReLU(num_parameters)``'s. Shapes: (N, F) -> (N, F).
    """

    relu_like = True

    def __init__(self, num_features: int, init: float = 0.25, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_features = num_features
        self.dtype = np.dtype(dtype)
        self.weight = dp.Parameter(np.full(num_features, init, self.dtype), "weight")
        self._z: np.ndarray | None = None

    def forward(self, x, *, training=False):
        self._z = x if training else None
        return np.where(x > 0, x, x * self.weight.value)

    def backward(self, grad_out):
        self._require_cache(self._z)
        z = self._z
        self.weight.grad[...] = np.sum(grad_out * np.minimum(z, 0), axis=0)
        return np.where(z > 0, grad_out, grad_out * self.weight.value)

    def config(self):
        return {"num_features": self.num_features, "dtype": self.dtype.name}

    def input_features(self):
        return self.num_features


class GaussianNoise(dp.Layer):
    """a = z + ε with ε ~ N(0, std²) in training, a = z in evaluation; ∂a/∂z = 1."""

    def __init__(self, std: float, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.std = std
        self.rng = rng
        self._seen: bool | None = None

    def forward(self, x, *, training=False):
        self._seen = True if training else None
        if not training:
            return x
        return x + self.std * self.rng.standard_normal(x.shape)

    def backward(self, grad_out):
        self._require_cache(self._seen)
        return grad_out

    def config(self):
        return {"std": self.std}

    def differs_in_training(self):
        return True

    def offer_rng(self, rng):
        if self.rng is None:
            self.rng = rng

    def generators(self):
        return [] if self.rng is None else [self.rng]


dp.registry.LAYERS.register(PReLU)
dp.registry.LAYERS.register(GaussianNoise)


def network(rng, dtype=np.float32):
    return dp.Sequential(
        dp.Dense(3, 5, rng=rng, dtype=dtype),
        PReLU(5, dtype=dtype),
        dp.Dense(5, 4, rng=rng, dtype=dtype),
        GaussianNoise(0.5),
        dp.Tanh(),
        dp.Dense(4, 2, rng=rng, dtype=dtype),
    )


def data(n=64):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, 3))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_the_new_layers_train_with_fit_which_offers_its_generator():
    X, y = data()
    net = network(np.random.default_rng(0))
    fit_rng = np.random.default_rng(1)
    history = dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.03),
        X,
        y,
        epochs=40,
        batch_size=16,
        rng=fit_rng,
        verbose=0,
    )
    assert net[3].rng is fit_rng  # the noise layer took fit's generator
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert not np.allclose(net[1].weight.value, 0.25)  # the slopes were learned
    assert dp.evaluate(net, dp.SoftmaxCrossEntropy(), X, y)["accuracy"] > 0.8


def test_save_and_load_through_the_registry(tmp_path):
    net = network(np.random.default_rng(0))
    net[1].weight.value[...] = [0.1, 0.2, 0.3, 0.4, 0.5]
    path = tmp_path / "custom.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    loaded, _ = dp.load(path)
    assert repr(loaded) == repr(net)
    assert "(1): PReLU(num_features=5, dtype='float32')" in repr(loaded)
    assert "(3): GaussianNoise(std=0.5)" in repr(loaded)
    assert sorted(loaded.state_dict()) == [
        "0.bias",
        "0.weight",
        "1.weight",
        "2.bias",
        "2.weight",
        "5.bias",
        "5.weight",
    ]
    np.testing.assert_array_equal(loaded[1].weight.value, net[1].weight.value)
    X, _ = data(8)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))  # evaluation: no noise
    info = str(dp.inspect_file(path))
    assert "(1) PReLU(num_features=5, dtype='float32')" in info


def test_an_unregistered_layer_is_refused_with_the_fix_in_the_message(tmp_path):
    class Unlisted(dp.Identity):
        pass

    net = dp.Sequential(dp.Dense(2, 2, rng=np.random.default_rng(0)), Unlisted())
    with pytest.raises(
        dp.UnknownNameError,
        match=r"layer Unlisted is not registered .*deltaprop.registry.LAYERS.register\(Unlisted\)",
    ):
        dp.save(net, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "layer",
    [PReLU(4, init=-0.3), GaussianNoise(0.7, rng=np.random.default_rng(3))],
    ids=["PReLU", "GaussianNoise"],
)
def test_each_new_layer_passes_the_gradient_check(layer, rng):
    x = rng.standard_normal((6, 4))
    x = np.sign(x) * (0.1 + np.abs(x))  # away from PReLU's kink
    report = gradcheck.check_layer(layer, x)
    assert report.ok, str(report)
    assert set(report.errors) == {p.name for p in layer.parameters()} | {"input"}


def test_the_model_passes_the_gradient_check_with_its_noise_held_fixed(rng):
    net = network(rng)
    net[3].offer_rng(np.random.default_rng(5))
    X, y = data(8)
    report = gradcheck.check_model(net, dp.SoftmaxCrossEntropy(), X, y)
    assert report.ok, str(report)
    assert set(report.errors) == {"0.W", "0.b", "1.weight", "2.W", "2.b", "5.W", "5.b", "input"}
    # checked in training mode: the noise changes the function, so an evaluation-mode
    # difference quotient would disagree with the training-mode backward
    assert net.differs_in_training() and report.worst < 1e-6


def test_trace_records_the_new_layers(rng):
    net = network(rng, dtype=np.float64)
    net[3].offer_rng(np.random.default_rng(5))
    X, y = data(4)
    t = dp.trace(net, dp.SoftmaxCrossEntropy(), X, y)
    assert [(lt.position, lt.layer) for lt in t.layers] == [
        (0, "Dense"),
        (1, "PReLU"),
        (2, "Dense"),
        (5, "Dense"),
    ]
    prelu = t.layers[1]
    assert prelu.activation == "identity" and set(prelu.grads) == {"weight"}
    np.testing.assert_array_equal(prelu.grads["weight"], net[1].weight.grad)
    z = t.layers[0].z  # PReLU's input is the first Dense layer's output
    np.testing.assert_allclose(prelu.z, np.where(z > 0, z, z * 0.25))
    np.testing.assert_allclose(
        prelu.grads["weight"], np.sum(prelu.delta * np.minimum(z, 0), axis=0), rtol=1e-12
    )
    assert t.layers[2].activation == "GaussianNoise → Tanh"
    np.testing.assert_array_equal(t.layers[2].a, t.layers[3].a_prev)  # a = f(z) feeds layer 3
    assert not np.allclose(t.layers[2].a, np.tanh(t.layers[2].z))  # the training-time noise


def test_resume_is_exact_because_the_noise_draws_from_fits_generator(tmp_path):
    X, y = data()

    def run(epochs, resume_from=None, checkpoint=None):
        net = network(np.random.default_rng(0))
        dp.fit(
            net,
            dp.SoftmaxCrossEntropy(),
            dp.Adam(net.parameters(), lr=0.01),
            X,
            y,
            epochs=epochs,
            batch_size=16,
            rng=np.random.default_rng(1),
            verbose=0,
            callbacks=[dp.ModelCheckpoint(checkpoint)] if checkpoint else [],
            resume_from=resume_from,
        )
        return net.flat_values

    full = run(4)
    run(2, checkpoint=tmp_path / "c.safetensors")
    resumed = run(4, resume_from=tmp_path / "c.safetensors")
    np.testing.assert_array_equal(resumed, full)


@pytest.mark.slow
def test_weights_load_into_the_equivalent_pytorch_model(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net = network(np.random.default_rng(0))
    net[1].weight.value[...] = [0.1, -0.2, 0.3, 0.4, 0.05]
    path = tmp_path / "custom.safetensors"
    dp.save(net, path)
    twin = torch.nn.Sequential(
        torch.nn.Linear(3, 5),
        torch.nn.PReLU(5),
        torch.nn.Linear(5, 4),
        torch.nn.Identity(),  # the noise, in evaluation mode
        torch.nn.Tanh(),
        torch.nn.Linear(4, 2),
    )
    twin.load_state_dict(load_file(str(path)))
    X, _ = data(5)
    X = X.astype(np.float32)
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), net.forward(X), rtol=1e-5, atol=1e-6
    )
