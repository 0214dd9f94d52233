"""The seed's formulas as text and TeX, for explanations: each activation's derivative, and each
fused loss's two factors ∂ℓ/∂ŷ and ∂ŷ/∂z whose product cancels to ŷ − y.

Layers and losses point at these (``Layer.formula``, ``Loss.derivation``); ``dp.explain`` asks
them, never their types. The factor functions compute what the seed writes on paper: the engine
itself never needs them (it computes ŷ − y directly), so tests check that their product is the
engine's delta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..backend.arrays import Array


def _special() -> Any:
    """scipy.special, imported when first used: it takes a sixth of a second to import."""
    from scipy import special

    return special


class Formula(NamedTuple):
    """One formula twice: for a terminal (Unicode) and for Markdown (TeX)."""

    text: str
    tex: str


class ActivationFormula(NamedTuple):
    """An element-wise layer a = f(z): its name in formulas and its local derivative f'(z)."""

    symbol: Formula  # "ReLU" / r"\text{ReLU}"
    derivative: Formula  # f'(z), written with z and a = f(z)


def _relu(name: str, tex: str) -> Formula:
    return Formula(name, rf"\text{{{tex}}}")


RELU = ActivationFormula(_relu("ReLU", "ReLU"), Formula("1[z > 0]", r"\mathbb{1}[z > 0]"))
LEAKY_RELU = ActivationFormula(
    _relu("LeakyReLU", "LeakyReLU"),
    Formula("1 if z > 0, else α", r"\begin{cases}1 & z > 0\\ \alpha & z \le 0\end{cases}"),
)
SIGMOID = ActivationFormula(Formula("σ", r"\sigma"), Formula("a(1 − a)", r"a(1-a)"))
TANH = ActivationFormula(Formula("tanh", r"\tanh"), Formula("1 − a²", r"1-a^2"))
GELU = ActivationFormula(
    _relu("GELU", "GELU"), Formula("Φ(z) + z φ(z)", r"\Phi(z) + z\,\varphi(z)")
)
SOFTPLUS = ActivationFormula(_relu("softplus", "softplus"), Formula("σ(z)", r"\sigma(z)"))
IDENTITY = ActivationFormula(Formula("id", r"\text{id}"), Formula("1", "1"))
DROPOUT = ActivationFormula(
    _relu("dropout", "dropout"), Formula("m / (1 − p), m the kept units", r"m / (1-p)")
)


@dataclass(frozen=True)
class OutputDerivation:
    """A fused loss written out as the seed derives it (Step 1).

    ``factors(ŷ, y)`` gives ∂ℓ/∂ŷ (N, K) and ∂ŷ/∂z — (N, K) for an element-wise output, (N, K, K)
    Jacobians for softmax — per sample, before the batch mean. ``terms(ŷ, y)`` is the loss
    written in ŷ, one term per output (ℓ is their sum): what ∂ℓ/∂ŷ is the derivative of.
    """

    loss: Formula  # ℓ(ŷ, y) for one sample
    output: Formula  # the output function's name: ŷ = name(z); empty for the identity
    dl_dyhat: Formula
    dyhat_dz: Formula
    cancellation: str  # why the product is ŷ − y, in words
    factors: Callable[[Array, Array], tuple[Array, Array]]
    terms: Callable[[Array, Array], Array]  # ℓ's terms as a function of ŷ, (N, K): checks ∂ℓ/∂ŷ
    example_targets: Callable[[np.random.Generator, int, int], Array]  # y for a demo, (N, K)


