"""Steps 2 to 5 of the seed's backward pass, for every layer from the output down: the
parameter gradients (∂L/∂W = δ aᵀ, ∂L/∂b = δ), the error sent to the layer below (Wᵀ δ) and the
activation's local gradient there (δ = ∂L/∂a ⊙ f′(z)); then the general rule."""

from __future__ import annotations

import numpy as np

from ..nn.formula_text import Formula
from .document import Part, Prose, Step, Value
from .notation import (
    SUPERSCRIPT,
    a_sym,
    activation_symbol,
    batch_note,
    d_of,
    delta_sym,
    derivative,
    eq,
    gates_note,
    sym,
    z_sym,
)
from .replay import Replay


def parameters_step(net: Replay, layer_no: int, number: int) -> Step:
    t = net.traces[layer_no - 1]
    layer = net.layers[t.position]
    X = net.traces[0].a_prev
    params = dict(layer.named_parameters())
    if not layer.affine:
        parts: list[Part] = [
            Prose(
                f"{type(layer).__name__} is not the seed's z = W a + b: its gradients come from "
                "its own backward (its docstring derives them)."
            )
        ]
        for name, p in params.items():
            symbol = sym(name, rf"\text{{{name}}}", layer_no)
            parts.append(
                net.checked(
                    f"d{name}{layer_no}", d_of(symbol), t.grads[name], t.grads[name], p.value, 0, X
                )
            )
        return Step(
            f"Gradients for layer {layer_no} parameters", "parameters", parts, number, layer_no
        )
    delta, a_prev, n = delta_sym(layer_no), a_sym(layer_no - 1), net.n
    W, b = sym("W", "W", layer_no), sym("b", r"\mathbf{b}", layer_no)
    out, inp = t.z.shape[1], t.a_prev.shape[1]
    z = z_sym(layer_no)
    outer = Formula(f"{delta.text} ({a_prev.text})ᵀ", rf"{delta.tex} ({a_prev.tex})^T")
    parts = [
        Prose(
            f"How much each weight of {W.text} contributed to the error: L depends on {z.text}, "
            f"and {z.text} = {W.text} {a_prev.text} + {b.text} "
            f"depends on {W.text} through its input {a_prev.text}. To get a matrix shaped like "
            f"{W.text} ({out}, {inp}) from two column vectors: the outer product, error times "
            "input."
        ),
        eq(d_of(W), outer, shapes=f"({out}, {inp}) = ({out}, 1)·(1, {inp})"),
    ]
    if n > 1:
        parts.append(
            Prose(
                f"With N = {n} samples the gradient is the mean of the samples' outer products. "
                "The code does all of them in one matrix product, dW = Dᵀ A, with D = δ / N "
                "(one row per sample) and A the inputs (one row per sample)."
            )
        )
        for k in range(min(n, 3)):
            parts.append(
                Value(
                    f"outer{layer_no}_{k + 1}",
                    Formula(
                        f"{delta.text}_{k + 1} ({a_prev.text}_{k + 1})ᵀ",
                        rf"{delta.tex}_{{{k + 1}}} ({a_prev.tex}_{{{k + 1}}})^T",
                    ),
                    np.outer(t.delta[k] * n, t.a_prev[k]),
                )
            )
        parts.append(
            eq(
                d_of(W),
                Formula("(1/N) Σ_n δ_n a_nᵀ", r"\frac{1}{N}\sum_n \delta_n \mathbf{a}_n^T"),
                Formula("Dᵀ A", "D^T A"),
                shapes=f"({out}, {inp}) = ({out}, {n})·({n}, {inp})",
            )
        )
    if "W" in t.penalty_grads:
        parts += [
            Prose(
                "The layer's L2 penalty ½ λ ‖W‖², divided by N like the data term, adds λ W / N:"
            ),
            Value(
                f"l2_{layer_no}",
                Formula(f"λ {W.text} / N", rf"\lambda {W.tex} / N"),
                t.penalty_grads["W"],
            ),
        ]
    parts.append(
        net.checked(f"dW{layer_no}", d_of(W), t.grads["W"], t.grads["W"], params["W"].value, 0, X)
    )
    if "b" in params:
        mean = Formula("(1/N) Σ_n δ_n", r"\frac{1}{N}\sum_n \delta_n")
        parts += [
            Prose("For the bias the input is always 1, so its gradient is the error itself."),
            eq(d_of(b), delta if n == 1 else mean),
            net.checked(
                f"db{layer_no}", d_of(b), t.grads["b"], t.grads["b"], params["b"].value, 0, X
            ),
        ]
    names = ", ".join(name.text for name in ((W, b) if "b" in params else (W,)))
    return Step(
        f"Gradients for layer {layer_no} parameters ({names})",
        "parameters",
        parts,
        number,
        layer_no,
    )


