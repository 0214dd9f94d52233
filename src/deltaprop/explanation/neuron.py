"""The seed's single neuron, z = w x + b, a = σ(z), binary cross-entropy: the chain rule
∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w = (a − y) x on live numbers, checked."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.dense import Dense
from ..nn.formula_text import Formula
from ..nn.losses import SigmoidBinaryCrossEntropy
from ..nn.sequential import Sequential
from .document import Equation, Explanation, Prose, Step, Value
from .notation import chain_rule
from .replay import check_options, replay

NEURON_CHAIN_TEX = (
    r"\dfrac{\partial L}{\partial a} \cdot \dfrac{\partial a}{\partial z} \cdot "
    r"\dfrac{\partial z}{\partial w}"
)


def explain_neuron(
    x: float, y: float, *, w: float, b: float, tolerance: float = 1e-6, eps: float = 1e-6
) -> Explanation:
    """The seed's single neuron: z = w x + b, a = σ(z), binary cross-entropy, and the chain
    rule ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w = (a − y) x on these numbers, checked."""
    check_options(0, tolerance, eps, 1)
    dense = Dense(1, 1, rng=np.random.default_rng(0), dtype=np.float64)
    dense.W.value[...], dense.b.value[...] = w, b  # type: ignore[union-attr]
    loss = SigmoidBinaryCrossEntropy()
    net = replay(
        Sequential(dense), loss, [[x]], [y], seed=0, eps=eps, tolerance=tolerance, sample=1
    )
    t = net.traces[0]
    a_value, x_value = float(net.y_hat[0, 0]), float(t.a_prev[0, 0])
    dl_da, da_dz = (float(v[0, 0]) for v in loss.derivation.factors(net.y_hat, net.Y))
    X = t.a_prev

    def scalar(key: str, name: tuple[str, str], value: float) -> Value:
        return Value(key, Formula(*name), np.array(value))

    forward = Step(
        "A single neuron: forward",
        "forward",
        [
            Prose("The loss depends on the weight through intermediate steps:"),
            Equation(Formula("z = w x + b", "z = wx + b")),
            Equation(
                Formula("a = σ(z) = 1 / (1 + e^(−z))", r"a = \sigma(z) = \dfrac{1}{1+e^{-z}}")
            ),
            Equation(
                Formula("L = −[y log(a) + (1 − y) log(1 − a)]", r"L = -[y\log(a) + (1-y)\log(1-a)]")
            ),
            scalar("x", ("x", "x"), x_value),
            scalar("w", ("w", "w"), w),
            scalar("b", ("b", "b"), b),
            scalar("z", ("z", "z"), float(t.z[0, 0])),
            scalar("a", ("a", "a"), a_value),
            scalar("y", ("y", "y"), y),
            scalar("L", ("L", "L"), net.value),
        ],
    )
    dw, db = t.grads["W"], t.grads["b"]
    layer = net.layers[0]
    params = dict(layer.named_parameters())  # the copy's, which the checks perturb

    def z_of(weight: np.ndarray) -> np.ndarray:
        """The engine's z at another w (for ∂z/∂w by central differences)."""
        kept = params["W"].value.copy()
        params["W"].value[...] = weight
        z = layer.forward(X, training=True).copy()
        params["W"].value[...] = kept
        return z

    def local(
        key: str, name: tuple[str, str], value: float, fn: Any, at: np.ndarray, relative: bool
    ) -> Value:
        """A local derivative, checked by central differences of ``fn`` at ``at``."""
        return net.checked_local(
            key,
            Formula(*name),
            np.array(value),
            np.full((1, 1), value),
            fn,
            at,
            relative_step=relative,
        )

    def dw_value(key: str, name: tuple[str, str], value: float) -> Value:
        """A value of ∂L/∂w, checked by central differences of L in w."""
        return net.checked(
            key, Formula(*name), np.array(value), np.full((1, 1), value), params["W"].value, 0, X
        )

    backward = Step(
        "Applying the chain rule to a single neuron",
        "neuron",
        [
            Prose("The chain rule traces how a change in w propagates to L:"),
            Equation(
                Formula(
                    "∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂w",
                    r"\dfrac{\partial L}{\partial w} = " + NEURON_CHAIN_TEX,
                )
            ),
            Equation(Formula("∂z/∂w = x", r"\dfrac{\partial z}{\partial w} = x")),
            local(
                "dz_dw",
                ("∂z/∂w", r"\dfrac{\partial z}{\partial w}"),
                x_value,
                z_of,
                params["W"].value.copy(),
                False,
            ),
            Equation(
                Formula(
                    "∂a/∂z = σ(z)(1 − σ(z)) = a(1 − a)",
                    r"\dfrac{\partial a}{\partial z} = \sigma(z)(1-\sigma(z)) = a(1-a)",
                )
            ),
            local(
                "da_dz",
                ("∂a/∂z", r"\dfrac{\partial a}{\partial z}"),
                da_dz,
                loss.predict,
                t.z,
                False,
            ),
            Equation(
                Formula(
                    "∂L/∂a = −y/a + (1 − y)/(1 − a)",
                    r"\dfrac{\partial L}{\partial a} = -\dfrac{y}{a} + \dfrac{1-y}{1-a}",
                )
            ),
            local(
                "dL_da",
                ("∂L/∂a", r"\dfrac{\partial L}{\partial a}"),
                dl_da,
                lambda a: loss.derivation.terms(a, net.Y),
                net.y_hat,
                True,
            ),
            Prose("Multiplied, a(1 − a) cancels the denominator of ∂L/∂a:"),
            dw_value(
                "product", ("∂L/∂a · ∂a/∂z · ∂z/∂w", NEURON_CHAIN_TEX), dl_da * da_dz * x_value
            ),
            dw_value("a_minus_y_x", ("(a − y) · x", r"(a-y) \cdot x"), (a_value - y) * x_value),
            dw_value(
                "dW1", ("∂L/∂w (the engine's)", r"\dfrac{\partial L}{\partial w}"), float(dw[0, 0])
            ),
            Equation(
                Formula("∂L/∂b = (a − y) · 1", r"\dfrac{\partial L}{\partial b} = (a-y) \cdot 1")
            ),
            net.checked(
                "db1",
                Formula("∂L/∂b", r"\dfrac{\partial L}{\partial b}"),
                db.reshape(()),
                db,
                params["b"].value,
                0,
                X,
            ),
        ],
    )
    summary = Step(
        "Forward and back propagation",
        "summary",
        [
            Prose("Forward propagation: calculate z, then a, then the loss L."),
            Prose(
                "Back propagation: calculate the gradient from a and the truth label y, "
                "∂L/∂w = (a − y) x."
            ),
        ],
    )
    return Explanation(
        title="The chain rule on a single neuron",
        summary=(
            "One sigmoid neuron with binary cross-entropy; the numbers are deltaprop's own "
            "(float64), and each gradient is checked by central differences."
        ),
        network=[repr(dense)],
        loss_name=type(loss).__name__,
        loss=net.value,
        n_samples=1,
        tolerance=tolerance,
        steps=[chain_rule(), forward, backward, summary],
    )
