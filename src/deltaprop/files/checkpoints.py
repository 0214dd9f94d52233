"""Training checkpoints: everything ``fit`` needs to continue exactly where it stopped.

A checkpoint is a model file (:mod:`deltaprop.files.model_files`) whose document also holds the
epoch reached, the History, the random generator's state, the optimizer's type, learning rate (or
schedule) and hyperparameters, its step count and learning-rate scale, and the callbacks' state; its
tensors also hold the optimizer's state arrays (``"optimizer.exp_avg"``, ...), the validation rows
(``"split.val_index"``) and the callbacks' arrays (``"callbacks.<i>.<key>"``).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import registry
from ..backend.arrays import Array, copy_into
from ..errors import ModelFileError, UnknownNameError
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from ..optim.optimizer import Optimizer
from .format import FileContents, json_value, read_file, write_file
from .model_files import (
    architecture_differences,
    base_info,
    check_finite_tensors,
    fill_model,
    model_from,
)


def data_fingerprint(X: Array, y: Array, sample: int = 1024) -> dict[str, Any]:
    """What identifies a training set cheaply: its rows, its features and a SHA-256 of its
    dtypes and of up to ``sample`` evenly spaced rows of X and y."""
    rows = np.unique(np.linspace(0, len(X) - 1, min(sample, len(X))).astype(np.int64))
    digest = hashlib.sha256(f"{X.dtype}|{X.shape}|{y.dtype}|{y.shape}".encode())
    digest.update(np.ascontiguousarray(X[rows]).data)
    digest.update(np.ascontiguousarray(y[rows]).data)
    return {"rows": int(len(X)), "features": int(X.shape[1]), "sha256": digest.hexdigest()}


def _data_differences(saved: Any, current: dict[str, Any]) -> str | None:
    if not isinstance(saved, dict):
        return None  # written before checkpoints recorded their data
    for key in ("rows", "features"):
        if saved.get(key) != current[key]:
            return (
                f"it was written while training on {saved.get(key)} {key}, this fit has "
                f"{current[key]}"
            )
    if saved.get("sha256") != current["sha256"]:
        return (
            f"it was written while training on other data of the same shape ({current['rows']} "
            "rows): the fingerprint of its sampled rows differs"
        )
    settings = saved.get("settings")
    for key, value in current.get("settings", {}).items():
        if isinstance(settings, dict) and key in settings and settings[key] != value:
            if key == "sample_weight":
                if settings[key] is None or value is None:
                    given = ("without", "with") if value is not None else ("with", "without")
                    return f"it was written {given[0]} sample_weight, this fit is {given[1]}"
                return "sample_weight differs from the weights it was written with"
            return f"{key} differs: it was written with {settings[key]!r}, this fit has {value!r}"
    return None


def optimizer_config(optimizer: Optimizer) -> dict[str, Any]:
    """``{"type", "lr", "hyperparameters"}``: the optimizer as a checkpoint describes it.

    A schedule is written as ``{"schedule": <name>, **its config}``.

    Raises:
        ValueError: for a learning rate that is a plain function (it cannot be written down).
    """
    config = optimizer.config()
    lr = config.pop("lr")
    if callable(lr):
        try:
            described = registry.to_config(lr, registry.SCHEDULES)
        except UnknownNameError:
            raise ValueError(
                "cannot checkpoint a learning rate given as a plain function; use a "
                "deltaprop.optim.schedules.Schedule (or register your schedule class in "
                "deltaprop.registry.SCHEDULES)"
            ) from None
        lr = {"schedule": described.pop("type"), **described}
    return {
        "type": registry.OPTIMIZERS.name_of(type(optimizer)),
        "lr": lr,
        "hyperparameters": json_value(config),
    }


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    *,
    epoch: int,
    history: dict[str, list[float]],
    rng_state: dict[str, Any],
    val_index: Array | None = None,
    callbacks: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    data: dict[str, Any] | None = None,
    generator_states: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> None:
    """Write everything needed to continue training exactly, atomically.

    ``data`` is the training set's :func:`data_fingerprint`, checked when resuming;
    ``generator_states`` the states of the layers' own generators (a Dropout given ``rng=``),
    in the order of ``model.generators()``, restored when resuming.
    """
    tensors: dict[str, Array] = dict(model.state_dict())
    for key, array in optimizer.state.items():
        tensors[f"optimizer.{key}"] = array
    if val_index is not None:
        tensors["split.val_index"] = np.asarray(val_index, dtype=np.int64)
    saved_callbacks = []
    for i, (name, state) in enumerate(callbacks):
        plain: dict[str, Any] = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                tensors[f"callbacks.{i}.{key}"] = value
                plain[key] = {"tensor": f"callbacks.{i}.{key}"}
            else:
                plain[key] = json_value(value)
        saved_callbacks.append({"type": name, "state": plain})
    info = base_info(model, loss, "checkpoint")
    info["checkpoint"] = {
        "epoch": int(epoch),
        "history": json_value(history),
        "rng": json_value(rng_state),
        "optimizer": {
            **optimizer_config(optimizer),
            "step_count": optimizer.step_count,
            "lr_scale": optimizer.lr_scale,
        },
        "callbacks": saved_callbacks,
        "data": data,
        "generators": json_value(list(generator_states)),
    }
    check_finite_tensors(model.state_dict())
    write_file(path, tensors, info, check=lambda contents: _check_readable(contents, str(path)))


@dataclass
class CheckpointState:
    """What ``fit`` restores from a checkpoint besides weights and optimizer state."""

    epoch: int
    history: dict[str, list[float]]
    rng_state: dict[str, Any]
    val_index: Array | None
    callbacks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    generator_states: list[dict[str, Any]] = field(default_factory=list)


def read_state(contents: FileContents, shown: str) -> tuple[CheckpointState, dict[str, Any]]:
    """A checkpoint's training state, every field checked, and its optimizer record.

    Raises:
        ModelFileError: for a model file, or a checkpoint whose state is malformed.
    """
    info, tensors = contents.info, contents.tensors
    state = info.get("checkpoint")
    if info.get("kind") != "checkpoint" or not isinstance(state, dict):
        raise ModelFileError(f"{shown!r} is a model file, not a training checkpoint")
    try:
        optimizer = state["optimizer"]
        if not isinstance(optimizer, dict) or optimizer.get("type") not in registry.OPTIMIZERS:
            raise ValueError(f"unknown optimizer record {str(optimizer)[:100]}")
        steps, scale = int(optimizer["step_count"]), float(optimizer["lr_scale"])
        if steps < 0 or not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"step_count {steps} and lr_scale {scale} (need >= 0 and > 0)")
        history = state["history"]
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise ValueError("its History is not a table of lists")
        if not isinstance(state["rng"], dict):
            raise ValueError("its random state is not a table")
        callbacks = []
        for entry in state.get("callbacks", []):
            restored = {
                key: tensors[value["tensor"]]
                if isinstance(value, dict) and "tensor" in value
                else value
                for key, value in entry["state"].items()
            }
            callbacks.append((str(entry["type"]), restored))
        epoch = int(state["epoch"])
        generator_states = list(state.get("generators", []))
        if not all(isinstance(g, dict) for g in generator_states):
            raise ValueError("its generator states are not tables")
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelFileError(f"{shown!r}: its training state is malformed ({error})") from None
    checkpoint = CheckpointState(
        epoch=epoch,
        history=history,
        rng_state=state["rng"],
        val_index=tensors.get("split.val_index"),
        callbacks=callbacks,
        generator_states=generator_states,
    )
    return checkpoint, optimizer


def _check_readable(contents: FileContents, shown: str) -> None:
    model_from(contents, shown)
    read_state(contents, shown)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Sequential,
    optimizer: Optimizer,
    *,
    loss: Loss | None = None,
    data: dict[str, Any] | None = None,
) -> CheckpointState:
    """Restore weights and optimizer state from a checkpoint into ``model`` and ``optimizer``.

    Everything is checked before anything is restored.

    Args:
        data: the :func:`data_fingerprint` of the training set the run continues on.

    Raises:
        ModelFileError: if the file is not an intact checkpoint, or was written for a different
            architecture, loss, optimizer or training set (the message says what differs).
    """
    shown = str(path)
    file = read_file(path)
    checkpoint, saved_opt = read_state(file, shown)
    model_from(file, shown)  # a malformed description or tensors: the message load gives
    saved_architecture = file.info["architecture"]
    differences = architecture_differences(
        saved_architecture, registry.to_config(model, registry.LAYERS)
    )
    if differences:
        raise ModelFileError(
            f"cannot resume from {shown!r}: it was written for a different architecture: "
            + "; ".join(differences)
        )
    saved_loss = file.info.get("loss")
    saved_loss = saved_loss.get("type") if isinstance(saved_loss, dict) else None
    if loss is not None and saved_loss != registry.LOSSES.name_of(type(loss)):
        raise ModelFileError(
            f"cannot resume from {shown!r}: it was trained with loss "
            f"{saved_loss}, not {type(loss).__name__}"
        )
    current_opt = optimizer_config(optimizer)
    notes = [
        f"{key}: file has {saved_opt.get(key)!r}, given {current_opt[key]!r}"
        for key in ("type", "lr", "hyperparameters")
        if json_value(saved_opt.get(key)) != json_value(current_opt[key])
    ]
    if notes:
        raise ModelFileError(
            f"cannot resume from {shown!r} with a different optimizer: " + "; ".join(notes)
        )
    if data is not None:
        state = file.info["checkpoint"]
        different = _data_differences(state.get("data"), data)
        val_index = checkpoint.val_index
        if different is None and val_index is not None and val_index.size:
            if val_index.min() < 0 or val_index.max() >= data["rows"]:
                different = (
                    f"its validation rows reach row {val_index.max()}, this fit has {data['rows']}"
                )
        if different:
            raise ModelFileError(f"cannot resume from {shown!r} with this data: {different}")
    for key, array in optimizer.state.items():
        saved = file.tensors.get(f"optimizer.{key}")
        if saved is None or saved.shape != array.shape or saved.dtype != array.dtype:
            raise ModelFileError(f"{shown!r}: optimizer state {key!r} is missing or mis-shaped")
    fill_model(shown, model, file.tensors)  # checks every tensor before it copies any
    for key, array in optimizer.state.items():
        copy_into(array, file.tensors[f"optimizer.{key}"])
    optimizer.step_count = int(saved_opt["step_count"])
    optimizer.lr_scale = float(saved_opt["lr_scale"])
    return checkpoint
