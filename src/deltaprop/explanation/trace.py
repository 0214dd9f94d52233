"""The seed's derivation replayed on live numbers: one forward and backward, every quantity kept.

``trace(model, loss, X, y)`` records, for each layer with parameters l (numbered from 1 as in the
seed; for a Dense layer the seed's ``z = W a + b``):

- ``a_prev`` = its input a_{l−1}                                         (N, in)
- ``z``      = its output, e.g. a_{l−1} W_lᵀ + b_l                       (N, out)
- ``a``      = f(z): the output after the parameter-free layers that follow (the activation), or
  ŷ from the loss's output activation for the last layer
- ``delta``  = ∂L/∂z_l of the batch's mean loss L: (ŷ − y)/N at the output, (D_{l+1} W_{l+1}) ⊙
  f'(z_l) below — the code's D, which carries the loss's 1/N
- ``delta_per_sample`` = N · delta: the seed's δ_l of each sample (ŷ − y at the output), one row
  per sample, as README and ``deltaprop explain`` show it
- ``grads``  = each parameter's gradient by name; for Dense ``dW`` = δ_lᵀ a_{l−1}, the sum of the
  N outer products δ aᵀ (out, in), and ``db`` = Σ_n δ_l (out,)
- ``grad_a_prev`` = ∂L/∂a_{l−1}; for Dense δ_l W_l, the seed's W_lᵀ δ_l for every row (N, in)
- ``grad_a``  = ∂L/∂a_l, the gradient arriving at ``a`` (before the activation's local gradient
  turns it into δ_l; at a fused output, where ``a`` is ŷ, it is δ_l itself)
- ``penalty_grads`` = the L2 penalty's term of each gradient, λ W / N for ``Dense(l2=λ)`` (the
  loss's normalizer divides it as it divides the data term); ``grads`` include it, as in ``fit``

The loss L likewise includes the penalty, ½ λ ‖W‖² / N, as ``fit`` reports it.

Every layer is asked only what the Layer protocol offers, so a new layer type is traced as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.arrays import Array, as_float_array, to_host
from ..nn.layer import Layer, on_its_device
from ..nn.losses import Loss
from ..nn.sequential import Sequential


@dataclass
class LayerTrace:
    """The quantities of one layer with parameters in one forward and backward pass."""

    index: int  # the seed's l, counting layers with parameters from 1
    position: int  # index of the layer inside the Sequential
    layer: str  # the layer's class name
    activation: str  # f after z: the following parameter-free layers, or the loss's output
    a_prev: Array
    z: Array
    a: Array
    delta: Array  # ∂L/∂z of the batch mean: the per-sample δ over N (see delta_per_sample)
    grads: dict[str, Array]  # ∂L/∂θ for each of the layer's parameters, by local name
    grad_a_prev: Array
    penalty_grads: dict[str, Array] = field(default_factory=dict)  # the L2 term of grads
    grad_a: Array | None = None  # ∂L/∂a, at the output of the activation after z

    @property
    def delta_per_sample(self) -> Array:
        """The seed's δ of each sample, ∂ℓ_n/∂z_n (ŷ − y at the output), one row per sample:
        N · :attr:`delta`, since ``delta`` is ∂L/∂Z of the mean L = (1/N) Σ_n ℓ_n. Shapes:
        (N, out)."""
        return self.delta * self.delta.shape[0]

    @property
    def dW(self) -> Array | None:
        """∂L/∂W = δ a_prevᵀ (summed over the batch), for a layer with a weight ``W``."""
        return self.grads.get("W")

    @property
    def db(self) -> Array | None:
        """∂L/∂b = Σ_n δ_n, for a layer with a bias ``b``."""
        return self.grads.get("b")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        arrays = {
            "a_prev": self.a_prev,
            "z": self.z,
            "a": self.a,
            "delta": self.delta,
            **{f"d{name}": grad for name, grad in self.grads.items()},
            "grad_a_prev": self.grad_a_prev,
        }
        return {name: tuple(array.shape) for name, array in arrays.items()}


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
                f"layer {t.index} ({t.layer}): z({t.index}) from a({t.index - 1}),  "
                f"a({t.index}) = {t.activation}(z({t.index}))"
            )
            for name, shape in t.shapes().items():
                lines.append(f"    {name:<12} shape {shape}")
            for name in t.penalty_grads:
                lines.append(f"    d{name:<11} = data term + L2 term penalty_grads[{name!r}]")
        return "\n".join(lines)


def trace(model: Layer, loss: Loss, X: Any, y: Any) -> Trace:
    """Run one training forward and backward through ``model`` and ``loss``, keeping every value.

    The model's parameter gradients are set as by an ordinary backward pass. On a GPU the
    pass runs there, and the trace keeps host copies of its values.

    Shapes: X (N, in); y as ``loss`` takes it.
    """
    layers = list(model) if isinstance(model, Sequential) else [model]
    x = as_float_array(X, model.dtype or np.float64, name="X")
    x = on_its_device(model, x)
    inputs: list[Array] = []
    outputs: list[Array] = []
    for layer in layers:
        inputs.append(to_host(x))
        x = layer.forward(x, training=True).copy()
        outputs.append(to_host(x))
    value = loss.forward(x, y)
    y_hat = to_host(loss.predict(x))
    grads_out: list[Array] = [np.empty(0)] * len(layers)  # ∂L/∂(output of layer i)
    grads_in: list[Array] = [np.empty(0)] * len(layers)
    grad = loss.backward().copy()
    for i in reversed(range(len(layers))):
        grads_out[i] = to_host(grad)
        grad = layers[i].backward(grad).copy()
        grads_in[i] = to_host(grad)

    penalty_grads = [_penalty_terms(layer, 1.0 / loss.normalizer) for layer in layers]
    value += model.penalty() / loss.normalizer

    record = Trace(loss=value, y_hat=y_hat, y=np.asarray(y))
    with_parameters = [i for i, layer in enumerate(layers) if layer.parameters()]
    for number, i in enumerate(with_parameters, start=1):
        end = with_parameters[number] if number < len(with_parameters) else len(layers)
        followers = layers[i + 1 : end]
        if end == len(layers) and not followers:
            activation, a = type(loss).__name__, y_hat
        elif followers:
            activation, a = " → ".join(type(f).__name__ for f in followers), outputs[end - 1]
        else:
            activation, a = "identity", outputs[i]
        record.layers.append(
            LayerTrace(
                index=number,
                position=i,
                layer=type(layers[i]).__name__,
                activation=activation,
                a_prev=inputs[i],
                z=outputs[i],
                a=a,
                delta=grads_out[i],
                grads={name: to_host(p.grad).copy() for name, p in layers[i].named_parameters()},
                grad_a_prev=grads_in[i],
                penalty_grads=penalty_grads[i],
                grad_a=grads_out[end - 1],
            )
        )
    return record


def _penalty_terms(layer: Layer, scale: float) -> dict[str, Array]:
    """Add the layer's penalty gradient (× ``scale``) to its parameters' grads, as ``fit`` does,
    and return that term by parameter name (only the parameters it touches)."""
    data = {name: p.grad.copy() for name, p in layer.named_parameters()}
    for _, p in layer.named_parameters():
        p.grad[...] = 0
    layer.penalty_backward(scale)
    terms = {name: to_host(p.grad).copy() for name, p in layer.named_parameters() if np.any(p.grad)}
    for name, p in layer.named_parameters():
        p.grad += data[name]
    return terms
