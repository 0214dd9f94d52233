"""Layers without parameters: element-wise activations and a standalone softmax.

Each backward multiplies the incoming gradient by the local derivative f'(z) — the seed's
``δ = (Wᵀ δ_next) ⊙ f'(z)``, where ``grad_out`` already holds ``Wᵀ δ_next`` for each row.
Each layer caches the least it needs: the gate for ReLU, the output for Sigmoid and Tanh, the
input for the others. ReLU and Identity are written out in full; the smooth activations share
:class:`Elementwise`, each being its f and f′.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..backend.arrays import Array
from ..validation import check_fraction, check_input
from . import formula_text as formulas
from . import functional as F
from .layer import Layer


class Identity(Layer):
    """a = z; a' = 1. Shapes: (N, D) -> (N, D)."""

    formula = formulas.IDENTITY
    compiled_as = "identity"

    def __init__(self) -> None:
        super().__init__()
        self._x: Array | None = None  # only its shape is used: a reference, not a copy

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer="Identity")
        self._x = x if training else None
        return x

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._x, grad_out)
        return grad_out


class ReLU(Layer):
    """a = max(z, 0); a' = 1[z > 0], the seed's gate. Shapes: (N, D) -> (N, D)."""

    formula = formulas.RELU
    compiled_as = "relu"
    relu_like = True

    def __init__(self) -> None:
        super().__init__()
        self._gate: Array | None = None  # 1[z > 0]: open where the unit fired

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer="ReLU")
        A = self._buffer("A", x.shape, x.dtype, x)
        if training:  # a = max(z, 0) and its gate 1[z > 0], in one pass
            A, self._gate = F.relu_and_gate(
                x, out=A, gate=self._buffer("gate", x.shape, np.bool_, x)
            )
        else:
            F.relu(x, out=A)
            self._gate = None
        return A

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._gate, grad_out)
        assert self._gate is not None
        D = self._buffer("D", grad_out.shape, grad_out.dtype, grad_out)
        # the seed's Step 4: δ = (Wᵀ δ_next) ⊙ ReLU'(z), with ReLU'(z) = 1[z > 0] the gate that
        # passes the error where the unit fired and kills it elsewhere
        return F.apply_gate(grad_out, self._gate, out=D)


class Elementwise(Layer):
    """The base of the smooth element-wise activations: a = f(z) and f′, nothing else.

    Forward keeps what f′ is computed from — the input z, or, where f′ is cheaper from the
    output (σ′ = a(1 − a), tanh′ = 1 − a²), the output a (:attr:`from_output`) — and backward is
    the seed's Step 4, ``δ = grad_out ⊙ f′``. A subclass is its formula: :meth:`f` and
    :meth:`f_prime`. (ReLU and Identity are written out in full above, as teaching cases.)

    Shapes: (N, D) -> (N, D).
    """

    from_output: ClassVar[bool] = False
    """Whether :meth:`f_prime` reads the output a (else the input z)."""

    def __init__(self) -> None:
        super().__init__()
        self._kept: Array | None = None  # z, or a when from_output: what f' is computed from

    @abstractmethod
    def f(self, z: Array) -> Array:
        """a = f(z), element by element. Shapes: (N, D) -> (N, D)."""

    @abstractmethod
    def f_prime(self, kept: Array) -> Array:
        """f′(z), from z, or from a = f(z) when :attr:`from_output`. Shapes: (N, D) -> (N, D)."""

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer=type(self).__name__)
        a = self.f(x)
        self._kept = (a if self.from_output else x) if training else None
        return a

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._kept, grad_out)
        assert self._kept is not None
        # the seed's Step 4: δ = (Wᵀ δ_next) ⊙ f'(z), grad_out holding Wᵀ δ_next
        return grad_out * self.f_prime(self._kept)


class LeakyReLU(Elementwise):
    """a = z if z > 0 else slope·z; a' = 1 or slope. Shapes: (N, D) -> (N, D)."""

    formula = formulas.LEAKY_RELU
    relu_like = True

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_fraction("negative_slope", negative_slope, owner="LeakyReLU")

    def f(self, z: Array) -> Array:
        return F.leaky_relu(z, self.negative_slope)

    def f_prime(self, kept: Array) -> Array:
        return F.leaky_relu_prime(kept, self.negative_slope)

    def config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class Sigmoid(Elementwise):
    """a = σ(z); a' = a (1 − a), from the kept output. Shapes: (N, D) -> (N, D).

    Use it for hidden layers; for a sigmoid *output* use SigmoidBinaryCrossEntropy, which fuses
    the two so the output delta is ŷ − y.
    """

    formula = formulas.SIGMOID
    from_output = True

    def f(self, z: Array) -> Array:
        return F.sigmoid(z)

    def f_prime(self, kept: Array) -> Array:
        return F.sigmoid_prime_from_output(kept)


class Tanh(Elementwise):
    """a = tanh(z); a' = 1 − a², from the kept output. Shapes: (N, D) -> (N, D)."""

    formula = formulas.TANH
    from_output = True

    def f(self, z: Array) -> Array:
        return F.tanh(z)

    def f_prime(self, kept: Array) -> Array:
        return F.tanh_prime_from_output(kept)


class GELU(Elementwise):
    """a = z Φ(z) (exact, erf form); a' = Φ(z) + z φ(z). Shapes: (N, D) -> (N, D)."""

    formula = formulas.GELU
    relu_like = True

    def f(self, z: Array) -> Array:
        return F.gelu(z)

    def f_prime(self, kept: Array) -> Array:
        return F.gelu_prime(kept)


class Softplus(Elementwise):
    """a = log(1 + e^z); a' = σ(z). Shapes: (N, D) -> (N, D)."""

    formula = formulas.SOFTPLUS
    relu_like = True

    def f(self, z: Array) -> Array:
        return F.softplus(z)

    def f_prime(self, kept: Array) -> Array:
        return F.softplus_prime(kept)


class Softmax(Layer):
    """a = softmax(z) row by row, for when it is not fused with a loss.

    Backward is the Jacobian-vector product of J = diag(a) − a aᵀ, per row:
    ``dz = a ⊙ (g − (g · a))`` with g = ∂L/∂a.

    Shapes: (N, K) -> (N, K).
    """

    def __init__(self) -> None:
        super().__init__()
        self._a: Array | None = None

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer="Softmax")
        a = F.softmax(x)
        self._a = a if training else None
        return a

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._a, grad_out)
        assert self._a is not None
        return F.softmax_jvp(self._a, grad_out)
