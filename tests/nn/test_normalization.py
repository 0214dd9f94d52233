"""Batch and layer normalization: derived, checked by finite differences, trained with, saved."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import gradcheck
from support import classification_data


def _with_random_scale_and_shift(layer, rng):
    layer.weight.value[...] = rng.uniform(0.5, 2.0, layer.weight.value.shape)
    layer.bias.value[...] = rng.standard_normal(layer.bias.value.shape)
    return layer


@pytest.mark.parametrize("kind", [dp.BatchNorm, dp.LayerNorm])
def test_normalization_layers_pass_the_gradient_check_in_training_mode(rng, kind):
    layer = _with_random_scale_and_shift(kind(6, dtype=np.float64), rng)
    x = rng.standard_normal((7, 6)) * 3 + 1
    report = gradcheck.check_layer(layer, x)
    assert report.ok, str(report)
    assert set(report.errors) == {"weight", "bias", "input"}
    assert max(report.errors.values()) < 1e-6


def test_a_model_with_both_normalizations_and_dropout_passes_the_gradient_check(rng):
    model = dp.Sequential(
        # the bias before batch norm has gradient 0: checked within the differences' resolution
        dp.Dense(4, 8, rng=rng, dtype=np.float64),
        _with_random_scale_and_shift(dp.BatchNorm(8, dtype=np.float64), rng),
        dp.ReLU(),
        dp.Dropout(0.3, rng=np.random.default_rng(4)),
        dp.Dense(8, 5, rng=rng, dtype=np.float64),
        _with_random_scale_and_shift(dp.LayerNorm(5, dtype=np.float64), rng),
        dp.Tanh(),
        dp.Dense(5, 3, rng=rng, dtype=np.float64),
    )
    X, y = rng.standard_normal((9, 4)), rng.integers(0, 3, 9)
    report = gradcheck.check_model(model, dp.SoftmaxCrossEntropy(), X, y)
    assert report.ok, str(report)
    assert max(report.errors.values()) < 1e-6


def test_batch_norm_backward_is_the_full_derivative_not_the_constant_statistics_one(rng):
    """With μ and σ² treated as constants, ∂L/∂x would be g γ / σ; the full derivative removes
    the batch mean of ĝ, so each feature's input gradient sums to zero over the batch."""
    layer = _with_random_scale_and_shift(dp.BatchNorm(4, dtype=np.float64), rng)
    x = rng.standard_normal((10, 4))
    layer.forward(x, training=True)
    g = rng.standard_normal((10, 4))
    grad_x = layer.backward(g)
    np.testing.assert_allclose(grad_x.sum(axis=0), 0.0, atol=1e-12)
    simplified = g * layer.weight.value / np.sqrt(x.var(axis=0) + 1e-5)
    assert np.abs(grad_x - simplified).max() > 0.1


def test_batch_norm_training_output_and_running_statistics_follow_pytorch_conventions(rng):
    layer = dp.BatchNorm(3, momentum=0.2, eps=1e-3, dtype=np.float64)
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.standard_normal((6, 3)) * [1.0, 2.0, 5.0] + [0.0, -1.0, 3.0]
        out = layer.forward(x, training=True)
        mean, biased = x.mean(axis=0), x.var(axis=0)
        np.testing.assert_allclose(out, (x - mean) / np.sqrt(biased + 1e-3), atol=1e-12)
        expected_mean = 0.8 * expected_mean + 0.2 * mean
        expected_var = 0.8 * expected_var + 0.2 * x.var(axis=0, ddof=1)  # unbiased
    np.testing.assert_allclose(layer.running_mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, expected_var, rtol=1e-12)
    assert int(layer.num_batches_tracked) == 4
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(
        layer.forward(x), (x - expected_mean) / np.sqrt(expected_var + 1e-3), rtol=1e-12
    )


def test_layer_norm_normalizes_each_row_the_same_in_training_and_evaluation(rng):
    layer = _with_random_scale_and_shift(dp.LayerNorm(5, eps=1e-4, dtype=np.float64), rng)
    x = rng.standard_normal((4, 5)) * 3 + 2
    x_hat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-4)
    expected = x_hat * layer.weight.value + layer.bias.value
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


