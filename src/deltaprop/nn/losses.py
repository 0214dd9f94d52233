"""Losses fused with their output activation, so the output delta is ŷ − y.

Each loss takes the model's *logits* z (the last Dense layer's output), computes the mean loss over
the batch from z with log-sum-exp / softplus (never the log of a probability, so it stays finite
for logits up to ±1e4), and returns from ``backward`` the delta ``D = (Ŷ − Y) / N``. The loss is the
single owner of the batch mean: no layer or optimizer divides by N.

Per sample, the loss is *summed* over output units and the batch is *averaged*:
``L = (1/N) Σ_n Σ_k ℓ(z_nk, y_nk)``, which is what makes ∂L/∂z = (ŷ − y)/N hold for any number
of outputs. With sample weights w the average is weighted, ``L = Σ_n w_n ℓ_n / Σ_n w_n``, and the
delta's row n is ``w_n (ŷ_n − y_n) / Σ w``; the batch's normalizer (N or Σ w) is
:attr:`Loss.normalizer`, which also scales a model's L2 penalty (see ``Dense(l2=...)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np

from ..backend.arrays import Array, is_array, moved_to, namespace, to_host
from ..backend.memory import Workspace
from ..errors import ForwardNotCalledError, ShapeError
from ..validation import check_finite, prepare_weights
from . import formula_text as formulas
from . import functional as F
from .layer import format_call


def _special() -> Any:
    """scipy.special, imported when first used: it takes a sixth of a second to import."""
    from scipy import special

    return special


class Loss(ABC):
    """An output activation and a loss, fused.

    ``forward(logits, y) -> float`` (mean over the batch), ``backward() -> (Ŷ − Y)/N``,
    ``predict(logits)`` applies the output activation.
    """

    task: ClassVar[str]
    """``"classification"`` or ``"regression"``: decides the metrics the training loop reports."""

    output_activation: ClassVar[str | None] = None
    """The registry name of the activation layer this loss applies itself (a model that ends
    in that layer would apply it twice)."""

    derivation: ClassVar[formulas.OutputDerivation]
    """The loss and its output written out as the seed derives δ = ŷ − y, for ``dp.explain``."""

    written_out: ClassVar[bool] = True
    """Whether :attr:`derivation` writes the loss out (a loss of the user's own functions does
    not: ``dp.explain`` refuses it, ``dp.gradcheck`` checks it)."""

    compiled_as: ClassVar[str | None] = None
    """The compiled epoch's kernel for this loss (``"softmax_cross_entropy"``), if any."""

    def __init__(self) -> None:
        self.workspace = Workspace()
        self._y_hat: Array | None = None  # Ŷ = f(z), cached for the delta
        self._y: Array | None = None  # targets in the form prepare_targets returns
        self._row_scale: Array | None = None  # w_n / Σ w, (N, 1), for weighted batches
        self.normalizer = 1.0
        """What the last forward divided by: N, or Σ w for weighted rows (1 if all are 0)."""

    # --- targets ---------------------------------------------------------------------------

    @abstractmethod
    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        """Validate ``y`` for logits of width ``n_outputs``; return it in the form the loss uses.

        Raises:
            ValueError: targets outside the loss's range, non-finite, or of the wrong width.
        """

    # --- forward and backward, a facing pair -----------------------------------------------

    def forward(self, logits: Array, y: Any, sample_weight: Any = None) -> float:
        """Mean loss over the batch (weighted by ``sample_weight``, if given).

        Shapes: logits (N, K); y as :meth:`prepare_targets` takes; sample_weight (N,), >= 0.

        Raises:
            ShapeError: logits not 2-D, or y or the weights with a different number of rows.
            ValueError: NaN or inf in the logits, invalid targets or weights.
        """
        name = type(self).__name__
        if not is_array(logits) or logits.ndim != 2:
            shape = getattr(logits, "shape", type(logits).__name__)
            raise ShapeError(f"{name}: logits must be a 2-D array (N, K), got {shape}")
        if logits.dtype.kind != "f":
            raise TypeError(f"{name}: logits must be float32 or float64, got {logits.dtype}")
        check_finite("logits", logits, owner=name)
        y = to_host(y)  # targets are checked on the host, then go where the logits are
        n_rows = np.shape(y)[0] if np.ndim(y) > 0 else None
        if n_rows != logits.shape[0]:
            raise ShapeError(
                f"{name}: y has {n_rows} rows (shape {np.shape(y)}), "
                f"but the logits have {logits.shape[0]} (shape {logits.shape})"
            )
        targets = self.prepare_targets(y, logits.shape[1])
        if targets.dtype.kind == "f":  # compute in the logits' dtype: no silent up-cast
            targets = targets.astype(logits.dtype, copy=False)
        weights = None
        if sample_weight is not None:
            weights = prepare_weights(sample_weight, logits.shape[0], owner=name)
        return self.forward_prepared(logits, targets, weights)

    def forward_prepared(
        self, logits: Array, y: Array, sample_weight: Array | None = None
    ) -> float:
        """:meth:`forward` without validation, for targets from :meth:`prepare_targets` and
        weights from :func:`prepare_weights` (copied to the logits' device if they are not
        there: ``fit`` puts them there once)."""
        y = moved_to(y, logits)
        if sample_weight is not None:
            sample_weight = moved_to(sample_weight, logits)
        total = self._forward_sum(logits, y, sample_weight)
        self._y = y
        if sample_weight is None:
            self._row_scale = None
            self.normalizer = float(logits.shape[0])
        else:
            weight = float(np.sum(sample_weight))
            self.normalizer = weight if weight > 0 else 1.0
            scale = (sample_weight / self.normalizer).astype(logits.dtype)
            self._row_scale = scale.reshape(-1, 1)
        return total / self.normalizer

    @abstractmethod
    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        """Σ_n w_n ℓ_n (w = 1 without weights), caching Ŷ = f(z) for :meth:`backward`."""

    def backward(self) -> Array:
        """D = ∂L/∂z = (Ŷ − Y) / N, or w (Ŷ − Y) / Σ w row by row. Shapes: (N, K)."""
        if self._y_hat is None or self._y is None:
            raise ForwardNotCalledError(
                f"{type(self).__name__}.backward called before forward(logits, y)"
            )
        D = self.workspace.get("D", self._y_hat.shape, self._y_hat.dtype, self._y_hat)
        np.copyto(D, self._y_hat)
        # the seed's Step 1: δ = ∂L/∂ŷ · ∂ŷ/∂z = ŷ − y, the output activation's derivative
        # cancelled by the loss's (each subclass derives it in its docstring)
        self._subtract_targets(D, self._y)  # Ŷ − Y
        return self._batch_mean(D)

    def _batch_mean(self, D: Array) -> Array:
        """Per-sample deltas (N, K) → the batch mean's, in place: the loss's 1/N (w_n / Σ w)."""
        if self._row_scale is None:
            D *= D.dtype.type(1.0 / D.shape[0])  # the batch mean, owned here and nowhere else
        else:
            D *= self._row_scale  # the weighted mean: w_n / Σ w
        return D

    def _subtract_targets(self, D: Array, y: Array) -> None:
        D -= y

    @abstractmethod
    def predict(self, logits: Array) -> Array:
        """The output activation: probabilities or values. Shapes: (N, K) -> (N, K)."""

    def n_correct(self, logits: Array, y: Array) -> int:
        """Rows whose predicted class (or label set) is right; classification losses only."""
        raise TypeError(f"{type(self).__name__} is not a classification loss")

    # --- configuration -----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), for files and repr; none for the built-in losses."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def __repr__(self) -> str:
        return format_call(type(self).__name__, self.config())


