"""What the scikit-learn estimators add to ``fit``: scikit-learn's own bookkeeping and solvers.

:class:`SklearnBookkeeping` is a callback that keeps the attributes scikit-learn's MLPs keep
(``loss_curve_``, ``validation_scores_``, ``best_loss_``, ``t_``, ...) with scikit-learn's rules
for stopping (``tol``, ``n_iter_no_change``, ``early_stopping``) and for the learning rate
(``invscaling`` per epoch in samples seen, ``adaptive`` divided by 5), so a run stops where
scikit-learn's would. :func:`fit_lbfgs` minimizes the same objective with SciPy's L-BFGS-B over
the model's flat parameter buffer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from ..backend.arrays import Array, copy_into, moved_to, to_host
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..training.protocol import Callback, TrainingRun


def after_divergence(estimator: Any, reason: str | None) -> None:
    """After a blow-up, as scikit-learn: with early stopping the epoch scores NaN and the best
    weights stay (its issue 29504); else its error, after deltaprop's account."""
    if estimator.early_stopping:
        assert estimator.validation_scores_ is not None
        assert estimator.validation_loss_curve_ is not None
        estimator.n_iter_ += 1
        estimator.loss_curve_.append(math.nan)
        estimator.validation_scores_.append(math.nan)
        estimator.validation_loss_curve_.append(math.nan)
        estimator._stopped = True
        return
    raise ValueError(
        f"training diverged: {reason} Solver produced non-finite parameter weights. The "
        "input data may contain large values and need to be preprocessed."
    )


class SklearnBookkeeping(Callback):
    """scikit-learn's per-epoch bookkeeping, written into the estimator ``owner``.

    Args:
        owner: the estimator whose attributes are kept (``loss_curve_``, ``n_iter_``, ...).
        n_samples: training rows (``t_`` grows by this each epoch).
        validate: for early stopping, ``() -> (score, loss)`` on the held-out rows; or None.
    """

    def __init__(
        self, owner: Any, n_samples: int, validate: Callable[[], tuple[float, float]] | None
    ) -> None:
        self.owner = owner
        self.n_samples = n_samples
        self.validate = validate
        self._accumulated = 0.0
        self._best: list[Array] | None = None  # the model's snapshot at the best score

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        self._accumulated = 0.0

    def on_batch_end(self, run: TrainingRun, batch: int, loss: float) -> None:
        start = batch * run.batch_size
        rows = min(run.batch_size, len(run.train_index) - start)
        self._accumulated += loss * rows  # as scikit-learn: batch loss × batch rows

    def on_epoch_end(self, run: TrainingRun, epoch: int, logs: dict[str, float]) -> None:
        est = self.owner
        est.loss_ = self._accumulated / self.n_samples
        est.loss_curve_.append(est.loss_)
        est.n_iter_ += 1
        est.t_ += self.n_samples
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if self.validate is not None:
            score, validation_loss = self.validate()
            est.validation_scores_.append(score)
            est.validation_loss_curve_.append(validation_loss)
            logs["val_score"] = score
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self._keep_best(run.model)
        else:
            if est.loss_ > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, est.loss_)
        self._update_learning_rate(run, est)
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validate is not None else "Training loss"
            message = (
                f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
                "consecutive epochs."
            )
            if est.solver == "sgd" and est.learning_rate == "adaptive":
                if run.optimizer.current_lr() > 1e-6:
                    run.optimizer.lr_scale /= 5.0
                    est._no_improvement_count = 0
                    if est.verbose:
                        print(f"{message} Setting learning rate to {run.optimizer.current_lr():f}")
                    return
                message += " Learning rate too small."
            if est.verbose:
                print(f"{message} Stopping.")
            est._stopped = True
            run.stop(message)

    def _keep_best(self, model: Sequential) -> None:
        self._best = model.snapshot(into=self._best)

    def _update_learning_rate(self, run: TrainingRun, est: Any) -> None:
        """scikit-learn's ``invscaling``: lr = lr_init / (t + 1)^power_t, t the samples seen."""
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            run.optimizer.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t

    def on_train_end(self, run: TrainingRun) -> None:
        if self.validate is not None and self._best is not None:
            run.model.restore(self._best)  # as scikit-learn: the best


def fit_lbfgs(
    model: Sequential,
    loss: Loss,
    X: Array,
    y: Array,
    sample_weight: Array | None,
    *,
    max_iter: int,
    max_fun: int,
    tol: float,
    verbose: bool,
) -> tuple[int, float]:
    """Minimize the loss plus the L2 penalty over all of ``X`` with SciPy's L-BFGS-B.

    The parameters are the model's flat buffer, as one vector. Returns ``(iterations, loss)``,
    and warns as scikit-learn does when the solver stops before converging.
    """
    values = model.flat_values
    X, y = moved_to(X, values), moved_to(y, values)  # on a GPU: copied there once

    def loss_and_grad(theta: Array) -> tuple[float, Array]:
        copy_into(values, theta)
        logits = model.forward(X, training=True)
        value = loss.forward_prepared(logits, y, sample_weight)
        model.backward_params(loss.backward())
        penalty = model.penalty()
        if penalty:
            value += penalty / loss.normalizer
            model.penalty_backward(1.0 / loss.normalizer)
        return value, to_host(model.flat_grads).astype(np.float64)

    result = scipy.optimize.minimize(
        loss_and_grad,
        to_host(values).astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
    )
    if verbose:
        print(f"L-BFGS-B: {result.nit} iterations, loss = {result.fun:.8f} ({result.message})")
    copy_into(values, result.x)
    if result.status != 0:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iteration(s) (status="
            f"{result.status}): {result.message}. Increase the number of iterations to "
            "improve the convergence (max_iter), or scale the data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return int(result.nit), float(result.fun)


def check_finite_weights(model: Sequential) -> None:
    """scikit-learn's refusal of a model whose weights are not finite after training."""
    if not np.isfinite(model.flat_values).all():
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may contain large "
            "values and need to be preprocessed."
        )