def _bn_net(rng, dtype=np.float32):
    return dp.Sequential(
        dp.Dense(5, 16, rng=rng, dtype=dtype),
        dp.BatchNorm(16, dtype=dtype),
        dp.ReLU(),
        dp.Dropout(0.2),
        dp.Dense(16, 8, rng=rng, dtype=dtype),
        dp.LayerNorm(8, dtype=dtype),
        dp.ReLU(),
        dp.Dense(8, 3, rng=rng, dtype=dtype),
    )


def _train(net, X, y, epochs=3, **kwargs):
    return dp.fit(
        net,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(net.parameters(), lr=0.01),
        X,
        y,
        epochs=epochs,
        batch_size=16,
        rng=np.random.default_rng(5),
        verbose=0,
        **kwargs,
    )


def test_fit_uses_batch_statistics_in_training_and_running_ones_in_validation_and_predict():
    X, y = classification_data(np.random.default_rng(1), n=96)
    net = _bn_net(np.random.default_rng(0), np.float64)
    history = _train(net, X, y, epochs=3, validation_data=(X[:40], y[:40]))
    bn = net.layers[1]
    assert int(bn.num_batches_tracked) == 3 * 6  # training batches only, not validation
    assert history["accuracy"][-1] > 0.6
    loss = dp.SoftmaxCrossEntropy()
    whole = dp.predict(net, loss, X)
    rows = np.vstack([dp.predict(net, loss, X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(whole, rows, rtol=1e-12, atol=1e-15)
    halves = np.vstack([dp.predict(net, loss, X[::2]), dp.predict(net, loss, X[1::2])])
    np.testing.assert_allclose(halves, np.vstack([whole[::2], whole[1::2]]), rtol=1e-12)
    assert int(bn.num_batches_tracked) == 18  # predicting leaves the statistics alone


def test_running_statistics_are_saved_loaded_and_resumed_exactly(tmp_path):
    X, y = classification_data(np.random.default_rng(1), n=96)
    net = _bn_net(np.random.default_rng(0))
    _train(net, X, y)
    path = tmp_path / "bn.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    loaded, loss = dp.load(path)
    for name, tensor in net.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], tensor, err_msg=name)
    assert loaded.state_dict()["1.num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(dp.predict(loaded, loss, X), dp.predict(net, loss, X))

    def run(epochs, checkpoint, resume=False):
        model = _bn_net(np.random.default_rng(0))
        _train(
            model,
            X,
            y,
            epochs=epochs,
            callbacks=[dp.ModelCheckpoint(checkpoint)],
            resume_from=checkpoint if resume else None,
        )
        return model.state_dict()

    full = run(4, tmp_path / "full.ckpt")
    run(2, tmp_path / "part.ckpt")
    resumed = run(4, tmp_path / "part.ckpt", resume=True)
    for name, tensor in full.items():
        np.testing.assert_array_equal(resumed[name], tensor, err_msg=name)


def test_a_model_file_with_batch_norm_loads_into_the_equivalent_torch_sequential(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    X, y = classification_data(np.random.default_rng(1), n=96)
    net = _bn_net(np.random.default_rng(0))
    _train(net, X, y)
    path = tmp_path / "bn.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    twin = torch.nn.Sequential(
        torch.nn.Linear(5, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 8),
        torch.nn.LayerNorm(8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    )
    twin.load_state_dict(load_file(str(path)), strict=True)
    twin.eval()
    with torch.no_grad():
        logits = twin(torch.from_numpy(X.astype(np.float32))).numpy()
    np.testing.assert_allclose(logits, net.predict_logits(X.astype(np.float32)), atol=1e-5)


def test_batch_norm_training_step_matches_torch(rng):
    torch = pytest.importorskip("torch")
    layer = _with_random_scale_and_shift(dp.BatchNorm(4, momentum=0.3, dtype=np.float64), rng)
    twin = torch.nn.BatchNorm1d(4, momentum=0.3).double()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.weight.value))
        twin.bias.copy_(torch.from_numpy(layer.bias.value))
    x, g = rng.standard_normal((6, 4)) * 2, rng.standard_normal((6, 4))
    x_t = torch.from_numpy(x).requires_grad_()
    out_t = twin(x_t)
    out_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.forward(x, training=True), out_t.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.backward(g), x_t.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, twin.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.running_var, twin.running_var.numpy(), rtol=1e-12)


