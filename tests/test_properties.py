"""Properties over random architectures (hypothesis, derandomized)."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import deltaprop as dp

ACTIVATIONS = [dp.ReLU, dp.Tanh, dp.Sigmoid, dp.GELU, dp.Softplus, dp.Identity]

architectures = st.tuples(
    st.lists(st.integers(1, 9), min_size=2, max_size=5),  # widths
    st.lists(st.sampled_from(ACTIVATIONS), min_size=4, max_size=4),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 2**32 - 1),
)


def build(widths, activations, dtype, seed):
    rng = np.random.default_rng(seed)
    hidden = iter(activations)  # one activation class per hidden layer, in order
    return dp.mlp(widths, rng=rng, activation=lambda: next(hidden)(), dtype=dtype), rng


@given(architectures, st.integers(1, 12))
def test_predict_on_a_batch_equals_row_by_row(arch, n):
    net, rng = build(*arch)
    X = rng.standard_normal((n, arch[0][0])).astype(arch[2])
    batch = net.predict_logits(X, batch_size=5)
    rows = np.concatenate([net.forward(X[i : i + 1]) for i in range(n)])
    tolerance = 1e-5 if arch[2] == np.float32 else 1e-12
    np.testing.assert_allclose(batch, rows, rtol=tolerance, atol=tolerance)
    assert batch.dtype == arch[2]


@given(architectures)
def test_save_load_round_trip_is_bit_exact(arch):
    net, rng = build(*arch)
    X = rng.standard_normal((4, arch[0][0])).astype(arch[2])
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "m.safetensors"
        dp.save(net, path)
        loaded, loss = dp.load(path)
    assert loss is None and repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.flat_values, net.flat_values)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
