"""What ``dp.explain`` returns: titled steps of prose, equations and checked values, shown as
terminal text, Markdown with TeX (renders on GitHub) or a JSON-able dictionary.

The JSON form is described by ``document.schema.json`` beside this module (JSON Schema,
draft 2020-12); its ``schema`` field names the version.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend.arrays import Array
from ..files.format import json_value
from ..nn.formula_text import Formula

SCHEMA = "deltaprop-explanation/1"

SHOWN_ENTRIES = 12
SHOWN_COLUMNS = 8
"""Vectors with more than 12 entries, and matrices with more than 12 rows or 8 columns (or of
more than two dimensions but one sample's), are summarized."""

TEXT_WIDTH = 96
"""Prose in the text form is wrapped to this many characters (after the indent)."""


@dataclass
class Prose:
    """A sentence of the derivation, in the seed's words."""

    text: str


@dataclass
class Equation:
    """A symbolic step, with the shape bookkeeping the seed writes under it."""

    formula: Formula
    shapes: str = ""


@dataclass
class Value:
    """A named quantity on live numbers; a gradient carries its check by central differences.

    ``array`` is shown as the seed writes it: a 1-D array is a column vector, printed (…)ᵀ
    (``column=False``: a row). ``checked`` is the number of entries compared (all, or a random
    sample of a large tensor); ``relative_error`` is ‖analytic − numeric‖ / (‖analytic‖ +
    ‖numeric‖) over them, on an absolute scale below the differences' resolution.
    """

    key: str
    name: Formula
    array: Array
    column: bool = True
    note: str = ""
    relative_error: float | None = None
    checked: int | None = None


Part = Prose | Equation | Value


@dataclass
class Step:
    """One titled step (``number`` counts the backward steps as the seed does; None elsewhere)."""

    title: str
    kind: str  # "chain-rule", "forward", "loss", "output-error", "parameters", ...
    parts: list[Part]
    number: int | None = None
    layer: int | None = None


@dataclass
class Explanation:
    """A forward and backward pass written out step by step, every gradient checked."""

    title: str
    summary: str  # the network, the loss and the data, in one sentence
    network: list[str]
    loss_name: str
    loss: float
    n_samples: int
    tolerance: float
    steps: list[Step] = field(default_factory=list)

    @property
    def checks(self) -> dict[str, float]:
        """Relative error of every checked value, by key."""
        return {
            part.key: part.relative_error
            for step in self.steps
            for part in step.parts
            if isinstance(part, Value) and part.relative_error is not None
        }

    @property
    def worst(self) -> float:
        return max(self.checks.values(), default=0.0)

    @property
    def ok(self) -> bool:
        """Every check within ``tolerance`` (a NaN error fails)."""
        return all(_passes(e, self.tolerance) for e in self.checks.values())

    def value(self, key: str) -> Array:
        """The array of the value with this key (``"delta2"``, ``"dW1"``, ...)."""
        for step in self.steps:
            for part in step.parts:
                if isinstance(part, Value) and part.key == key:
                    return part.array
        raise KeyError(f"no value {key!r} in this explanation")

    def headings(self) -> list[str]:
        """The title and each step's heading, as the text and Markdown show them."""
        return [self.title, *(_step_title(step) for step in self.steps)]

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """Plain Unicode text for a terminal: large arrays summarized."""
        lines = [self.title, *textwrap.wrap(self.summary, TEXT_WIDTH + 2), ""]
        for step in self.steps:
            lines.append(_step_title(step))
            for part in step.parts:
                lines.extend("  " + line for line in _text_part(part, self.tolerance))
            lines.append("")
        lines.append(_verdict(self))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown with TeX math (``$$ … $$``), as GitHub renders it."""
        lines = [f"# {self.title}", "", self.summary, ""]
        for step in self.steps:
            lines += [f"## {_step_title(step)}", ""]
            for part in step.parts:
                lines += [*_markdown_part(part, self.tolerance), ""]
        lines.append(_verdict(self))
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Every value in full, as JSON-able data (see ``document.schema.json``)."""
        return {
            "schema": SCHEMA,
            "title": self.title,
            "summary": self.summary,
            "network": self.network,
            "loss_function": self.loss_name,
            "loss": _json_number(self.loss),
            "samples": self.n_samples,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "worst_relative_error": _json_number(self.worst),
            "steps": [
                {
                    "number": step.number,
                    "title": step.title,
                    "kind": step.kind,
                    "layer": step.layer,
                    "parts": [_dict_part(part, self.tolerance) for part in step.parts],
                }
                for step in self.steps
            ],
        }


# --- shared ------------------------------------------------------------------------------------


def _passes(error: float, tolerance: float) -> bool:
    return math.isfinite(error) and error <= tolerance


def _step_title(step: Step) -> str:
    return step.title if step.number is None else f"Step {step.number}: {step.title}"


def _verdict(explanation: Explanation) -> str:
    checks = explanation.checks
    if explanation.ok:
        return (
            f"All {len(checks)} gradients agree with central differences (worst relative error "
            f"{explanation.worst:.1e}, tolerance {explanation.tolerance:.0e})."
        )
    failed = [k for k, e in checks.items() if not _passes(e, explanation.tolerance)]
    return (
        f"{len(failed)} of {len(checks)} gradients DISAGREE with central differences: "
        f"{', '.join(failed)} (tolerance {explanation.tolerance:.0e})."
    )


def number(value: float) -> str:
    """4 significant digits, no negative zero."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text


def _is_large(array: Array) -> bool:
    if array.ndim <= 1:
        return array.size > SHOWN_ENTRIES
    if array.ndim == 2:
        return array.shape[0] > SHOWN_ENTRIES or array.shape[1] > SHOWN_COLUMNS
    return True


def _summary(array: Array) -> str:
    """Shape, norm, range and the three largest entries (1-based indices, as units are
    counted in the text)."""
    flat = array.reshape(-1)
    top = np.argsort(-np.abs(flat), kind="stable")[:3]
    largest = ", ".join(
        f"[{', '.join(str(int(i) + 1) for i in np.unravel_index(k, array.shape))}] = "
        f"{number(float(flat[k]))}"
        for k in top
    )
    return (
        f"shape {tuple(array.shape)}, norm {number(float(np.linalg.norm(flat)))}, "
        f"min {number(float(flat.min()))}, max {number(float(flat.max()))}, largest {largest}"
    )


def _check_text(part: Value, tolerance: float) -> str:
    if part.relative_error is None:
        return ""
    mark = "✓" if _passes(part.relative_error, tolerance) else "✗"
    sampled = "" if part.checked == part.array.size else f", {part.checked} entries sampled"
    return f"{mark} relative error {part.relative_error:.1e} vs central differences{sampled}"


def _squeezed(array: Array) -> Array:
    """A (1, K, K) Jacobian of one sample as its (K, K) matrix; other arrays as they are."""
    return array[0] if array.ndim == 3 and array.shape[0] == 1 else array


# --- text ------------------------------------------------------------------------------------


def _text_part(part: Part, tolerance: float) -> list[str]:
    if isinstance(part, Prose):
        return textwrap.wrap(part.text, TEXT_WIDTH)
    if isinstance(part, Equation):
        shapes = textwrap.wrap(f"shapes: {part.shapes}", TEXT_WIDTH - 4) if part.shapes else []
        return [part.formula.text, *("    " + line for line in shapes)]
    lines = _text_value(part)
    extra = [text for text in (part.note, _check_text(part, tolerance)) if text]
    return lines + ["    " + text for text in extra]


def _text_value(part: Value) -> list[str]:
    name, array = part.name.text, _squeezed(np.asarray(part.array, dtype=np.float64))
    if _is_large(array):
        return [f"{name}: {_summary(array)}"]
    if array.size == 1:
        return [f"{name} = {number(float(array.reshape(-1)[0]))}"]
    if array.ndim == 1:
        entries = ", ".join(number(v) for v in array)
        line = f"{name} = [{entries}]" + ("ᵀ" if part.column else "")
        return textwrap.wrap(line, TEXT_WIDTH, subsequent_indent="    ")
    cells = [[number(v) for v in row] for row in array]
    width = max(len(c) for row in cells for c in row)
    rows = ["[" + "  ".join(c.rjust(width) for c in row) + "]" for row in cells]
    return [f"{name} =", *("    " + row for row in rows)]


# --- Markdown ----------------------------------------------------------------------------------


def _markdown_part(part: Part, tolerance: float) -> list[str]:
    if isinstance(part, Prose):
        return [part.text]
    if isinstance(part, Equation):
        shapes = ["", f"Shapes: `{part.shapes}`"] if part.shapes else []
        return [f"$$ {part.formula.tex} $$", *shapes]
    array = _squeezed(np.asarray(part.array, dtype=np.float64))
    if _is_large(array):
        lines = [f"${part.name.tex}$: {_summary(array)}"]
    else:
        lines = [f"$$ {part.name.tex} = {_tex_array(array, part.column)} $$"]
    lines += [text for text in (part.note, _check_text(part, tolerance)) if text]
    return "\n\n".join(lines).split("\n")  # each its own paragraph


def _tex_array(array: Array, column: bool) -> str:
    if array.size == 1:
        return number(float(array.reshape(-1)[0]))
    if array.ndim == 1:
        rows = [[v] for v in array] if column else [list(array)]
    else:
        rows = [list(row) for row in array]
    body = r" \\ ".join(" & ".join(number(float(v)) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


# --- JSON --------------------------------------------------------------------------------------


def _json_number(value: float) -> float | None:
    return json_value(float(value), finite_only=True)


def _json_array(array: Array) -> Any:
    return json_value(np.asarray(array, dtype=np.float64), finite_only=True)


def _dict_part(part: Part, tolerance: float) -> dict[str, Any]:
    if isinstance(part, Prose):
        return {"type": "prose", "text": part.text}
    if isinstance(part, Equation):
        return {
            "type": "equation",
            "text": part.formula.text,
            "tex": part.formula.tex,
            "shapes": part.shapes,
        }
    error = part.relative_error
    return {
        "type": "value",
        "key": part.key,
        "text": part.name.text,
        "tex": part.name.tex,
        "shape": list(np.shape(part.array)),
        "data": _json_array(part.array),
        "note": part.note,
        "check": None
        if error is None
        else {
            "relative_error": _json_number(error),
            "entries": part.checked,
            "ok": _passes(error, tolerance),
        },
    }
