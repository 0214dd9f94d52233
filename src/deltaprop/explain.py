"""The seed's derivation replayed on live numbers: one forward and backward, every quantity kept.

``trace(model, loss, X, y)`` records, for each Dense layer l (numbered from 1 as in the seed):

- ``z``      = a_{l−1} W_lᵀ + b_l                     (N, out)
- ``a``      = f(z), the activation that follows (ŷ for the output layer)
- ``delta``  = ∂L/∂z_l: ŷ − y (over N) at the output, (δ_{l+1} W_{l+1}) ⊙ f'(z_l) below
- ``dW``     = δ_lᵀ a_{l−1}, the sum of the N outer products δ aᵀ     (out, in)
- ``db``     = Σ_n δ_l                                                (out,)
- ``grad_a_prev`` = δ_l W_l, the seed's W_lᵀ δ_l for every row          (N, in)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Array
from .core import Layer
from .layers import Dense
from .losses import Loss
from .model import Sequential, layers_of


@dataclass
class LayerTrace:
    """The quantities of one Dense layer in one forward and backward pass."""

    index: int  # the seed's l, counting Dense layers from 1
    position: int  # index of the Dense layer inside the Sequential
    activation: str  # the function f after z (the loss's output activation for the last layer)
    a_prev: Array
    z: Array
    a: Array
    delta: Array
    dW: Array
    db: Array | None
    grad_a_prev: Array

    def shapes(self) -> dict[str, tuple[int, ...]]:
        names = ("a_prev", "z", "a", "delta", "dW", "db", "grad_a_prev")
        return {n: tuple(getattr(self, n).shape) for n in names if getattr(self, n) is not None}


@dataclass
class Trace:
    """A full forward/backward record: per-layer quantities, the loss, ŷ and y."""

    loss: float
    y_hat: Array
    y: Array
    layers: list[LayerTrace] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loss L = {self.loss:.6g}    (mean over N = {self.y_hat.shape[0]} samples)"]
        for t in self.layers:
            lines.append(
                f"layer {t.index}: z({t.index}) = W({t.index}) a({t.index - 1}) + "
                f"b({t.index}),  a({t.index}) = {t.activation}(z({t.index}))"
            )
            for name, shape in t.shapes().items():
                lines.append(f"    {name:<12} shape {shape}")
        return "\n".join(lines)


def trace(model: Layer, loss: Loss, X: Any, y: Any) -> Trace:
    """Run one training forward and backward through ``model`` and ``loss``, keeping every value.

    The model's parameter gradients are set as by an ordinary backward pass.

    Shapes: X (N, in); y as ``loss`` takes it.
    """
    layers = list(layers_of(model))
    x = model._check_model_input(X) if isinstance(model, Sequential) else np.asarray(X)
    inputs: list[Array] = []
    outputs: list[Array] = []
    for layer in layers:
        inputs.append(x)
        x = layer.forward(x, training=True)
        outputs.append(x.copy())
    value = loss.forward(x, y)
    y_hat = loss.predict(x)
    grads_out: list[Array] = [np.empty(0)] * len(layers)  # ∂L/∂(output of layer i)
    grads_in: list[Array] = [np.empty(0)] * len(layers)
    grad = loss.backward().copy()
    for i in reversed(range(len(layers))):
        grads_out[i] = grad
        grad = layers[i].backward(grad).copy()
        grads_in[i] = grad

    record = Trace(loss=value, y_hat=y_hat, y=np.asarray(y))
    dense_positions = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]
    for number, i in enumerate(dense_positions, start=1):
        dense = layers[i]
        assert isinstance(dense, Dense)
        follower = layers[i + 1] if i + 1 < len(layers) else None
        if follower is None or isinstance(follower, Dense):
            activation = type(loss).__name__ if follower is None else "identity"
            a = y_hat if follower is None else outputs[i]
        else:
            activation = type(follower).__name__
            a = outputs[i + 1]
        record.layers.append(
            LayerTrace(
                index=number,
                position=i,
                activation=activation,
                a_prev=inputs[i],
                z=outputs[i],
                a=a,
                delta=grads_out[i],
                dW=dense.W.grad.copy(),
                db=None if dense.b is None else dense.b.grad.copy(),
                grad_a_prev=grads_in[i],
            )
        )
    return record
