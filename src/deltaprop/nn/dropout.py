"""Layers that regularize: they compute one thing in training and another in evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend.arrays import Array, moved_to
from ..validation import check_fraction, check_input, check_rng
from . import formula_text as formulas
from .layer import Layer, Reducer


class Dropout(Layer):
    """Inverted dropout: each unit is zeroed with probability p in training, the rest scaled.

    Training:   a = z ⊙ m / (1 − p), with m_j ~ Bernoulli(1 − p) drawn afresh each batch.
    Evaluation: a = z (the scaling in training keeps E[a] = z, so nothing changes at test time).

    Backward, from a = z ⊙ m / (1 − p): ∂a/∂z = m / (1 − p), so ``∂L/∂z = g ⊙ m / (1 − p)`` —
    the same mask applied to the gradient (a unit dropped in the forward pass passes no error).

    Args:
        p: the probability of dropping a unit, in [0, 1).
        rng: the generator that draws the masks. Without one, each ``fit`` call offers its own
            (so the masks are part of a seeded, resumable run); a training forward outside
            ``fit`` needs one.

    Shapes: (N, D) -> (N, D).
    """

    formula = formulas.DROPOUT

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.p = check_fraction("p", p, owner="Dropout")
        self.rng = None if rng is None else check_rng("rng", rng, owner="Dropout")
        self._offered = False  # whether self.rng came from fit (then each fit offers anew)
        self._mask: Array | None = None  # m / (1 − p), in the input's dtype
        self._share: tuple[int, int] = (0, 0)  # (first row, batch rows) under data-parallel fit

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer="Dropout")
        if not training:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError(
                "Dropout: a training forward pass needs a generator for the masks; pass "
                "rng=np.random.default_rng(seed), or train with dp.fit, which offers its own"
            )
        start, total = self._share
        rows = (total or x.shape[0], *x.shape[1:])  # the whole batch's draws, on every rank
        draw = self._buffer("draw", rows, x.dtype)  # on the host, where the generator is
        self.rng.random(out=draw, dtype=x.dtype)  # U[0, 1)
        draw = moved_to(draw[start : start + x.shape[0]] if total else draw, x)
        mask = self._buffer("mask", x.shape, x.dtype, x)
        np.greater_equal(draw, x.dtype.type(self.p), out=mask)  # m_j = 1[u_j >= p]: kept
        mask *= x.dtype.type(1.0 / (1.0 - self.p))
        self._mask = mask
        return np.multiply(x, mask, out=self._buffer("A", x.shape, x.dtype, x))

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._mask, grad_out)
        assert self._mask is not None
        # ∂a/∂z = m / (1 − p): the error flows only through the units that were kept
        return np.multiply(
            grad_out, self._mask, out=self._buffer("D", grad_out.shape, grad_out.dtype, grad_out)
        )

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def differs_in_training(self) -> bool:
        return self.p > 0

    def data_parallel_refusal(self) -> str | None:
        return None  # each rank draws the whole batch's mask and keeps its rows (share_batch)

    def share_batch(self, start: int, total: int, sum_: Reducer | None = None) -> None:
        self._share = (start, total)

    def offer_rng(self, rng: np.random.Generator) -> None:
        if self.rng is None or self._offered:
            self.rng, self._offered = rng, True

    def generators(self) -> list[np.random.Generator]:
        return [] if self.rng is None else [self.rng]