def _bce_factors(y_hat: Array, y: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (y_hat - y) / (y_hat * (1 - y_hat)), y_hat * (1 - y_hat)


def _softmax_ce_factors(y_hat: Array, y: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        dl = np.where(y == 0, 0.0, -y / y_hat)  # −y_k / ŷ_k (0 where y_k = 0)
    jacobian = -y_hat[:, :, None] * y_hat[:, None, :]  # J = diag(ŷ) − ŷ ŷᵀ, (N, K, K)
    k = y_hat.shape[1]
    jacobian[:, np.arange(k), np.arange(k)] += y_hat
    return dl, jacobian


def _half_se_factors(y_hat: Array, y: Array) -> tuple[Array, Array]:
    return y_hat - y, np.ones_like(y_hat)


def _poisson_factors(y_hat: Array, y: Array) -> tuple[Array, Array]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - y / y_hat, y_hat


def _class_indices(rng: np.random.Generator, n: int, k: int) -> Array:
    return rng.integers(0, k, n)


SIGMOID_BCE = OutputDerivation(
    loss=Formula(
        "ℓ = −[y log ŷ + (1 − y) log(1 − ŷ)]",
        r"\ell = -\left[y \log\hat{y} + (1-y)\log(1-\hat{y})\right]",
    ),
    output=Formula("σ", r"\sigma"),
    dl_dyhat=Formula(
        "−y/ŷ + (1 − y)/(1 − ŷ) = (ŷ − y) / (ŷ(1 − ŷ))",
        r"-\dfrac{y}{\hat{y}} + \dfrac{1-y}{1-\hat{y}} = \dfrac{\hat{y}-y}{\hat{y}(1-\hat{y})}",
    ),
    dyhat_dz=Formula("σ'(z) = ŷ(1 − ŷ)", r"\sigma'(z) = \hat{y}(1-\hat{y})"),
    cancellation="the denominator of the loss gradient cancels the sigmoid's derivative",
    factors=_bce_factors,
    terms=lambda y_hat, y: -(_special().xlogy(y, y_hat) + _special().xlogy(1 - y, 1 - y_hat)),
    example_targets=lambda rng, n, k: rng.integers(0, 2, (n, k)).astype(np.float64),
)

SOFTMAX_CE = OutputDerivation(
    loss=Formula("ℓ = −Σ_k y_k log ŷ_k", r"\ell = -\sum_k y_k \log \hat{y}_k"),
    output=Formula("softmax", r"\operatorname{softmax}"),
    dl_dyhat=Formula("−y_k / ŷ_k", r"-y_k / \hat{y}_k"),
    dyhat_dz=Formula("J = diag(ŷ) − ŷ ŷᵀ", r"J = \operatorname{diag}(\hat{y}) - \hat{y}\hat{y}^T"),
    cancellation=(
        "Jᵀ times −y/ŷ gives −y + ŷ Σ_k y_k: the 1/ŷ of the log cancels the softmax's ŷ, "
        "and Σ_k y_k = 1"
    ),
    factors=_softmax_ce_factors,
    terms=lambda y_hat, y: -_special().xlogy(y, y_hat),
    example_targets=_class_indices,
)

IDENTITY_HALF_SE = OutputDerivation(
    loss=Formula("ℓ = ½ ‖ŷ − y‖²", r"\ell = \tfrac{1}{2}\lVert \hat{y} - y \rVert^2"),
    output=Formula("", ""),
    dl_dyhat=Formula("ŷ − y", r"\hat{y} - y"),
    dyhat_dz=Formula("1", "1"),
    cancellation="the identity output has derivative 1, and the ½ cancels the square's 2",
    factors=_half_se_factors,
    terms=lambda y_hat, y: 0.5 * (y_hat - y) ** 2,
    example_targets=lambda rng, n, k: rng.standard_normal((n, k)),
)

EXP_POISSON = OutputDerivation(
    loss=Formula("ℓ = y log(y / ŷ) − y + ŷ", r"\ell = y \log(y/\hat{y}) - y + \hat{y}"),
    output=Formula("exp", r"\exp"),
    dl_dyhat=Formula("1 − y/ŷ", r"1 - y/\hat{y}"),
    dyhat_dz=Formula("e^z = ŷ", r"e^{z} = \hat{y}"),
    cancellation="the 1/ŷ of the loss gradient cancels the exponential's derivative ŷ",
    factors=_poisson_factors,
    terms=lambda y_hat, y: _special().xlogy(y, y) - _special().xlogy(y, y_hat) - y + y_hat,
    example_targets=lambda rng, n, k: rng.poisson(2.0, (n, k)).astype(np.float64),
)