def _weighted_sum(rows: Array, sample_weight: Array | None) -> float:
    """Σ_n w_n r_n in float64 (or Σ_n r_n). Shapes: rows (N,)."""
    if sample_weight is None:
        return float(np.sum(rows, dtype=np.float64))
    return float(np.dot(sample_weight, rows.astype(np.float64)))


def _as_2d_targets(name: str, y: Any, n_outputs: int, dtype: np.dtype[Any]) -> Array:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: y must be numeric, got dtype {y.dtype}")
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ShapeError(
            f"{name}: y has shape {y.shape}, expected (N, {n_outputs}) to match logits of width "
            f"{n_outputs}" + (" (or (N,) for a single output)" if n_outputs == 1 else "")
        )
    y = np.ascontiguousarray(y, dtype=dtype)
    check_finite("y", y, owner=name)
    return y


class SigmoidBinaryCrossEntropy(Loss):
    """Sigmoid output fused with binary cross-entropy, for binary and multi-label targets.

    Per output: ``ℓ = −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z``.

    The seed's cancellation: ∂ℓ/∂ŷ = (ŷ − y) / (ŷ(1 − ŷ)) and ∂ŷ/∂z = ŷ(1 − ŷ), so
    ``δ = ∂ℓ/∂z = ŷ − y``.

    Shapes: logits (N, K); y (N,) for K = 1 or (N, K), each entry in [0, 1].
    """

    task = "classification"
    derivation = formulas.SIGMOID_BCE
    output_activation = "Sigmoid"

    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        name = type(self).__name__
        y = _as_2d_targets(name, y, n_outputs, np.dtype(np.float64))
        outside = (y < 0) | (y > 1)
        if outside.any():
            row, col = (int(i) for i in np.argwhere(outside)[0])
            raise ValueError(
                f"{name}: labels must lie in [0, 1], got {y[row, col]:g} at row {row} "
                f"({int(outside.sum())} values outside)"
            )
        return y

    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        # ℓ = softplus(z) − y z, stable for any finite z
        per_sample = np.sum(F.softplus(logits) - y * logits, axis=1)  # (N,)
        self._y_hat = F.sigmoid(
            logits, out=self.workspace.get("Y_hat", logits.shape, logits.dtype, logits)
        )
        return _weighted_sum(per_sample, sample_weight)

    def predict(self, logits: Array) -> Array:
        """σ(z): the probability of each label. Shapes: (N, K) -> (N, K)."""
        return F.sigmoid(logits)

    def n_correct(self, logits: Array, y: Array) -> int:
        """Rows where every label is right (σ(z) > ½ ⇔ z > 0), as scikit-learn's accuracy."""
        return int(np.count_nonzero(np.all((logits > 0) == (y > 0.5), axis=1)))


