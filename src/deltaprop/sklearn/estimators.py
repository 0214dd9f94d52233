"""scikit-learn's MLPClassifier and MLPRegressor on deltaprop's engine: change the import.

Every constructor parameter of scikit-learn 1.9's MLPs has the same name, default and meaning,
the fitted attributes are the same (``coefs_`` as (fan_in, fan_out) arrays, ``loss_curve_``,
``n_iter_``, ...), and the estimators pass scikit-learn's own estimator checks. Beyond them:

- ``dropout``: a rate (or one per hidden layer) for Dropout after each hidden activation;
- ``solver="adamw"`` (``alpha`` is then decoupled weight decay) and ``solver="rmsprop"``;
- ``class_weight`` (a dict or ``"balanced"``) for the classifier;
- ``validation_loss_curve_`` beside ``validation_scores_`` with ``early_stopping``;
- ``callbacks``: deltaprop callbacks (``dp.CSVLogger``, ``dp.Diagnostics``, ...), and a
  progress bar on a terminal when ``verbose``;
- ``warm_start`` and ``partial_fit`` *continue* the optimizer's state (Adam's moments, SGD's
  momentum) where scikit-learn starts a new optimizer on every ``fit`` (its issue 6091);
- ``dtype``: float32 data train in float32, anything else in float64, unless set;
- ``device``: ``"cuda"`` trains and predicts on a GPU (``deltaprop[cuda12]``), from the
  same seeded weights as on the CPU; ``coefs_`` and ``intercepts_`` are then host copies, and
  a saved estimator loads on any machine (on the CPU);
- ``distributed``: ``True`` under ``mpiexec -n N`` trains data-parallel on every rank (the
  stochastic solvers; see :mod:`deltaprop.training.data_parallel`), to the one-process result;
- ``dp.save(estimator, path)`` / ``dp.load(path)``: a fitted estimator in a safe model file.

One difference in a reported number: for several regression outputs, ``loss_`` is the loss
whose gradient is followed, summed over outputs (scikit-learn reports it averaged over outputs
while following the summed gradient, its issue 8349). Training itself follows the same
gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .. import registry
from ..backend.arrays import Array
from ..nn.losses import (
    Loss,
    MeanSquaredError,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from .base import BaseMLP, keep_arguments


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's, on deltaprop's engine.

    The parameters are scikit-learn 1.9's (see its documentation), plus ``dropout``,
    ``class_weight``, ``callbacks``, ``dtype``, ``device`` and ``distributed`` and the solvers
    ``"adamw"`` and ``"rmsprop"`` (see :mod:`deltaprop.sklearn.estimators`). Binary and
    multi-label targets train a sigmoid output with binary cross-entropy, multiclass targets a
    softmax output.
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dropout: Any = 0.0,
        class_weight: Any = None,
        callbacks: list[Any] | None = None,
        dtype: str | None = None,
        device: str = "cpu",
        distributed: Any = None,
    ) -> None:
        keep_arguments(self, locals())

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Fit the model to data matrix X and target(s) y (class labels)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """One epoch over (X, y), continuing the model and the optimizer's state.

        ``classes`` (all classes across calls) is required on the first call.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Array]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        self._y_raw = y
        return X, self._label_binarizer.transform(y).astype(np.float64)

    def _weights_with_classes(self, sample_weight: Array | None, y: Array) -> Array | None:
        if self.class_weight is None:
            return sample_weight
        labels = self._y_raw
        weights = compute_sample_weight(self.class_weight, labels)
        return weights if sample_weight is None else sample_weight * weights

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _make_loss(self) -> Loss:
        return (
            SoftmaxCrossEntropy()
            if self.out_activation_ == "softmax"
            else SigmoidBinaryCrossEntropy()
        )

    def _encode(self, targets: Array) -> Array:
        """Binarized labels as the loss takes them: class indices for a softmax output."""
        if self.out_activation_ == "softmax":
            return np.argmax(targets, axis=1)
        return targets

    def _decode_targets(self, targets: Array) -> Array:
        return self._label_binarizer.inverse_transform(
            targets.ravel() if self.n_outputs_ == 1 else targets
        )

    def _stratify(self) -> bool:
        # as scikit-learn: its labels are binarized first, so only two classes give one output
        # column and are stratified; many classes (and multilabel) are not
        return self.n_outputs_ == 1

    def _validation_score(self, X: Array, y: Array, sample_weight: Array | None) -> float:
        return float(accuracy_score(y, self._predict_prepared(X), sample_weight=sample_weight))

    def _probabilities(self, logits: Array) -> Array:
        probabilities = self._loss_function.predict(logits)
        if self.out_activation_ == "logistic":
            # σ(z) rounds to exactly 0 or 1 for |z| > 37 (float64): keep it inside (0, 1), as
            # a probability of a label is
            dtype = probabilities.dtype
            np.clip(
                probabilities,
                np.finfo(dtype).tiny,
                np.nextafter(dtype.type(1), 0),
                out=probabilities,
            )
        return probabilities

    def _predict_prepared(self, X: Array) -> Array:
        probabilities = self._probabilities(self.model_.predict_logits(X))
        if self.n_outputs_ == 1:
            probabilities = probabilities.ravel()
        return self._label_binarizer.inverse_transform(probabilities)

    def predict(self, X: Any) -> Array:
        """Predicted classes. Shapes: X (N, n_features) -> (N,) or (N, n_classes) multi-label."""
        check_is_fitted(self)
        probabilities = self._probabilities(self._logits(X))
        if self.n_outputs_ == 1:
            probabilities = probabilities.ravel()
        return self._label_binarizer.inverse_transform(probabilities)

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities, columns in the order of ``classes_``. Shapes: (N, n_classes)."""
        check_is_fitted(self)
        probabilities = self._probabilities(self._logits(X))
        if self.n_outputs_ == 1:
            p = probabilities.ravel()
            return np.vstack([1 - p, p]).T
        return probabilities

    def predict_log_proba(self, X: Any) -> Array:
        """log of :meth:`predict_proba`."""
        probabilities = self.predict_proba(X)
        return np.log(probabilities, out=probabilities)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's, on deltaprop's engine.

    ``loss="squared_error"`` trains an identity output with the half squared error,
    ``loss="poisson"`` an exponential output with the half Poisson deviance. Other parameters
    as :class:`MLPClassifier` (without ``class_weight``).
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dropout: Any = 0.0,
        callbacks: list[Any] | None = None,
        dtype: str | None = None,
        device: str = "cpu",
        distributed: Any = None,
    ) -> None:
        keep_arguments(self, locals())

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Fit the model to data matrix X and target(s) y (real numbers)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), continuing the model and the optimizer's state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Array]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression."
            )
        return X, np.asarray(y, dtype=np.float64)

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _make_loss(self) -> Loss:
        return PoissonLoss() if self.loss == "poisson" else MeanSquaredError()

    def _encode(self, targets: Array) -> Array:
        return targets

    def _decode_targets(self, targets: Array) -> Array:
        return targets.ravel() if self.n_outputs_ == 1 else targets

    def _stratify(self) -> bool:
        return False

    def _validation_score(self, X: Array, y: Array, sample_weight: Array | None) -> float:
        predicted = self._loss_function.predict(self.model_.predict_logits(X))
        if not np.isfinite(predicted).all():
            return float("nan")
        predicted = predicted.ravel() if self.n_outputs_ == 1 else predicted
        return float(r2_score(y, predicted, sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    def predict(self, X: Any) -> Array:
        """Predicted values. Shapes: X (N, n_features) -> (N,) or (N, n_outputs)."""
        check_is_fitted(self)
        predicted = self._loss_function.predict(self._logits(X))
        return predicted.ravel() if predicted.shape[1] == 1 else predicted


registry.ESTIMATORS.register(MLPClassifier)
registry.ESTIMATORS.register(MLPRegressor)
