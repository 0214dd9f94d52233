"""A loss of the user's own: its value and its gradient as two functions, the batch mean owned
by the base class as for every loss.

A fused loss of :mod:`deltaprop.nn.losses` derives δ = ŷ − y once and for all; a custom loss
(Huber, focal, quantile, ...) has no such cancellation, so it gives the per-sample gradient
∂ℓ_n/∂z_n itself — and ``dp.gradcheck.check_model(net, loss, X, y)`` checks it against central
differences of the value, as every gradient in deltaprop is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend.arrays import Array, to_host
from ..errors import ForwardNotCalledError, ShapeError
from ..validation import check_choice, check_finite
from .losses import Loss, _as_2d_targets, _weighted_sum


def _identity(logits: Array) -> Array:
    return logits.copy()


class CustomLoss(Loss):
    """A loss from two functions of the logits Z (N, K) and the targets Y (N, K):

    - ``value(Z, Y) -> (N,)``: ℓ_n, each sample's loss (the base class takes their mean, or
      their weighted mean with ``sample_weight``);
    - ``gradient(Z, Y) -> (N, K)``: ∂ℓ_n/∂z_n, each sample's own — not divided by N: the
      loss owns the batch mean here as everywhere (``backward`` returns it over N);
    - ``predict(Z) -> (N, K)``: the output activation (default: the identity).

    Targets are numbers, (N,) for one output or (N, K); for ``task="classification"`` they are
    class indices (N,), given to the functions as one-hot rows, or such rows themselves, and the
    accuracy counts rows whose largest ``predict`` output is the target class.

    Example — the Huber loss, regression::

        def huber(Z, Y):  # (N,)
            r = np.abs(Z - Y)
            return np.sum(np.where(r <= 1, 0.5 * r**2, r - 0.5), axis=1)

        def huber_gradient(Z, Y):  # (N, K): ∂ℓ_n/∂z_n
            return np.clip(Z - Y, -1.0, 1.0)

        loss = dp.CustomLoss(huber, huber_gradient)

    It is code, so a model file does not store it: save the network alone (``dp.save(net,
    path)``) and give the loss again after ``dp.load``. ``dp.explain`` writes out the fused
    losses only; the compiled epoch does not run it (``fit`` takes the reference path).

    Raises:
        TypeError: for arguments that are not callables.
        ValueError: for a ``task`` other than regression or classification.
    """

    written_out = False

    def __init__(
        self,
        value: Callable[[Array, Array], Any],
        gradient: Callable[[Array, Array], Any],
        predict: Callable[[Array], Any] = _identity,
        *,
        task: str = "regression",
    ) -> None:
        super().__init__()
        for name, function in (("value", value), ("gradient", gradient), ("predict", predict)):
            if not callable(function):
                raise TypeError(
                    f"CustomLoss: {name} must be a function, got {type(function).__name__}"
                )
        self.value, self.gradient, self.output = value, gradient, predict
        self.task = check_choice(  # type: ignore[misc]  # per instance, not per class
            "task", task, ("regression", "classification"), owner="CustomLoss"
        )
        self._z: Array | None = None

    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        name = type(self).__name__
        y = np.asarray(y)
        if self.task == "classification" and y.ndim == 1 and y.dtype.kind in "biu":
            if ((y < 0) | (y >= n_outputs)).any():
                raise ValueError(
                    f"{name}: class indices must lie in [0, {n_outputs}), got {y.min()} to "
                    f"{y.max()}"
                )
            return np.eye(n_outputs)[y]  # one-hot rows, as the functions take them
        return _as_2d_targets(name, y, n_outputs, np.dtype(np.float64))

    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        self._z = logits
        self._y_hat = logits  # backward asks its own gradient, not ŷ − y
        rows = self._checked(self.value(logits, y.astype(logits.dtype)), (len(logits),), "value")
        return _weighted_sum(rows, sample_weight)

    def backward(self) -> Array:
        """D = ∂L/∂Z: ``gradient(Z, Y)`` over N (w_n / Σ w per row with weights). (N, K)."""
        if self._z is None or self._y is None:
            raise ForwardNotCalledError("CustomLoss.backward called before forward(logits, y)")
        z = self._z
        D = self._checked(self.gradient(z, self._y.astype(z.dtype)), z.shape, "gradient")
        return self._batch_mean(np.array(D, dtype=z.dtype))  # the caller's own copy

    def predict(self, logits: Array) -> Array:
        """The output activation given (the identity by default). Shapes: (N, K) -> (N, K)."""
        return self._checked(self.output(logits), logits.shape, "predict")

    def n_correct(self, logits: Array, y: Array) -> int:
        if self.task != "classification":
            return super().n_correct(logits, y)
        return int(np.sum(np.argmax(self.predict(logits), axis=1) == np.argmax(y, axis=1)))

    def _checked(self, result: Any, shape: tuple[int, ...], name: str) -> Array:
        """A function's result as an array of ``shape``, finite; else an error naming it."""
        array = np.asarray(to_host(result), dtype=np.float64)
        if array.shape != tuple(shape):
            raise ShapeError(
                f"CustomLoss: {name}(...) returned shape {array.shape}, expected {tuple(shape)}"
            )
        check_finite(f"{name}(...)", array, owner="CustomLoss")
        return array