def test_early_stopping_restores_the_running_statistics_of_the_best_epoch():
    X, y = classification_data(np.random.default_rng(1), n=96)
    net = _bn_net(np.random.default_rng(0))

    class Record(dp.Callback):
        def __init__(self):
            self.means = []

        def on_epoch_end(self, run, epoch, logs):
            self.means.append(run.model.layers[1].running_mean.copy())

    stopper = dp.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    record = Record()
    # A validation set from another distribution: the best epoch is not the last one.
    X_val, y_val = X[:30] * 3 + 1, (y[:30] + 1) % 3
    _train(net, X, y, epochs=8, validation_data=(X_val, y_val), callbacks=[stopper, record])
    assert 0 <= stopper.best_epoch < 7
    np.testing.assert_array_equal(net.layers[1].running_mean, record.means[stopper.best_epoch])
    assert not np.array_equal(record.means[-1], record.means[stopper.best_epoch])


def test_bad_arguments_and_inputs_are_refused_naming_the_layer_and_value(rng):
    with pytest.raises(ValueError, match="BatchNorm: num_features must be .* got 0"):
        dp.BatchNorm(0)
    with pytest.raises(ValueError, match=r"BatchNorm: momentum must be .* got 1.5"):
        dp.BatchNorm(4, momentum=1.5)
    with pytest.raises(ValueError, match="LayerNorm: eps must be .* got -1"):
        dp.LayerNorm(4, eps=-1)
    with pytest.raises(dp.ShapeError, match=r"BatchNorm\(4\): input has 3 features .*expected 4"):
        dp.BatchNorm(4).forward(np.ones((5, 3)), training=True)
    with pytest.raises(dp.ShapeError, match=r"LayerNorm\(4\): input has 6 features .*expected 4"):
        dp.LayerNorm(4).forward(np.ones((5, 6)))
    with pytest.raises(ValueError, match=r"BatchNorm\(4\): a training batch needs at least 2 rows"):
        dp.BatchNorm(4).forward(np.ones((1, 4)), training=True)
    assert dp.BatchNorm(4).forward(np.ones((1, 4))).shape == (1, 4)  # evaluation: any batch


def test_fit_refuses_a_batch_size_that_leaves_one_row_for_batch_norm_before_training():
    X, y = classification_data(np.random.default_rng(1), n=33)
    net = _bn_net(np.random.default_rng(0))
    before = net.flat_values.copy()
    with pytest.raises(ValueError, match=r"BatchNorm\(16.*33 training rows .*batch_size=16.* 1"):
        _train(net, X, y)
    np.testing.assert_array_equal(net.flat_values, before)
    assert int(net.layers[1].num_batches_tracked) == 0
    _train(net, X[:32], y[:32], epochs=1)  # 2 full batches: trains
    assert int(net.layers[1].num_batches_tracked) == 2


def test_trace_follows_a_model_with_normalization(rng):
    model = dp.Sequential(
        dp.Dense(3, 4, rng=rng, dtype=np.float64),
        dp.BatchNorm(4, dtype=np.float64),
        dp.ReLU(),
        dp.Dense(4, 2, rng=rng, dtype=np.float64),
    )
    X, y = rng.standard_normal((6, 3)), rng.integers(0, 2, 6)
    record = dp.trace(model, dp.SoftmaxCrossEntropy(), X, y)
    assert [t.layer for t in record.layers] == ["Dense", "BatchNorm", "Dense"]
    bn = record.layers[1]
    assert bn.activation == "ReLU"
    np.testing.assert_allclose(bn.grads["weight"], np.sum(bn.delta * model.layers[1]._x_hat, 0))
    np.testing.assert_allclose(bn.grad_a_prev.sum(axis=0), 0.0, atol=1e-12)
