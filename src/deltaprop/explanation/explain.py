"""``dp.explain``: the seed's derivation replayed on live numbers, every gradient checked.

The numbers come from the engine: a float64 copy of the model runs one training forward and backward
through :func:`~deltaprop.explanation.trace.trace`; the activations' local gradients come from their
own ``backward``; the fused loss's two factors from its ``derivation``. Each gradient shown is
compared with central differences of the loss (every entry, or a seeded sample of a large tensor).
Nothing here differentiates anything itself.

Notation, as in the seed, for layer l with parameters (numbered from 1; x is a⁽⁰⁾):
z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾, a⁽ˡ⁾ = f(z⁽ˡ⁾), δ⁽ˡ⁾ = ∂ℓ/∂z⁽ˡ⁾ for one sample. With N samples the
loss is the mean L = (1/N) Σ_n ℓ_n: row n of δ is sample n's own error, and the code's
D = ∂L/∂Z = δ / N (the loss owns the 1/N).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.formula_text import Formula
from ..nn.layer import Layer
from ..nn.losses import Loss
from ..validation import check_positive
from .backward_steps import activation_step, general_rule_step, parameters_step, propagate_step
from .document import Equation, Explanation, Part, Prose, Step, Value
from .notation import (
    Y_HAT,
    a_sym,
    activation_symbol,
    batch_note,
    chain_rule,
    d_by,
    d_of,
    delta_sym,
    derivative,
    eq,
    gates_note,
    sym,
    z_sym,
)
from .replay import Replay, check_options, replay
from .trace import LayerTrace


def _affine_forward(net: Replay, layer_no: int, t: LayerTrace, layer: Layer) -> list[Part]:
    z, a_prev = z_sym(layer_no), a_sym(layer_no - 1)
    if not layer.affine:
        name = type(layer).__name__
        return [eq(z, Formula(f"{name}({a_prev.text})", rf"\text{{{name}}}({a_prev.tex})"))]
    params = dict(layer.named_parameters())
    W, b = sym("W", "W", layer_no), sym("b", r"\mathbf{b}", layer_no)
    out, inp, n = t.z.shape[1], t.a_prev.shape[1], net.n
    bias = "b" in params
    if n == 1:
        rhs = Formula(f"{W.text} {a_prev.text}", f"{W.tex}{a_prev.tex}")
        shapes = f"({out}, 1) = ({out}, {inp})·({inp}, 1)" + (f" + ({out}, 1)" if bias else "")
        parts: list[Part] = [eq(z, _plus(rhs, b, bias), shapes=shapes)]
    else:  # the batch as the code computes it: one row per sample, so the product turns round
        Z, A = _shown("z", layer_no, n), _shown("a", layer_no - 1, n)
        rhs = Formula(f"{A.text} {W.text}ᵀ", f"{A.tex}{W.tex}^\\top")
        shapes = f"({n}, {out}) = ({n}, {inp})·({inp}, {out})" + (f" + (1, {out})" if bias else "")
        parts = [
            eq(Z, _plus(rhs, b, bias), shapes=shapes),
            Prose(
                f"Row n of {Z.text} is sample n's {z.text} = {W.text} {a_prev.text}"
                + (f" + {b.text}" if bias else "")
                + f", written as a row: all {n} samples in one product."
            ),
        ]
    parts.append(Value(f"W{layer_no}", W, params["W"].value))
    if bias:
        parts.append(Value(f"b{layer_no}", b, params["b"].value))
    return parts


def _shown(kind: str, layer: int, n: int) -> Formula:
    """The symbol a forward value is shown under: the seed's column vector for one sample
    (x, z⁽ˡ⁾, a⁽ˡ⁾), the code's matrix of rows for a batch (X, Z⁽ˡ⁾, A⁽ˡ⁾)."""
    if n == 1:
        return a_sym(layer) if kind == "a" else z_sym(layer)
    if kind == "a" and layer == 0:
        return Formula("X", "X")
    return sym(kind.upper(), kind.upper(), layer)


def _plus(rhs: Formula, b: Formula, bias: bool) -> Formula:
    return Formula(f"{rhs.text} + {b.text}", f"{rhs.tex} + {b.tex}") if bias else rhs