def propagate_step(net: Replay, layer_no: int, number: int) -> Step:
    t = net.traces[layer_no - 1]
    layer = net.layers[t.position]
    a_prev, delta = a_sym(layer_no - 1), delta_sym(layer_no)
    if layer.affine:
        W = sym("W", "W", layer_no)
        out, inp = t.z.shape[1], t.a_prev.shape[1]
        parts: list[Part] = [
            Prose(
                f"Send the error back to layer {layer_no - 1}: L depends on "
                f"{z_sym(layer_no).text}, "
                f"which depends on {a_prev.text} through {W.text}. The transpose aligns the shapes "
                "and distributes each output's error over the units that fed it."
            ),
            eq(
                d_of(a_prev),
                Formula(f"({W.text})ᵀ {delta.text}", rf"({W.tex})^T {delta.tex}"),
                shapes=f"({inp}, 1) = ({inp}, {out})·({out}, 1)"
                + ("" if net.n == 1 else " per sample; all rows at once as the code does it: D W"),
            ),
        ]
    else:
        parts = [Prose(f"{type(layer).__name__}'s backward sends the error to its input.")]
    parts.append(
        net.checked(
            f"dL_da{layer_no - 1}",
            d_of(a_prev),
            net.rows(t.grad_a_prev * net.n),
            t.grad_a_prev,
            t.a_prev,
            t.position,
            t.a_prev,
            note=batch_note(net.n),
        )
    )
    return Step(
        f"Propagate gradient to hidden layer {layer_no - 1}",
        "propagate",
        parts,
        number,
        layer_no - 1,
    )


def activation_step(net: Replay, layer_no: int, number: int) -> Step:
    followers, local = net.followers[layer_no - 1], net.local[layer_no - 1]
    a, z, delta = a_sym(layer_no), z_sym(layer_no), delta_sym(layer_no)
    delta_value = net.checked_delta(layer_no)
    if not followers:
        parts: list[Part] = [
            Prose(f"No activation after layer {layer_no}: {a.text} = {z.text}, so δ = ∂L/∂a."),
            delta_value,
        ]
        return Step(f"No activation after layer {layer_no}", "activation", parts, number, layer_no)
    f = activation_symbol(followers)
    if local is None:
        parts = [
            Prose(
                f"{f.text} mixes the units: δ is its Jacobian-vector product, from its backward."
            ),
            delta_value,
        ]
    else:
        prime = Formula(f"{f.text}′({z.text})", rf"{f.tex}'({z.tex})")
        parts = [
            Prose(
                "The activation acts on every unit on its own, so this link of the chain is an "
                "element-wise (Hadamard) product ⊙, not a matrix product."
            ),
            eq(
                delta,
                d_of(z),
                Formula(f"∂L/∂{a.text} ⊙ {prime.text}", rf"{d_of(a).tex} \odot {prime.tex}"),
            ),
            eq(prime, derivative(followers)),
            net.checked_local(
                f"local{layer_no}",
                prime,
                net.rows(local),
                local,
                lambda z_: net.run(followers, z_),
                net.traces[layer_no - 1].z,
                note=gates_note(local),
            ),
            delta_value,
        ]
    return Step(f"Gradient through activation ({f.text})", "activation", parts, number, layer_no)


def general_rule_step(net: Replay) -> Step:
    norms = ", ".join(
        f"‖δ{f'({k})'.translate(SUPERSCRIPT)}‖ = {float(np.linalg.norm(t.delta * net.n)):.4g}"
        for k, t in reversed(list(enumerate(net.traces, start=1)))
    )
    l_, next_, prev = "⁽ˡ⁾", "⁽ˡ⁺¹⁾", "⁽ˡ⁻¹⁾"
    parts: list[Part] = [
        Prose("For any layer l, the error term, then the weight and bias gradients:"),
        eq(
            Formula("δ⁽ᴸ⁾", r"\delta^{(L)}"),
            Formula("ŷ − y   (output layer)", r"\hat{y} - y \quad \text{(output layer)}"),
        ),
        eq(
            Formula(f"δ{l_}", r"\delta^{(l)}"),
            Formula(
                f"(W{next_})ᵀ δ{next_} ⊙ f′(z{l_})   (hidden layer)",
                r"(W^{(l+1)})^T \delta^{(l+1)} \odot f'(\mathbf{z}^{(l)})"
                r" \quad \text{(hidden layer)}",
            ),
        ),
        eq(
            Formula(f"∂L/∂W{l_}", r"\dfrac{\partial L}{\partial W^{(l)}}"),
            Formula(f"δ{l_} (a{prev})ᵀ", r"\delta^{(l)} (\mathbf{a}^{(l-1)})^T"),
        ),
        eq(
            Formula(f"∂L/∂b{l_}", r"\dfrac{\partial L}{\partial \mathbf{b}^{(l)}}"),
            Formula(f"δ{l_}", r"\delta^{(l)}"),
        ),
        Prose(f"Here it ran from the output down: {norms}."),
    ]
    if net.n > 1:
        parts.append(
            Prose(
                "With N samples, the δ are the rows of D (divided by N): dW = Dᵀ A, "
                "db = Σ_n D_n, and the error passed down is D W."
            )
        )
    return Step("The general rule", "general-rule", parts)
