"""From a data set to a model ready to train: the steps ``deltaprop train``, the playground and
the code the playground exports share, written once.

1. :func:`prepare`: the train/test split, the preprocessing fitted on the training rows only,
   and both parts as the network reads them (features, and class indices or the scaled target);
2. :func:`choose_loss`: the loss named, or the task's (sigmoid + BCE for two classes, softmax
   cross-entropy above, half mean squared error for regression);
3. :func:`widths` and :func:`build_mlp`: the network from the hidden widths, its input and
   output widths read from the preprocessing and the loss.

4. :func:`build_optimizer`: the optimizer of a registry name on the network's parameters.

``fit`` follows, as each face decides (epochs, callbacks, the schedule).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import registry
from ..backend.arrays import Array
from ..data.dataset import Dataset
from ..data.missing import (
    STRATEGIES,
    check_complete,
    describe_missing,
    drop_incomplete,
    missing_counts,
)
from ..data.preprocessing import Preprocessor
from ..nn.losses import Loss, MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from ..nn.mlp import mlp
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer


@dataclass
class Prepared:
    """A data set split, its preprocessing, and both parts as the network reads them.

    Shapes: ``X_train`` (N_train, F), ``y_train`` (N_train,), ``X_test`` (N_test, F),
    ``y_test`` (N_test,), F = ``prep.n_features``.
    """

    train: Dataset
    test: Dataset
    prep: Preprocessor
    X_train: Array
    y_train: Array
    X_test: Array
    y_test: Array
    notes: list[str]


def prepare(
    dataset: Dataset,
    *,
    test_size: float | None = None,
    seed: int = 0,
    standardize: bool | None = None,
    target: str | None = None,
    record_split: bool = False,
    dtype: npt.DTypeLike | None = None,
    missing: str = "refuse",
) -> Prepared:
    """Split ``dataset`` and fit its preprocessing on the training rows.

    Args:
        test_size: fraction held out for the test; None: the set's own test split, else 0.25.
        seed: the seed of the split.
        standardize: scale numeric columns (and a regression target) to mean 0, std 1 on the
            training rows; None: as the data set recommends (``dataset.standardize``).
        target: the target column's name, kept in the preprocessing (files name it).
        record_split: keep ``test_size``, ``seed`` and ``missing`` in the preprocessing (and so
            in the model file), so that ``evaluate`` can find the same test rows again.
        dtype: cast the features (and a regression target) to this type; None: float64.
        missing: what to do with missing cells (:mod:`deltaprop.data.missing`): ``"refuse"``,
            ``"drop"`` the incomplete rows, or ``"impute"`` the training rows' column means.

    Returns:
        The parts, with ``notes`` saying what was done about missing cells.

    Raises:
        ValueError: for a ``test_size`` that leaves no rows, missing values (with ``"refuse"``),
            or a text column that cannot be one-hot encoded.
    """
    dataset, notes = _handle_missing(dataset, missing)
    train, test = dataset.split(test_size, seed)
    prep = Preprocessor.fit(
        train,
        standardize=dataset.standardize if standardize is None else standardize,
        target=target,
        split={"test_size": test_size, "seed": seed, "missing": missing} if record_split else None,
        categories_from=dataset.features,
        impute=missing == "impute",
    )
    X_train, X_test = prep.transform(train.features), prep.transform(test.features)
    y_train, y_test = prep.training_target(train), prep.training_target(test)
    if dtype is not None:
        X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
        if prep.task == "regression":
            y_train, y_test = y_train.astype(dtype), y_test.astype(dtype)
    return Prepared(train, test, prep, X_train, y_train, X_test, y_test, notes)


def _handle_missing(dataset: Dataset, missing: str) -> tuple[Dataset, list[str]]:
    """The data set to split, and what was done about its missing cells."""
    if missing not in STRATEGIES:
        raise ValueError(f"missing must be one of {', '.join(STRATEGIES)}, got {missing!r}")
    parts = [dataset.features] + ([] if dataset.test is None else [dataset.test.features])
    if missing == "refuse":
        for table in parts:
            check_complete(table)
        return dataset, []
    if missing == "drop":
        dataset, note = drop_incomplete(dataset)
        return dataset, [] if note is None else [note]
    counts = [missing_counts(table) for table in parts]
    return dataset, [
        f"{describe_missing(*c)}: each filled with its column's training mean (the most frequent "
        "category for text)"
        for c in counts
        if c[0]
    ]


def default_loss(task: str, n_classes: int) -> Loss:
    """The fused loss for a task: sigmoid + BCE for two classes, softmax cross-entropy above,
    half mean squared error for regression."""
    if task == "regression":
        return MeanSquaredError()
    return SigmoidBinaryCrossEntropy() if n_classes == 2 else SoftmaxCrossEntropy()


def choose_loss(name: str | None, prep: Preprocessor) -> Loss:
    """The loss of registry name ``name``, or the task's default (None or ``"auto"``).

    Raises:
        UnknownNameError: for a name the registry does not know.
        ValueError: for a loss of another task (a regression loss on classes, say).
    """
    if name is None or name == "auto":
        return default_loss(prep.task, len(prep.class_names))
    loss: Loss = registry.LOSSES.get(name)()
    if loss.task != prep.task:
        raise ValueError(f"{name} is a {loss.task} loss, but the task is {prep.task}")
    return loss


def output_width(loss: Loss, task: str, n_classes: int) -> int:
    """Outputs of the last layer: one for a regression or a sigmoid output on two classes (the
    loss says which output activation it applies), else one per class."""
    if task == "regression" or (n_classes == 2 and loss.output_activation == "Sigmoid"):
        return 1
    return n_classes


def widths(prep: Preprocessor, loss: Loss, hidden: Sequence[int]) -> list[int]:
    """The network's widths: the features, the ``hidden`` widths, the loss's outputs."""
    return [prep.n_features, *hidden, output_width(loss, prep.task, len(prep.class_names))]


def build_mlp(
    prep: Preprocessor,
    loss: Loss,
    hidden: Sequence[int],
    *,
    rng: np.random.Generator,
    activation: str = "relu",
    **options: Any,
) -> Sequential:
    """:func:`~deltaprop.nn.mlp.mlp` of :func:`widths`, with the activation of registry name
    ``activation`` between the layers; ``options`` go to ``mlp`` (``init``, ``dropout``,
    ``l2``, ``dtype``).

    Raises:
        UnknownNameError: for an activation the registry does not know.
        ValueError: for options ``mlp`` refuses.
    """
    make = registry.ACTIVATIONS.get(activation)
    return mlp(widths(prep, loss, hidden), rng=rng, activation=make, **options)


def build_optimizer(
    name: str | type[Optimizer], model: Sequential, lr: Any, **arguments: Any
) -> Optimizer:
    """The optimizer of registry name ``name`` (or that class) on ``model``'s parameters, with
    learning rate (or schedule) ``lr`` and its other ``arguments``.

    Raises:
        UnknownNameError: for a name the registry does not know.
        ValueError: for an argument the optimizer does not take (it lists those it does), or a
            value it refuses.
    """
    kind = registry.OPTIMIZERS.get(name) if isinstance(name, str) else name
    accepted = set(inspect.signature(kind).parameters) - {"parameters", "lr"}
    unknown = sorted(set(arguments) - accepted)
    if unknown:
        raise ValueError(f"{kind.__name__} takes no {unknown}; it takes {sorted(accepted)}")
    return kind(model.parameters(), lr=lr, **arguments)
