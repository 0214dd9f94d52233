"""The seed's notation for explanations: layer-indexed symbols (z⁽²⁾ and \\mathbf{z}^{(2)}),
∂L/∂… fractions, equations of several equal pieces, and the names of activations and their
derivatives, each as text and TeX."""

from __future__ import annotations

import numpy as np

from ..backend.arrays import Array
from ..nn.formula_text import Formula
from ..nn.layer import Layer
from .document import Equation, Prose, Step

SUPERSCRIPT = str.maketrans("0123456789-()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁽⁾")


def sym(text: str, tex: str, layer: int) -> Formula:
    """A layer-indexed symbol: z⁽²⁾ / \\mathbf{z}^{(2)}."""
    return Formula(f"{text}{f'({layer})'.translate(SUPERSCRIPT)}", rf"{tex}^{{({layer})}}")


def a_sym(layer: int) -> Formula:
    return Formula("x", r"\mathbf{x}") if layer == 0 else sym("a", r"\mathbf{a}", layer)


def z_sym(layer: int) -> Formula:
    return sym("z", r"\mathbf{z}", layer)


def delta_sym(layer: int) -> Formula:
    return sym("δ", r"\delta", layer)


def d_of(of: Formula) -> Formula:
    """∂L/∂(of)."""
    return Formula(f"∂L/∂{of.text}", rf"\dfrac{{\partial L}}{{\partial {of.tex}}}")


def d_by(of: Formula, by: Formula) -> Formula:
    return Formula(f"∂{of.text}/∂{by.text}", rf"\dfrac{{\partial {of.tex}}}{{\partial {by.tex}}}")


def eq(*pieces: Formula, shapes: str = "") -> Equation:
    """pieces joined by ' = '."""
    return Equation(
        Formula(" = ".join(p.text for p in pieces), " = ".join(p.tex for p in pieces)), shapes
    )


Y_HAT = Formula("ŷ", r"\hat{y}")


def activation_symbol(followers: list[Layer]) -> Formula:
    """f for a = f(z): the followers' symbols, composed (the last applied written first)."""
    names = [
        f.formula.symbol
        if f.formula is not None
        else Formula(type(f).__name__, rf"\text{{{type(f).__name__}}}")
        for f in reversed(followers)
    ]
    return Formula(" ∘ ".join(n.text for n in names), r" \circ ".join(n.tex for n in names))


def derivative(followers: list[Layer]) -> Formula:
    """f'(z) of element-wise followers as their derivatives' product."""
    formulas = [f.formula.derivative for f in followers if f.formula is not None]
    if len(formulas) == 1:
        return formulas[0]
    return Formula(
        " ⊙ ".join(f"({d.text})" for d in formulas), r" \odot ".join(f"({d.tex})" for d in formulas)
    )


def gates_note(local: Array) -> str:
    """For a 0/1 local gradient (ReLU), which gates are open."""
    if not np.isin(local, (0.0, 1.0)).all():
        return ""
    if local.shape[0] == 1 and local.size <= 16:
        units = {g: [str(j + 1) for j in np.flatnonzero(local[0] == g)] for g in (1.0, 0.0)}
        return (
            f"gates open (1) at units {', '.join(units[1.0]) or 'none'}, closed (0) at "
            f"{', '.join(units[0.0]) or 'none'}: a closed gate passes no error back"
        )
    return f"{int(local.sum())} of {local.size} gates open; a closed gate (0) passes no error back"


def batch_note(n: int) -> str:
    """What row n of a batch's per-sample gradient is (empty for one sample)."""
    if n == 1:
        return ""
    return (
        f"row n: sample n's own gradient; the code's batch gradient divides it by N = {n} "
        "(the loss owns the mean)"
    )


def chain_rule() -> Step:
    return Step(
        "The chain rule",
        "chain-rule",
        [
            Prose(
                "If h(x) = g(f(x)), then dh/dx = dg/df · df/dx: a car twice as fast as a bicycle "
                "that is four times as fast as a walker is 2 × 4 = 8 times as fast as the walker. "
                "Back propagation applies it from the loss back to every weight, layer by layer."
            ),
            Equation(
                Formula(
                    "dh/dx = dg/df · df/dx", r"\dfrac{dh}{dx} = \dfrac{dg}{df} \cdot \dfrac{df}{dx}"
                )
            ),
        ],
    )