def _forward(net: Replay) -> Step:
    parts: list[Part] = []
    last = len(net.traces)
    for layer_no, t in enumerate(net.traces, start=1):
        layer = net.layers[t.position]
        role = "output" if layer_no == last else "hidden"
        parts.append(Prose(f"Layer {layer_no} ({role}): {net.names[t.position]}"))
        if layer_no == 1:
            parts.append(Value("x", _shown("a", 0, net.n), net.rows(t.a_prev)))
        parts += _affine_forward(net, layer_no, t, layer)
        parts.append(Value(f"z{layer_no}", _shown("z", layer_no, net.n), net.rows(t.z)))
        followers = net.followers[layer_no - 1]
        if followers:
            f, z = activation_symbol(followers), _shown("z", layer_no, net.n)
            a = _shown("a", layer_no, net.n)
            parts.append(eq(a, Formula(f"{f.text}({z.text})", rf"{f.tex}({z.tex})")))
            parts.append(Value(f"a{layer_no}", a, net.rows(t.a)))
    out = net.loss.derivation.output
    source = a_sym(last) if net.followers[-1] else z_sym(last)
    applied = (
        Formula(f"{out.text}({source.text})", rf"{out.tex}({source.tex})") if out.text else source
    )
    parts += [eq(Y_HAT, applied), Value("y_hat", Y_HAT, net.rows(net.y_hat))]
    return Step("Forward pass", "forward", parts)


def _loss_step(net: Replay) -> Step:
    derivation = net.loss.derivation
    parts: list[Part] = [
        Prose(f"{type(net.loss).__name__}, per sample, summed over the outputs:"),
        Equation(derivation.loss),
    ]
    if net.n > 1:
        parts.append(
            Equation(
                Formula("L = (1/N) Σ_n ℓ_n", r"L = \frac{1}{N}\sum_n \ell_n"),
                f"N = {net.n}: the loss owns the batch mean",
            )
        )
    if net.model.penalty():
        parts.append(Prose("L includes the L2 penalty ½ λ ‖W‖² / N of the layers that have one."))
    parts += [
        Value("y", Formula("y", "y"), net.rows(net.Y)),
        Value("L", Formula("L", "L"), np.array(net.value)),
    ]
    return Step("Loss", "loss", parts)


def _output_error(net: Replay, number: int) -> Step:
    last = len(net.traces)
    t, derivation = net.traces[-1], net.loss.derivation
    z, delta = z_sym(last), delta_sym(last)
    followers = net.followers[-1]
    delta_value = net.checked_delta(last)
    if not followers:
        dl, dyz = derivation.factors(net.y_hat, net.Y)
        product = np.einsum("nk,nkj->nj", dl, dyz) if dyz.ndim == 3 else dl * dyz
        two = Formula(
            f"∂L/∂ŷ · ∂ŷ/∂{z.text}",
            rf"\dfrac{{\partial L}}{{\partial \hat{{y}}}} \cdot {d_by(Y_HAT, z).tex}",
        )
        parts: list[Part] = [
            Prose(
                "The derivative of the loss with respect to the raw output score, by the chain "
                "rule:"
            ),
            eq(delta, d_of(z), two),
            Prose("Derive the two parts separately, then multiply them."),
            eq(d_of(Y_HAT), derivation.dl_dyhat),
            net.checked_local(
                "dL_dy_hat",
                d_of(Y_HAT),
                net.rows(dl),
                dl,
                lambda y_hat: derivation.terms(y_hat, net.Y),
                net.y_hat,
                relative_step=True,
            ),
            eq(d_by(Y_HAT, z), derivation.dyhat_dz),
            net.checked_local(
                "dy_hat_dz", d_by(Y_HAT, z), net.rows(dyz), dyz, net.loss.predict, t.z
            ),
            Prose(f"Combine them (the cancellation): {derivation.cancellation}."),
            net.checked(
                "product", two, net.rows(product), product / net.n, t.z, t.position + 1, t.z
            ),
            eq(delta, Formula("ŷ − y", r"\hat{y} - y")),
            delta_value,
        ]
        return Step(f"Gradient at output (layer {last} error)", "output-error", parts, number, last)
    assert t.grad_a is not None  # trace records it for every layer
    f, a = activation_symbol(followers), a_sym(last)
    end = t.position + 1 + len(followers)
    parts = [
        Prose(
            f"The model applies {f.text} itself and the loss takes {a.text} = {f.text}({z.text}) "
            "as its input: nothing cancels, so here are the two factors and their product."
        ),
        eq(
            delta,
            d_of(z),
            Formula(
                f"∂L/∂{a.text} ⊙ ∂{a.text}/∂{z.text}", rf"{d_of(a).tex} \odot {d_by(a, z).tex}"
            ),
        ),
        net.checked(
            f"dL_da{last}",
            d_of(a),
            net.rows(t.grad_a * net.n),
            t.grad_a,
            t.a,
            end,
            t.a,
            note=batch_note(net.n),
        ),
    ]
    local = net.local[-1]
    if local is not None:
        parts += [
            eq(d_by(a, z), derivative(followers)),
            net.checked_local(
                f"local{last}",
                d_by(a, z),
                net.rows(local),
                local,
                lambda z_: net.run(followers, z_),
                t.z,
                note=gates_note(local),
            ),
        ]
    else:
        parts.append(
            Prose(f"{f.text} is not element-wise: its backward gives the Jacobian-vector product.")
        )
    parts.append(delta_value)
    return Step(f"Gradient at output (layer {last} error)", "output-error", parts, number, last)


