"""What the scikit-learn estimators share: parameters, building the model, training, files.

:class:`BaseMLP` turns scikit-learn's MLP parameters into a deltaprop model, loss and optimizer
(with scikit-learn's initialization), trains it with ``dp.fit`` plus scikit-learn's bookkeeping
(:mod:`deltaprop.sklearn.bookkeeping`) or SciPy's L-BFGS-B, and exposes the fitted attributes
scikit-learn users read. :mod:`deltaprop.sklearn.estimators` holds the two public classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    validate_data,
)

from .. import registry
from ..backend.arrays import Array, Device, copy_into, float_dtype, to_host
from ..nn.dense import Dense
from ..nn.dropout import Dropout
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim import adam, rmsprop, sgd
from ..optim.optimizer import Optimizer
from ..training.evaluation import evaluate
from ..training.loop import fit
from ..training.progress import ProgressBar
from ..validation import prepare_weights
from .bookkeeping import SklearnBookkeeping, after_divergence, check_finite_weights, fit_lbfgs
from .files import describe, rebuild

_STOCHASTIC = ("sgd", "adam", "adamw", "rmsprop")


class BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, building, training."""

    optimizer_: Optimizer | None

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw", "rmsprop"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "callbacks": [list, None],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "device": [str, Device],
        "distributed": ["boolean", None, HasMethods(["sum_", "gather_all"])],
    }

    # --- training --------------------------------------------------------------------------

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool) -> Self:
        self._validate_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sparse.issparse(X):
            X = X.toarray()
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            # every solver, L-BFGS too: negative weights, or none above 0, are refused
            prepare_weights(sample_weight, len(X), owner=type(self).__name__, training=True)
        sample_weight = self._weights_with_classes(sample_weight, y)
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], hidden, targets.shape[1], X.dtype, rs)
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"the targets have {targets.shape[1]} outputs, the fitted model "
                f"{self.n_outputs_}; use warm_start=False to start again"
            )
        X = np.ascontiguousarray(X, dtype=self.model_.dtype)
        encoded = self._encode(targets)
        if self.solver == "lbfgs":
            if self.distributed:
                raise ValueError("distributed= trains with the stochastic solvers, not lbfgs")
            self.n_iter_, self.loss_ = fit_lbfgs(
                self.model_,
                self._loss_function,
                X,
                self._loss_function.prepare_targets(encoded, self.n_outputs_),
                sample_weight,
                max_iter=self.max_iter,
                max_fun=self.max_fun,
                tol=self.tol,
                verbose=bool(self.verbose),
            )
        else:
            self._fit_stochastic(X, targets, encoded, sample_weight, rs, incremental)
        check_finite_weights(self.model_)
        return self

    def _fit_stochastic(
        self,
        X: Array,
        targets: Array,
        encoded: Array,
        sample_weight: Array | None,
        rs: np.random.RandomState,
        incremental: bool,
    ) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.optimizer_ is None or not (self.warm_start or incremental):
            self.optimizer_ = self._make_optimizer()
        validate, rows = None, None
        if self.early_stopping:  # the training rows by index: a memory map is not copied
            rows, validate = self._hold_out(X, encoded, targets, sample_weight, rs)
        n_samples = X.shape[0] if rows is None else len(rows)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        self.n_iter_ = 0
        self._stopped = False
        callbacks = [SklearnBookkeeping(self, n_samples, validate), *(self.callbacks or [])]
        if self.verbose:
            callbacks.append(ProgressBar())
        history = fit(
            self.model_,
            self._loss_function,
            self.optimizer_,
            X,
            encoded,
            epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            rng=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
            sample_weight=sample_weight,
            shuffle=self.shuffle,
            callbacks=callbacks,
            verbose=0,
            distributed=self.distributed,
            train_rows=rows,
        )
        if history.diverged:
            after_divergence(self, history.stop_reason)
        if not incremental and not self._stopped and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _hold_out(
        self,
        X: Array,
        encoded: Array,
        targets: Array,
        sample_weight: Array | None,
        rs: np.random.RandomState,
    ) -> tuple[Array, Callable[[], tuple[float, float]]]:
        """scikit-learn's early-stopping split — the training rows' indices, in its order —
        and a function scoring the held-out rows: ``() -> (validation score, loss)``."""
        stratify = encoded if self._stratify() else None
        rows, held_out = train_test_split(
            np.arange(len(X)),
            random_state=rs,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_val, encoded_val, targets_val = X[held_out], encoded[held_out], targets[held_out]
        weight_val = None if sample_weight is None else sample_weight[held_out]
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        labels_val = self._decode_targets(targets_val)

        def validate() -> tuple[float, float]:
            score = self._validation_score(X_val, labels_val, weight_val)
            loss = evaluate(
                self.model_, self._loss_function, X_val, encoded_val, sample_weight=weight_val
            )["loss"]
            return score, loss

        return rows, validate

    def _initialize(
        self,
        n_features: int,
        hidden: list[int],
        n_outputs: int,
        data_dtype: np.dtype[Any],
        rs: np.random.RandomState,
    ) -> None:
        """A new model with scikit-learn's initialization, and fresh bookkeeping."""
        dtype = float_dtype(self.dtype) if self.dtype is not None else data_dtype
        widths = [n_features, *hidden, n_outputs]
        rates = self._dropout_rates(len(hidden))
        activation = registry.ACTIVATIONS.get(self.activation)
        l2 = 0.0 if self.solver == "adamw" else float(self.alpha)
        rng = np.random.default_rng(0)  # the draws below replace Dense's own
        layers: list[Any] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(Dense(fan_in, fan_out, rng=rng, dtype=dtype, l2=l2))
            if i < len(hidden):
                layers.append(activation())
                if rates[i] > 0:
                    layers.append(Dropout(rates[i]))
        self.model_ = Sequential(*layers)
        # scikit-learn's Glorot-uniform draws, in its order: the same weights for the same seed
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(self._named("W"), self._named("b"), strict=True):
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W.value[...] = rs.uniform(-bound, bound, (fan_in, fan_out)).T
            b.value[...] = rs.uniform(-bound, bound, fan_out)
        self.model_.to(self.device)  # drawn on the host, then moved: the same weights anywhere
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(widths)
        self.out_activation_ = self._output_activation()
        self._loss_function = self._make_loss()
        self.optimizer_ = None
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self._stopped = False
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.validation_loss_curve_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _make_optimizer(self) -> Optimizer:
        params = self.model_.parameters()
        lr = float(self.learning_rate_init)
        betas = (float(self.beta_1), float(self.beta_2))
        if self.solver == "sgd":
            momentum = float(self.momentum)
            nesterov = bool(self.nesterovs_momentum) and 0 < momentum < 1
            return sgd.SGD(params, lr, momentum=min(momentum, 0.999999), nesterov=nesterov)
        if self.solver == "adamw":
            return adam.AdamW(
                params, lr, betas=betas, eps=float(self.epsilon), weight_decay=float(self.alpha)
            )
        if self.solver == "rmsprop":
            return rmsprop.RMSprop(params, lr, eps=float(self.epsilon))
        return adam.Adam(params, lr, betas=betas, eps=float(self.epsilon))

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                "not stochastic."
            )
        return True

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if not hasattr(sizes, "__iter__") else list(sizes)
        if any(int(s) <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _dropout_rates(self, n_hidden: int) -> list[float]:
        rates = self.dropout
        if not hasattr(rates, "__iter__"):
            return [float(rates)] * n_hidden
        rates = [float(r) for r in rates]
        if len(rates) != n_hidden or not all(0 <= r < 1 for r in rates):
            raise ValueError(
                f"dropout must be a rate in [0, 1) or one per hidden layer ({n_hidden}), got "
                f"{self.dropout!r}"
            )
        if self.solver == "lbfgs" and any(rates):
            raise ValueError("dropout needs a stochastic solver ('adam', 'sgd', ...), not lbfgs")
        return rates

    def _weights_with_classes(self, sample_weight: Array | None, y: Array) -> Array | None:
        return sample_weight

    def _logits(self, X: Any) -> Array:
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if sparse.issparse(X):
            X = X.toarray()
        return self.model_.predict_logits(np.asarray(X, dtype=self.model_.dtype))

    # --- scikit-learn's fitted attributes, read from (and written into) the model -----------

    @property
    def coefs_(self) -> list[Array]:
        """Weight matrices, (fan_in, fan_out) as scikit-learn's: views of the model's W.T, so
        changing them in place changes the model (on a GPU: host copies)."""
        return [to_host(W.value).T for W in self._named("W")]

    @coefs_.setter
    def coefs_(self, values: list[Array]) -> None:
        for W, value in zip(self._named("W"), values, strict=True):
            copy_into(W.value, np.asarray(value).T)

    @property
    def intercepts_(self) -> list[Array]:
        """Bias vectors: views of the model's b (on a GPU: host copies)."""
        return [to_host(b.value) for b in self._named("b")]

    @intercepts_.setter
    def intercepts_(self, values: list[Array]) -> None:
        for b, value in zip(self._named("b"), values, strict=True):
            copy_into(b.value, np.asarray(value))

    def _named(self, local: str) -> list[Any]:
        """Each layer's parameter called ``local`` ("W", "b"), in order."""
        if not hasattr(self, "model_"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet")
        return [p for layer in self.model_ for name, p in layer.named_parameters() if name == local]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # --- safe model files -------------------------------------------------------------------

    def __deltaprop_save__(self) -> tuple[Sequential, Loss, dict[str, Any], dict[str, Array]]:
        """What ``dp.save`` writes: the model, its loss, a JSON description, extra tensors."""
        check_is_fitted(self)
        return describe(self)

    @classmethod
    def __deltaprop_load__(
        cls, model: Sequential, loss: Loss | None, document: dict[str, Any], tensors: dict
    ) -> Any:
        """The fitted estimator a file describes (``dp.load`` calls this)."""
        return rebuild(cls, model, loss, document, tensors)


def keep_arguments(estimator: BaseEstimator, arguments: dict[str, Any]) -> None:
    """Set each constructor argument as an attribute of the same name, as scikit-learn's
    estimators do (and nothing else: fitting happens in ``fit``)."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
