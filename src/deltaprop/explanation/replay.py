"""The engine's side of ``dp.explain``: a float64 copy of the model, one training forward and
backward recorded by :func:`~deltaprop.explanation.trace.trace`, and central differences of the
loss to check each gradient against (every entry, or a seeded sample of a large tensor)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend.arrays import Array, as_real_array
from ..nn.formula_text import Formula
from ..nn.layer import Layer
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..validation import check_instance, check_int, check_positive
from .document import Value
from .gradcheck import hold_randomness, numeric_gradient, relative_error, resolution
from .notation import batch_note, delta_sym
from .trace import LayerTrace, trace


@dataclass
class Replay:
    """The float64 copy, its trace, and how to run the rest of it from any layer."""

    model: Sequential
    layers: list[Layer]
    names: list[str]  # the original layers' reprs (the copy computes in float64)
    loss: Loss
    y: Any
    Y: Array  # the targets as (N, K) rows (class indices one-hot)
    n: int
    traces: list[LayerTrace]
    followers: list[list[Layer]]  # the parameter-free layers after each traced layer
    local: list[Array | None]  # f'(z) of each traced layer's followers, if element-wise
    y_hat: Array
    value: float  # L, the L2 penalty included
    reset: Callable[[], None]
    eps: float
    tolerance: float
    sample: int
    rng: np.random.Generator

    def loss_from(self, position: int, value: Array) -> float:
        """L after running layers[position:] from ``value``, the L2 penalty included."""
        self.reset()
        out = value
        for layer in self.layers[position:]:
            out = layer.forward(out, training=True)
        data = self.loss.forward(out, self.y)
        return data + self.model.penalty() / self.loss.normalizer

    def rows(self, array: Array) -> Array:
        """One sample's row as the seed's column vector (1-D); a batch as it is."""
        return array[0] if self.n == 1 else array

    def checked_delta(self, layer_no: int) -> Value:
        """δ⁽ˡ⁾, one row per sample, checked in z⁽ˡ⁾ (the input of the layers after it)."""
        t = self.traces[layer_no - 1]
        return self.checked(
            f"delta{layer_no}",
            delta_sym(layer_no),
            self.rows(t.delta * self.n),
            t.delta,
            t.z,
            t.position + 1,
            t.z,
            note=batch_note(self.n),
        )

    def checked(
        self,
        key: str,
        name: Formula,
        shown: Array,
        analytic: Array,
        target: Array,
        position: int,
        source: Array,
        *,
        note: str = "",
    ) -> Value:
        """``shown`` with the check of ``analytic`` against central differences of L in
        ``target``, an array that layers[position:] read when run from ``source``."""
        pick = None
        if target.size > self.sample:
            pick = np.sort(self.rng.choice(target.size, self.sample, replace=False))
        numeric = numeric_gradient(
            lambda: self.loss_from(position, source), target, self.eps, entries=pick
        )
        chosen = analytic if pick is None else analytic.reshape(-1)[pick]
        floor = resolution(self.value, self.eps, chosen.size, self.tolerance)
        return Value(
            key,
            name,
            shown,
            note=note,
            relative_error=relative_error(chosen, numeric, floor=floor),
            checked=chosen.size,
        )

    def checked_local(
        self,
        key: str,
        name: Formula,
        shown: Array,
        analytic: Array,
        fn: Callable[[Array], Array],
        at: Array,
        *,
        relative_step: bool = False,
        note: str = "",
    ) -> Value:
        """``shown`` with the check of a local derivative: ``analytic`` (N, K) is d fn / d at
        entry by entry for an element-wise ``fn`` (every entry is perturbed at once), or
        (N, K, K) the Jacobian of a row-wise ``fn``. ``relative_step``: a step proportional to
        each entry (for functions of probabilities near 0)."""
        h = (
            self.eps * np.where(at == 0, 1.0, np.abs(at))
            if relative_step
            else np.full_like(at, self.eps)
        )
        if analytic.ndim == at.ndim:
            numeric = (fn(at + h) - fn(at - h)) / (2 * h)
        else:
            numeric = np.empty_like(analytic)
            for k in range(at.shape[1]):
                step = np.zeros_like(at)
                step[:, k] = h[:, k]
                numeric[:, :, k] = (fn(at + step) - fn(at - step)) / (2 * h[:, k : k + 1])
        level = float(np.max(np.abs(fn(at)), initial=0.0))
        floor = resolution(level, self.eps, analytic.size, self.tolerance)
        return Value(
            key,
            name,
            shown,
            note=note,
            relative_error=relative_error(analytic, numeric, floor=floor),
            checked=analytic.size,
        )

    def run(self, layers: list[Layer], value: Array) -> Array:
        """``layers`` applied to ``value`` in training mode, dropout masks held fixed."""
        self.reset()
        for layer in layers:
            value = layer.forward(value, training=True)
        return value.copy()  # layers hand out reused storage


def local_gradient(followers: list[Layer], shape: tuple[int, ...]) -> Array | None:
    """f'(z) of element-wise followers, from their own backward (None if one is not)."""
    if not followers or any(f.formula is None for f in followers):
        return None
    grad = np.ones(shape)
    for layer in reversed(followers):
        grad = layer.backward(grad).copy()
    return grad


def replay(
    model: Layer,
    loss: Loss,
    X: Any,
    y: Any,
    *,
    seed: int,
    eps: float,
    tolerance: float,
    sample: int,
) -> Replay:
    check_instance("explain: model", model, Layer, "dp.mlp([3, 4, 1], rng=rng)")
    check_instance("explain: loss", loss, Loss, "dp.SigmoidBinaryCrossEntropy()")
    clone = copy.deepcopy(model).astype(np.float64).to("cpu")  # a float64 copy on the host
    net = clone if isinstance(clone, Sequential) else Sequential(clone)
    X64 = net.as_input(as_real_array(X, name="X").astype(np.float64), name="X")
    if len(X64) == 0:
        raise ValueError("explain: X has no rows")
    net.offer_rng(np.random.default_rng(seed))  # dropout masks, if the model has no generator
    reset = hold_randomness(net)
    record = trace(net, loss, X64, y)
    if not record.layers:
        raise ValueError("explain: the model has no layer with parameters to explain")
    layers = list(net)
    ends = [t.position for t in record.layers[1:]] + [len(layers)]
    followers = [layers[t.position + 1 : end] for t, end in zip(record.layers, ends, strict=True)]
    local = [local_gradient(f, t.z.shape) for f, t in zip(followers, record.layers, strict=True)]
    prepared = loss.prepare_targets(y, record.y_hat.shape[1])
    Y = np.eye(record.y_hat.shape[1])[prepared] if prepared.ndim == 1 else prepared
    return Replay(
        model=net,
        layers=layers,
        names=[repr(layer) for layer in (model if isinstance(model, Sequential) else [model])],
        loss=loss,
        y=y,
        Y=np.asarray(Y, dtype=np.float64),
        n=len(X64),
        traces=record.layers,
        followers=followers,
        local=local,
        y_hat=record.y_hat,
        value=record.loss,
        reset=reset,
        eps=eps,
        tolerance=tolerance,
        sample=sample,
        rng=np.random.default_rng(seed),
    )


def check_options(seed: int, tolerance: float, eps: float, sample: int) -> None:
    check_int("seed", seed, 0, owner="explain")
    check_positive("tolerance", tolerance, owner="explain")
    check_positive("eps", eps, owner="explain")
    check_int("sample", sample, 1, owner="explain")
