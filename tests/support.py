"""Shared by the tests: a saved model file and small classification runs."""

import numpy as np

import deltaprop as dp


def network(rng, dtype=np.float32):
    return dp.Sequential(
        dp.Dense(4, 8, rng=rng, dtype=dtype),
        dp.ReLU(),
        dp.Dense(8, 6, rng=rng, dtype=dtype),
        dp.LeakyReLU(0.2),
        dp.Dense(6, 3, rng=rng, dtype=dtype),
    )


def classification_data(rng, n=200, d=5, k=3):
    """N rows of d features whose class is the largest of the first k (with a little noise)."""
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = np.argmax(X[:, :k] + 0.1 * rng.standard_normal((n, k)), axis=1)
    return X, y


def train_small(seed, epochs=3, *, batch_size=16, verbose=0, **kwargs):
    """A 5-16-3 ReLU network trained with Adam on classification_data, seeded."""
    rng = np.random.default_rng(seed)
    X, y = classification_data(np.random.default_rng(1))
    net = dp.mlp([5, 16, 3], rng=rng)
    loss = dp.SoftmaxCrossEntropy()
    opt = kwargs.pop("opt", None) or dp.Adam(net.parameters(), lr=1e-2)
    history = dp.fit(
        net,
        loss,
        opt,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
        verbose=verbose,
        **kwargs,
    )
    return net, history
