"""Compiled inference against the reference path: the same numbers to rounding, the same rules."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import deltaprop as dp
from deltaprop.backend import blas
from deltaprop.nn import dense_chain as compiled_inference
from deltaprop.nn.dense_chain import compiled_predictions, forward_rows, unsupported_chain

RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def network(kind, dtype, rng):
    """The chains the compiled kernel runs: Dense layers with ReLU or Identity between them."""
    if kind == "mlp":
        return dp.mlp([7, 16, 9, 3], rng=rng, dtype=dtype)
    if kind == "one dense":
        return dp.Sequential(dp.Dense(7, 3, rng=rng, dtype=dtype))
    if kind == "no bias, identities":
        return dp.Sequential(
            dp.Identity(),
            dp.Dense(7, 5, rng=rng, bias=False, dtype=dtype),
            dp.ReLU(),
            dp.Dense(5, 4, rng=rng, dtype=dtype),
            dp.Identity(),
            dp.Dense(4, 3, rng=rng, bias=False, dtype=dtype),
        )
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["mlp", "one dense", "no bias, identities"])
@pytest.mark.parametrize(("rows", "batch_size"), [(1, 2048), (2, 1), (37, 5), (300, 64)])
def test_equals_the_reference_path_to_rounding(dtype, kind, rows, batch_size):
    rng = np.random.default_rng(rows)
    net = network(kind, dtype, rng)
    X = rng.standard_normal((rows, 7)).astype(dtype)
    compiled = net.predict_logits(X, batch_size, engine="compiled")
    reference = net.predict_logits(X, batch_size, engine="reference")
    assert compiled.dtype == dtype and compiled.shape == (rows, 3)
    np.testing.assert_allclose(compiled, reference, rtol=RTOL[dtype], atol=RTOL[dtype])
    # and the plain formula, written out: a = ReLU(a_prev Wᵀ + b) layer by layer
    a = X.astype(np.float64)
    for layer in net.layers:
        if layer.affine:
            a = a @ layer.W.value.T.astype(np.float64)
            if layer.has_bias:
                a = a + layer.b.value
        elif isinstance(layer, dp.ReLU):
            a = np.maximum(a, 0)
    np.testing.assert_allclose(compiled, a, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_any_thread_count_gives_the_reference_numbers_and_the_same_bits(threads):
    rng = np.random.default_rng(0)
    net = dp.mlp([6, 8, 4], rng=rng)
    X = rng.standard_normal((23, 6)).astype(np.float32)
    first = forward_rows(net.layers, net.flat_values, X, 4, threads)
    np.testing.assert_array_equal(forward_rows(net.layers, net.flat_values, X, 4, threads), first)
    np.testing.assert_array_equal(forward_rows(net.layers, net.flat_values, X, 4, 1), first)
    np.testing.assert_allclose(first, net.predict_logits(X, engine="reference"), rtol=2e-5)


def test_non_finite_inputs_come_out_as_on_the_reference_path():
    """ReLU as the reference computes it: max(z, 0) keeps NaN and sends −inf to 0."""
    rng = np.random.default_rng(3)
    net = dp.mlp([5, 4, 3], rng=rng, dtype=np.float64)
    X = rng.standard_normal((6, 5))
    X[1, 2], X[2, 0], X[3, 1] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        reference = net.predict_logits(X, engine="reference")
    compiled = net.predict_logits(X, engine="compiled")
    assert np.isnan(compiled[1]).all() and np.isfinite(compiled[[0, 4, 5]]).all()
    np.testing.assert_array_equal(compiled, reference)


def test_inputs_of_any_layout_and_dtype_are_converted_once():
    rng = np.random.default_rng(4)
    net = dp.mlp([6, 5, 2], rng=rng)
    X = rng.standard_normal((40, 12))[:, ::2]  # float64, not contiguous
    compiled = net.predict_logits(X, engine="compiled")
    np.testing.assert_allclose(compiled, net.predict_logits(X.astype(np.float32)), rtol=2e-5)
    assert compiled.dtype == np.float32
    assert net.predict_logits(np.asfortranarray(X), engine="compiled").tolist() == compiled.tolist()


def test_the_output_belongs_to_the_caller():
    rng = np.random.default_rng(5)
    net = dp.mlp([4, 6, 3], rng=rng)
    X = rng.standard_normal((9, 4)).astype(np.float32)
    first = net.predict_logits(X, engine="compiled")
    kept = first.copy()
    second = net.predict_logits(X[::-1], engine="compiled")
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)
    assert net.predict_logits(X[:0], engine="compiled").shape == (0, 3)


def test_threads_predicting_at_once_get_their_own_answers_and_blas_threads_come_back():
    rng = np.random.default_rng(6)
    net = dp.mlp([30, 64, 32, 4], rng=rng)
    inputs = [rng.standard_normal((200 + 13 * i, 30)).astype(np.float32) for i in range(6)]
    expected = [net.predict_logits(X, engine="compiled") for X in inputs]
    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    results: dict[int, list[np.ndarray]] = {}

    def predict(i):
        results[i] = [net.predict_logits(inputs[i], 16, engine="compiled") for _ in range(20)]

    workers = [threading.Thread(target=predict, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for i, outputs in results.items():
        for output in outputs:
            np.testing.assert_allclose(output, expected[i], rtol=2e-5, atol=1e-6)
    after = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert after == before and blas.holders() == 0


def test_auto_runs_the_compiled_kernel_from_the_stated_work(monkeypatch):
    rng = np.random.default_rng(7)
    net = dp.mlp([10, 20, 2], rng=rng)  # 262 parameters
    calls = []
    monkeypatch.setattr(
        "deltaprop.nn.sequential.forward_rows",
        lambda *args: calls.append(args[2].shape[0]) or args[2],
    )
    monkeypatch.setattr(compiled_inference, "PREDICT_AUTO_WORK", 262 * 50)
    net.predict_logits(np.zeros((49, 10)))
    assert calls == []
    net.predict_logits(np.zeros((50, 10)))
    assert calls == [50]
    net.predict_logits(np.zeros((60, 10)), engine="reference")
    assert calls == [50]


@pytest.mark.parametrize(
    ("layers", "reason"),
    [
        (lambda rng: [dp.Dense(3, 4, rng=rng), dp.Tanh(), dp.Dense(4, 2, rng=rng)], "a Tanh layer"),
        (
            lambda rng: [dp.Dense(3, 4, rng=rng), dp.BatchNorm(4), dp.Dense(4, 2, rng=rng)],
            "a Batch",
        ),
        (lambda rng: [dp.ReLU(), dp.Dense(3, 2, rng=rng)], "it starts with a ReLU"),
        (lambda rng: [dp.Dense(3, 2, rng=rng), dp.ReLU()], "does not end in a Dense layer"),
        (
            lambda rng: [
                dp.Dense(3, 4, rng=rng),
                dp.ReLU(),
                dp.Identity(),
                dp.Dense(4, 2, rng=rng),
            ],
            "two activations follow each other",
        ),
    ],
)
def test_what_it_cannot_run_falls_back_or_is_named(layers, reason):
    rng = np.random.default_rng(8)
    net = dp.Sequential(*layers(rng))
    X = rng.standard_normal((5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=f"engine='compiled' cannot run this model: .*{reason}"):
        net.predict_logits(X, engine="compiled")
    assert unsupported_chain(net.layers) is not None
    assert not compiled_predictions("auto", net.layers, "cpu", 1e12)  # auto: the reference path
    assert net.predict_logits(X).shape[0] == 5


def test_a_subclass_must_declare_what_it_fuses_as():
    class Scaled(dp.Dense):  # computes something else than the Dense it extends
        def forward(self, x, *, training=False):
            return 2 * super().forward(x, training=training)

    net = dp.Sequential(Scaled(3, 2, rng=np.random.default_rng(0)))
    assert "a Scaled layer" in unsupported_chain(net.layers)


def test_engine_names_and_devices_are_checked():
    net = dp.mlp([3, 2], rng=np.random.default_rng(9))
    with pytest.raises(
        ValueError, match="engine must be 'auto', 'compiled' or 'reference', got 'jit'"
    ):
        net.predict_logits(np.zeros((2, 3)), engine="jit")
    with pytest.raises(ValueError, match="the model is on cuda:0 .the compiled kernels run on"):
        compiled_predictions("compiled", net.layers, "cuda:0", 1.0)
    assert not compiled_predictions("auto", net.layers, "cuda:0", 1e12)


def test_a_slice_of_a_model_reads_its_own_span_of_the_flat_buffer():
    rng = np.random.default_rng(10)
    net = dp.mlp([6, 8, 5, 3], rng=rng)
    tail = net[2:]  # Dense(8, 5), ReLU, Dense(5, 3): parameters from the middle of the buffer
    X = rng.standard_normal((30, 8)).astype(np.float32)
    np.testing.assert_allclose(
        tail.predict_logits(X, engine="compiled"),
        tail.predict_logits(X, engine="reference"),
        rtol=2e-5,
        atol=1e-6,
    )


def recording_forward_rows(monkeypatch) -> list[int]:
    """The row counts compiled inference is called with, from now on (it still runs)."""
    calls: list[int] = []
    real = compiled_inference.forward_rows

    def recorded(layers, values, x, *rest):
        calls.append(x.shape[0])
        return real(layers, values, x, *rest)

    monkeypatch.setattr("deltaprop.nn.sequential.forward_rows", recorded)
    return calls


def test_evaluate_scores_with_compiled_inference_and_the_same_numbers_to_rounding(monkeypatch):
    rng = np.random.default_rng(11)
    net = dp.mlp([12, 20, 4], rng=rng)
    X = rng.standard_normal((500, 12)).astype(np.float32)
    y = rng.integers(0, 4, 500)
    loss = dp.SoftmaxCrossEntropy()
    reference = dp.evaluate(net, loss, X, y, engine="reference", batch_size=64)
    assert 0 < reference["accuracy"] < 1 and reference["loss"] > 1.0  # an untrained network
    calls = recording_forward_rows(monkeypatch)
    compiled = dp.evaluate(net, loss, X, y, engine="compiled", batch_size=64)
    assert calls == [500]  # the whole set, once
    assert compiled["accuracy"] == reference["accuracy"]
    assert compiled["loss"] == pytest.approx(reference["loss"], rel=1e-6)
    monkeypatch.setattr(compiled_inference, "PREDICT_AUTO_WORK", 500 * net.flat_values.size)
    assert dp.evaluate(net, loss, X, y, batch_size=64) == compiled  # auto, from the stated work
    assert calls == [500, 500]
    dp.evaluate(net, loss, X[:499], y[:499])  # under the work: the reference path
    assert calls == [500, 500]
    with pytest.raises(ValueError, match="engine must be 'auto', 'compiled' or 'reference'"):
        dp.evaluate(net, loss, X, y, engine="fast")


def test_a_compiled_fit_scores_its_validation_rows_compiled(monkeypatch):
    rng = np.random.default_rng(12)
    net = dp.mlp([6, 10, 3], rng=rng)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    opt = dp.Adam(net.parameters())
    calls = recording_forward_rows(monkeypatch)

    def fit(engine, epochs):
        return dp.fit(
            net, dp.SoftmaxCrossEntropy(), opt, X[:200], y[:200], epochs=epochs, batch_size=50,
            validation_data=(X[200:], y[200:]), engine=engine, verbose=0, rng=rng,
        )  # fmt: skip

    history = fit("compiled", 2)
    assert calls == [100, 100]  # 100 validation rows, far under the auto threshold
    scores = dp.evaluate(net, dp.SoftmaxCrossEntropy(), X[200:], y[200:], engine="reference")
    assert history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == scores["accuracy"]
    fit("reference", 1)
    assert calls == [100, 100]  # the reference fit scores on the reference path