class SoftmaxCrossEntropy(Loss):
    """Softmax output fused with categorical cross-entropy.

    ``ℓ = −Σ_k y_k log softmax(z)_k = logsumexp(z) − Σ_k y_k z_k`` (for rows of y summing to 1).

    With ŷ = softmax(z): ∂ℓ/∂z_k = ŷ_k − y_k — the Jacobian of softmax and the 1/ŷ of the log
    cancel just as sigmoid and BCE do in the seed, so ``δ = ŷ − y``.

    Shapes: logits (N, K); y either integer class indices (N,) in [0, K) — or an (N, 1) column
    of them — or one-hot / probability rows (N, K) that are non-negative and sum to 1.
    """

    task = "classification"
    derivation = formulas.SOFTMAX_CE
    output_activation = "Softmax"
    compiled_as = "softmax_cross_entropy"

    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        name = type(self).__name__
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1 and n_outputs > 1:
            y = y[:, 0]  # a column of class indices, as scikit-learn takes it
        if y.ndim == 1:
            if y.dtype.kind == "f":
                check_finite("y", y, owner=name)
                fractional = y != np.round(y)
                if fractional.any():
                    bad = int(np.argmax(fractional))
                    raise ValueError(
                        f"{name}: class indices must be integers, got {y[bad]} at row {bad}"
                    )
            elif y.dtype.kind not in "biu":
                raise TypeError(f"{name}: class indices must be integers, got dtype {y.dtype}")
            outside = (y < 0) | (y >= n_outputs)
            if outside.any():
                row = int(np.argwhere(outside)[0][0])
                raise ValueError(
                    f"{name}: class indices must lie in [0, {n_outputs}) for logits of width "
                    f"{n_outputs}, got {y[row]} at row {row} ({int(outside.sum())} outside)"
                )
            return y.astype(np.intp)
        if y.ndim == 2 and y.shape[1] != n_outputs:
            raise ShapeError(
                f"{name}: one-hot / probability targets have width {y.shape[1]} (shape {y.shape}), "
                f"but the logits have {n_outputs} classes"
            )
        y = _as_2d_targets(name, y, n_outputs, np.dtype(np.float64))
        bad_rows = (y < 0).any(axis=1) | ~np.isclose(y.sum(axis=1), 1.0, atol=1e-6)
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            raise ValueError(
                f"{name}: probability targets must be non-negative rows summing to 1; "
                f"row {row} is {y[row].tolist()} (sum {y[row].sum():g})"
            )
        return y

    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        P = self.workspace.get("P", logits.shape, logits.dtype, logits)  # ŷ = softmax(z) (N, K)
        if y.ndim == 1 and sample_weight is None:  # Σ_k y_k z_k = z[n, y_n], one compiled pass
            self._y_hat = P
            return F.softmax_cross_entropy_labels(logits, y, out=P)
        P, log_norm = F.softmax_and_logsumexp(logits, out=P)  # logsumexp(z) (N, 1)
        self._y_hat = P
        if y.ndim == 1:
            picked = logits[namespace(logits).arange(len(y)), y]  # z_n[y_n]
        else:
            picked = np.sum(y * logits, axis=1)
        return _weighted_sum(log_norm[:, 0] - picked, sample_weight)

    def _subtract_targets(self, D: Array, y: Array) -> None:
        if y.ndim == 1:  # one-hot implied: subtract 1 at each row's class
            F.subtract_one_hot(D, y)
        else:
            D -= y

    def predict(self, logits: Array) -> Array:
        """softmax(z): class probabilities. Shapes: (N, K) -> (N, K)."""
        return F.softmax(logits)

    def n_correct(self, logits: Array, y: Array) -> int:
        """Rows whose arg-max logit is the target class."""
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        return F.count_argmax_hits(logits, labels)


