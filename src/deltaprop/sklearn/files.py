"""A fitted estimator in a model file: its model, its parameters and its state, as data.

``dp.save(estimator, path)`` writes the estimator's network and loss as any model file does,
plus a JSON description — the constructor parameters, the fitted attributes scikit-learn users
read (``classes_``, ``loss_curve_``, ``n_iter_``, ...) — and the optimizer's state, so a
``warm_start`` or ``partial_fit`` after ``dp.load`` continues where it stopped. Parameters that
are not data (``callbacks``, a ``RandomState`` object) are not written; they come back as their
defaults, and the description lists them under ``"not_saved"``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..backend.arrays import Array, copy_into
from ..errors import ModelFileError
from ..nn.losses import Loss
from ..nn.sequential import Sequential

_STATE = (
    "n_features_in_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "n_iter_",
    "t_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "validation_loss_curve_",
    "best_validation_score_",
    "_no_improvement_count",
)


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it, or raise TypeError."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return {"tuple": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_plain(k), _plain(v)] for k, v in value.items()]}
    json.dumps(value)  # TypeError for anything else
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(_unplain(v) for v in value["tuple"])
    if isinstance(value, dict) and set(value) == {"dict"}:
        return {_unplain(k): _unplain(v) for k, v in value["dict"]}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def describe(estimator: Any) -> tuple[Sequential, Loss, dict[str, Any], dict[str, Array]]:
    """The model, loss, JSON description and extra tensors of a fitted estimator."""
    params, not_saved = {}, []
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = _plain(value)
        except TypeError:
            not_saved.append(name)
    state = {name: _plain(getattr(estimator, name)) for name in _STATE if hasattr(estimator, name)}
    if hasattr(estimator, "feature_names_in_"):
        state["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]
    if hasattr(estimator, "classes_"):
        binarizer = estimator._label_binarizer
        state["classes"] = {
            "values": estimator.classes_.tolist(),
            "dtype": estimator.classes_.dtype.str,
            "y_type": binarizer.y_type_,
        }
    tensors: dict[str, Array] = {}
    optimizer = getattr(estimator, "optimizer_", None)
    if optimizer is not None:
        state["optimizer"] = {"step_count": optimizer.step_count, "lr_scale": optimizer.lr_scale}
        for key, array in optimizer.state.items():
            tensors[f"estimator.optimizer.{key}"] = array
    document = {"params": params, "not_saved": not_saved, "state": state}
    return estimator.model_, estimator._loss_function, document, tensors


def rebuild(
    cls: type,
    model: Sequential,
    loss: Loss | None,
    document: dict[str, Any],
    tensors: dict[str, Array],
) -> Any:
    """The fitted estimator :func:`describe` wrote.

    Raises:
        ModelFileError: for a description that does not make one.
    """
    if loss is None:
        raise ModelFileError("an estimator file must hold its loss")
    try:
        params = {name: _unplain(value) for name, value in document["params"].items()}
        estimator = cls(**params)
        state = document["state"]
        for name in _STATE:
            if name in state:
                setattr(estimator, name, state[name])
        if "feature_names_in_" in state:
            estimator.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        estimator.model_ = model
        estimator._loss_function = loss
        estimator._stopped = False
        if "classes" in state:
            from sklearn.preprocessing import LabelBinarizer

            classes = np.asarray(
                state["classes"]["values"], dtype=np.dtype(state["classes"]["dtype"])
            )
            binarizer = LabelBinarizer()
            binarizer.classes_ = classes
            binarizer.y_type_ = str(state["classes"]["y_type"])
            binarizer.sparse_input_ = False
            estimator._label_binarizer = binarizer
            estimator.classes_ = classes
        estimator.optimizer_ = None
        if "optimizer" in state:
            optimizer = estimator._make_optimizer()
            for key, array in optimizer.state.items():
                saved = tensors[f"estimator.optimizer.{key}"]
                if saved.shape != array.shape or saved.dtype != array.dtype:
                    raise ValueError(f"optimizer state {key!r} does not fit the model")
                copy_into(array, saved)
            optimizer.step_count = int(state["optimizer"]["step_count"])
            optimizer.lr_scale = float(state["optimizer"]["lr_scale"])
            estimator.optimizer_ = optimizer
        _check_fits(estimator, model, loss)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise ModelFileError(
            f"its estimator description does not make a {cls.__name__}: {error}"
        ) from None
    return estimator


_REQUIRED = ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_")
"""The fitted attributes ``predict`` needs."""


def _check_fits(estimator: Any, model: Sequential, loss: Loss) -> None:
    """The estimator's state describes its network: input width, outputs, classes, task.

    Raises:
        ValueError: naming the first thing that disagrees.
    """
    missing = [name for name in _REQUIRED if not hasattr(estimator, name)]
    if missing:
        raise ValueError(f"its state lacks {missing}")
    n_in = model.input_features()
    if n_in is None:
        raise ValueError("its network has no layer of fixed input width")
    width = model.output_features(n_in)
    if getattr(estimator, "n_features_in_", n_in) != n_in:
        raise ValueError(f"n_features_in_ is {estimator.n_features_in_}, the network takes {n_in}")
    if getattr(estimator, "n_outputs_", width) != width:
        raise ValueError(f"n_outputs_ is {estimator.n_outputs_}, the network has {width} outputs")
    classes = getattr(estimator, "classes_", None)
    if (classes is not None) != (loss.task == "classification"):
        raise ValueError(f"a {loss.task} loss does not fit {type(estimator).__name__}")
    if classes is None:
        return
    y_type = estimator._label_binarizer.y_type_
    if y_type not in ("binary", "multiclass", "multilabel-indicator"):
        raise ValueError(f"unknown target type {y_type!r}")
    if len(set(classes.tolist())) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes_ must be 2 or more distinct labels, got {classes.tolist()[:10]}")
    expected = 1 if y_type == "binary" else len(classes)
    if width != expected:
        raise ValueError(
            f"{len(classes)} classes ({y_type}) need {expected} outputs, the network has {width}"
        )