def _update_step(net: Replay, lr: float) -> Step:
    """The step the gradients are for: every parameter moved against its gradient, and the
    loss on the same samples after it (lower, for a small enough η)."""
    parts: list[Part] = [
        Prose(
            f"Gradient descent with learning rate η = {lr:g} moves every parameter against its "
            "gradient (fit's optimizers — SGD with momentum, Adam, ... — use these same gradients "
            "in their own rules):"
        )
    ]
    before = net.model.flat_values.copy()
    for layer_no, t in enumerate(net.traces, start=1):
        layer = net.layers[t.position]
        for name, p in layer.named_parameters():
            symbol = sym(name, r"\mathbf{b}" if name == "b" else name, layer_no)
            parts.append(
                Equation(
                    Formula(
                        f"{symbol.text} ← {symbol.text} − η ∂L/∂{symbol.text}",
                        rf"{symbol.tex} \leftarrow {symbol.tex} - \eta {d_of(symbol).tex}",
                    )
                )
            )
            p.value -= lr * t.grads[name]  # in the float64 copy, put back below
            parts.append(Value(f"{name}{layer_no}_updated", symbol, p.value.copy()))
    first = net.traces[0]
    after = net.loss_from(first.position, first.a_prev)
    net.model.flat_values[...] = before  # the steps above show the values before the update
    parts += [
        Prose(
            f"The loss on the same samples: {net.value:.6g} before the update, {after:.6g} after"
        ),
        Value("L_updated", Formula("L", "L"), np.array(after)),
    ]
    return Step("After the backward pass: the update", "update", parts)


def explain(
    model: Layer,
    loss: Loss,
    X: Any,
    y: Any,
    *,
    seed: int = 0,
    tolerance: float = 1e-6,
    eps: float = 1e-6,
    sample: int = 64,
    lr: float = 0.1,
) -> Explanation:
    """The seed's forward and backward pass, step by step, on ``model`` and these samples.

    The model is copied and run in float64 (the original is untouched). The steps: the chain
    rule; the forward pass (z = W a + b and a = f(z) for each layer); the loss; then backward in
    the seed's order — Step 1 the output error δ = ∂L/∂ŷ · ∂ŷ/∂z shown as its two factors and
    their product; for each layer from the output down, its parameter gradients (∂L/∂W = δ aᵀ,
    ∂L/∂b = δ), the error sent down (Wᵀ δ) and the next activation's local gradient; and the
    general rule. With several samples, each gradient also shows the per-sample outer products
    and their mean. Every gradient shown carries its relative error against central
    differences (all entries, or ``sample`` random ones of a larger tensor). Last, the update
    those gradients are for: W ← W − η ∂L/∂W for every parameter, and the loss after it.

    Args:
        model: a Sequential (or a single layer).
        loss: the fused output loss.
        X: the samples, (N, in); y: their targets, as ``loss`` takes them.
        seed: draws dropout masks (when the model has no generator) and the sampled entries.
        tolerance: the largest relative error that passes.
        eps: the central differences' step.
        sample: entries checked per tensor at most.
        lr: the learning rate η of the update shown last, > 0.

    Returns:
        An :class:`~deltaprop.explanation.document.Explanation`: ``steps``, ``ok``, ``checks``,
        ``to_text()``, ``to_markdown()``, ``to_dict()``.
    """
    if not loss.written_out:
        raise ValueError(
            f"explain writes out the fused losses' derivations; {type(loss).__name__} is your own "
            "function (check its gradient with dp.gradcheck.check_model)"
        )
    check_options(seed, tolerance, eps, sample)
    lr = check_positive("lr", lr, owner="explain")
    net = replay(model, loss, X, y, seed=seed, eps=eps, tolerance=tolerance, sample=sample)
    steps = [chain_rule(), _forward(net), _loss_step(net), _output_error(net, 1)]
    number = 1
    for layer_no in range(len(net.traces), 0, -1):
        number += 1
        steps.append(parameters_step(net, layer_no, number))
        if layer_no > 1:
            steps.append(propagate_step(net, layer_no, number + 1))
            steps.append(activation_step(net, layer_no - 1, number + 2))
            number += 2
    steps.append(general_rule_step(net))
    steps.append(_update_step(net, lr))
    names = net.names
    samples = "1 sample" if net.n == 1 else f"{net.n} samples"
    return Explanation(
        title="Forward and back propagation, step by step",
        summary=(
            f"Network {' → '.join(names)}; loss {type(loss).__name__}; {samples}. The numbers "
            "are deltaprop's own (float64), and every gradient is checked by central differences."
        ),
        network=names,
        loss_name=type(loss).__name__,
        loss=net.value,
        n_samples=net.n,
        tolerance=tolerance,
        steps=steps,
    )