class MeanSquaredError(Loss):
    """Identity output with the ½ squared error: ``L = (1/N) Σ_n Σ_k ½ (z_nk − y_nk)²``.

    The ½ makes ∂ℓ/∂z = z − y = ŷ − y for any number of outputs, so regression shares the
    classification losses' delta. (scikit-learn's MLPRegressor uses the same ½ convention.)
    Note: the value reported is half the usual MSE; the training loop reports the plain MSE as a
    metric beside it.

    Shapes: logits (N, K); y (N,) for K = 1 or (N, K).
    """

    task = "regression"
    derivation = formulas.IDENTITY_HALF_SE

    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        return _as_2d_targets(type(self).__name__, y, n_outputs, np.dtype(np.float64))

    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        self._y_hat = logits
        residual = logits - y
        return _weighted_sum(0.5 * np.sum(residual * residual, axis=1), sample_weight)

    def predict(self, logits: Array) -> Array:
        """Identity: the regression output itself. Shapes: (N, K) -> (N, K)."""
        return logits.copy()


class PoissonLoss(Loss):
    """Exponential output fused with the half Poisson deviance, for counts and rates.

    Per output, with ŷ = e^z: ``ℓ = y log(y / ŷ) − y + ŷ = e^z − y z + (y log y − y)``; the
    bracket does not depend on z (it makes a perfect prediction cost 0, as scikit-learn's
    ``poisson`` loss does).

    The seed's cancellation: ∂ℓ/∂ŷ = 1 − y/ŷ and ∂ŷ/∂z = ŷ, so ``δ = ∂ℓ/∂z = ŷ − y``.

    Shapes: logits (N, K); y (N,) for K = 1 or (N, K), each entry >= 0. (e^z overflows above
    z ≈ 88 in float32 and 709 in float64.)
    """

    task = "regression"
    derivation = formulas.EXP_POISSON

    def prepare_targets(self, y: Any, n_outputs: int) -> Array:
        name = type(self).__name__
        y = _as_2d_targets(name, y, n_outputs, np.dtype(np.float64))
        if (y < 0).any():
            row, col = (int(i) for i in np.argwhere(y < 0)[0])
            raise ValueError(f"{name}: targets must be >= 0, got {y[row, col]:g} at row {row}")
        return y

    def _forward_sum(self, logits: Array, y: Array, sample_weight: Array | None) -> float:
        y_hat = np.exp(logits, out=self.workspace.get("Y_hat", logits.shape, logits.dtype, logits))
        self._y_hat = y_hat
        constant = _special().xlogy(y, y) - y  # y log y − y: 0 at y = 0
        return _weighted_sum(np.sum(y_hat - y * logits + constant, axis=1), sample_weight)

    def predict(self, logits: Array) -> Array:
        """e^z: the predicted mean. Shapes: (N, K) -> (N, K)."""
        return np.exp(logits)
