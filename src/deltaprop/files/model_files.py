"""Model files: a network and its loss as data — tensors and a description, never code.

The tensors are the model's :meth:`~deltaprop.nn.layer.Layer.state_dict`, named like PyTorch's
``nn.Sequential`` state dict (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...), so a PyTorch user
can load a deltaprop network's weights into the equivalent ``nn.Sequential`` with
``load_state_dict``. The metadata document holds the library version, the architecture as registry
names and constructor arguments (:func:`deltaprop.registry.to_config`) and the loss.

Loading builds the architecture through the registry only — nothing named in a file is ever
imported — and checks every tensor's name, shape, dtype and values before any is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import registry
from ..backend.arrays import Array, copy_into
from ..data.preprocessing import Preprocessor
from ..errors import ModelFileError
from ..nn.losses import Loss
from ..nn.sequential import Sequential
from .format import FileContents, read_file, write_file

TRAINING_STATE_PREFIXES = ("optimizer.", "callbacks.", "split.", "estimator.")
"""Tensors of a checkpoint (or an estimator file) that are not the model's own."""
MAX_LAYERS = 100_000
"""The most layers a model file may describe: far above any real network, far below what
would take minutes to build."""


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deltaprop")
    except PackageNotFoundError:
        return "unknown"


def base_info(model: Sequential, loss: Loss | None, kind: str) -> dict[str, Any]:
    """The metadata every file holds: kind, library version, architecture and loss."""
    return {
        "kind": kind,
        "library_version": _library_version(),
        "architecture": registry.to_config(model, registry.LAYERS),
        "loss": None if loss is None else registry.to_config(loss, registry.LOSSES),
    }


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    loss: Loss | None = None,
    preprocessor: Preprocessor | None = None,
) -> None:
    """Save a network (and optionally its loss), or a fitted estimator, to a safetensors file.

    A ``preprocessor`` (what ``deltaprop train`` fitted: columns, encodings, scaling, labels)
    is stored beside the network; :func:`load_preprocessor` reads it back.

    An estimator (``dp.MLPClassifier``, ...) is written with its network, loss, parameters
    and fitted state; :func:`load` gives it back fitted. Everything ``load`` checks is checked
    first — the file is read back from memory and what it describes built — so a file that
    would not load again never replaces anything; the write is atomic.

    Raises:
        TypeError: if ``model`` is neither a Sequential nor a deltaprop estimator.
        UnknownNameError: if it holds a layer or a loss the registry does not know.
        ValueError: if a weight is NaN or inf.
        OSError: if the directory is missing or not writable.
    """
    extra: dict[str, Array] = {}
    if isinstance(model, Sequential):
        info = base_info(model, loss, "model")
        network = model
    elif hasattr(model, "__deltaprop_save__"):
        network, loss, document, extra = model.__deltaprop_save__()
        info = base_info(network, loss, "estimator")
        info["estimator"] = {"type": registry.ESTIMATORS.name_of(type(model)), **document}
    else:
        raise TypeError(
            f"save: model must be a Sequential or a deltaprop estimator, got {type(model).__name__}"
        )
    if preprocessor is not None:
        if preprocessor.n_features != network.input_features():
            raise ValueError(
                f"the preprocessor makes {preprocessor.n_features} features, but the model "
                f"takes {network.input_features()}"
            )
        info["preprocessing"] = preprocessor.to_dict()
    tensors = network.state_dict()
    check_finite_tensors(tensors)
    write_file(path, {**tensors, **extra}, info, check=_load_all)


def _load_all(contents: FileContents, path: str = "<file>") -> Any:
    """Everything a reader of the file will build: the model, and its preprocessing."""
    preprocessor_from(contents, path)
    return load_contents(contents, path)


def preprocessor_from(contents: FileContents, path: str = "<file>") -> Preprocessor | None:
    """The preprocessing a checked file holds, or None if it was saved without.

    Raises:
        ModelFileError: if it is malformed.
    """
    document = contents.info.get("preprocessing")
    if document is None:
        return None
    try:
        return Preprocessor.from_dict(document)
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path!r}: {error}") from None


def load_preprocessor(path: str | os.PathLike[str]) -> Preprocessor | None:
    """The preprocessing :func:`save` stored with a model (None if there is none)."""
    return preprocessor_from(read_file(path), str(path))


def check_finite_tensors(tensors: dict[str, Array]) -> None:
    """Refuse to write NaN or inf weights: such a file would not load."""
    for name, array in tensors.items():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(
                f"cannot save: tensor {name!r} holds {bad} NaN or inf values, and a model file "
                "with them would not load (train with a smaller learning rate, or restore "
                "earlier weights)"
            )


def _malformed(path: str, error: BaseException) -> ModelFileError:
    if isinstance(error, ModelFileError):
        return error
    reason = "it is nested too deeply" if isinstance(error, RecursionError) else str(error)
    return ModelFileError(f"{path!r}: its description of the model is malformed: {reason}")


def model_from(contents: FileContents, path: str = "<file>") -> tuple[Sequential, Loss | None]:
    """The model (with its weights) and loss a checked file describes.

    The tensors' names and shapes are compared with those the architecture needs before any
    layer is built, so a small file cannot make the loader allocate a huge model.

    Raises:
        ModelFileError: for any description that does not build, or tensors that do not fit it.
    """
    try:
        info, tensors = contents.info, contents.tensors
        architecture = info.get("architecture")
        try:
            needed = registry.state_shapes(architecture, "architecture")
        except ValueError as error:  # UnknownNameError included
            raise ModelFileError(f"{path!r}: {error}") from None
        _check_tensors(path, {n: (shape, None) for n, shape in needed.items()}, tensors)
        model = build_architecture(info, path)
        fill_model(path, model, tensors)
        return model, _loss_from(info, path)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as error:
        raise _malformed(path, error) from None


def build_architecture(info: dict[str, Any], path: str) -> Sequential:
    """The model a file's metadata describes, with freshly drawn weights (at most
    :data:`MAX_LAYERS` layers, counting those inside nested models)."""
    layers = _count_layers(info.get("architecture")) - 1  # the model itself is no layer of it
    if layers > MAX_LAYERS:
        raise ModelFileError(
            f"{path!r}: its architecture has {layers:,} layers, over the cap of {MAX_LAYERS:,}"
        )
    try:
        model = registry.from_config(info.get("architecture"), registry.LAYERS, "architecture")
    except ValueError as error:  # UnknownNameError included
        raise ModelFileError(f"{path!r}: {error}") from None
    if not isinstance(model, Sequential):
        raise ModelFileError(f"{path!r}: the architecture is not a Sequential")
    return model


def _count_layers(config: Any) -> int:
    """Layer descriptions in an architecture (each nested list of layers counted, one pass)."""
    count, pending = 0, [config]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += 1
            pending += [v for v in item.values() if isinstance(v, list | dict)]
        elif isinstance(item, list):
            pending += item
    return count


def _check_tensors(
    path: str,
    needed: dict[str, tuple[tuple[int, ...], np.dtype[Any] | None]],
    tensors: dict[str, Array],
) -> None:
    """Every tensor the architecture needs is there, of its shape (and dtype), and no other."""
    extra = sorted(
        n for n in tensors if n not in needed and not n.startswith(TRAINING_STATE_PREFIXES)
    )
    if extra:
        raise ModelFileError(f"{path!r}: tensors {extra} do not belong to the architecture")
    for name, (shape, dtype) in needed.items():
        if name not in tensors:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} is missing (the architecture needs shape {shape})"
            )
        array = tensors[name]
        if array.shape != shape:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has shape {array.shape}, but the architecture needs "
                f"{shape}"
            )
        if dtype is not None and array.dtype != dtype:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has dtype {array.dtype}, but the architecture needs "
                f"{dtype}"
            )


def fill_model(path: str, model: Sequential, tensors: dict[str, Array]) -> None:
    """Copy a file's tensors into ``model``'s, after checking every one of them first."""
    expected = model.state_dict()
    _check_tensors(path, {n: (t.shape, t.dtype) for n, t in expected.items()}, tensors)
    for name in expected:
        bad = int(np.size(tensors[name]) - np.count_nonzero(np.isfinite(tensors[name])))
        if bad:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} holds {bad} non-finite values (NaN or inf); refusing "
                "to load a broken model"
            )
    errors = model.state_errors({name: tensors[name] for name in expected})
    if errors:
        raise ModelFileError(f"{path!r}: tensor {errors[0]}; refusing to load a broken model")
    for name, target in expected.items():
        copy_into(target, tensors[name])


def _loss_from(info: dict[str, Any], path: str) -> Loss | None:
    config = info.get("loss")
    if config is None:
        return None
    try:
        loss: Loss = registry.from_config(config, registry.LOSSES, "loss")
    except ValueError as error:
        raise ModelFileError(f"{path!r}: {error}") from None
    return loss


def load(path: str | os.PathLike[str]) -> Any:
    """Load what :func:`save` wrote.

    Returns:
        For a model file, ``(model, loss)`` (loss is None when the file was saved without
        one); for an estimator file, the fitted estimator.

    Raises:
        ModelFileError: for anything but an intact deltaprop file.
        FileNotFoundError: if ``path`` does not exist.
    """
    return load_contents(read_file(path), str(path))


def load_contents(contents: FileContents, path: str = "<file>") -> Any:
    """:func:`load` for a file already read and checked by the file format."""
    model, loss = model_from(contents, path)
    if contents.info.get("kind") != "estimator":
        return model, loss
    try:
        description = dict(contents.info["estimator"])
        cls = registry.ESTIMATORS.get(description.pop("type"))
        return cls.__deltaprop_load__(model, loss, description, contents.tensors)
    except ModelFileError as error:
        raise ModelFileError(f"{path!r}: {error}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise _malformed(path, error) from None


def architecture_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs, layer by layer, between two architecture descriptions."""
    saved_layers, current_layers = saved.get("layers", []), current.get("layers", [])
    notes = []
    if len(saved_layers) != len(current_layers):
        notes.append(f"{len(saved_layers)} layers in the file, {len(current_layers)} in the model")
    for i, (a, b) in enumerate(zip(saved_layers, current_layers, strict=False)):
        if a != b:
            notes.append(
                f"layer {i}: file has {registry.describe(a)}, model has {registry.describe(b)}"
            )
    return notes


@dataclass
class FileInfo:
    """What a deltaprop file holds, read without building the model."""

    path: str
    kind: str
    format_version: int
    library_version: str
    architecture: dict[str, Any]
    loss: str | None
    tensors: dict[str, tuple[tuple[int, ...], str]]
    epoch: int | None = None
    optimizer: dict[str, Any] | None = None
    preprocessing: Preprocessor | None = None

    @property
    def n_parameters(self) -> int:
        return sum(
            int(np.prod(shape))
            for name, (shape, _) in self.tensors.items()
            if not name.startswith(TRAINING_STATE_PREFIXES)
        )

    def __str__(self) -> str:
        lines = [
            f"{self.path}: deltaprop {self.kind} (format {self.format_version}, written by "
            f"deltaprop {self.library_version})",
            f"  loss: {self.loss}",
            f"  parameters: {self.n_parameters}",
            "  layers:",
        ]
        for i, layer in enumerate(self.architecture.get("layers", [])):
            lines.append(f"    ({i}) {registry.describe(layer)}")
        if self.epoch is not None:
            lines.append(f"  epoch reached: {self.epoch}")
        if self.optimizer is not None:
            lines.append(
                f"  optimizer: {self.optimizer['type']} (step {self.optimizer['step_count']})"
            )
        prep = self.preprocessing
        if prep is not None:
            lines.append(f"  trained on: {prep.data} ({prep.task})")
            shown = ", ".join(map(repr, prep.columns[:20])) + (
                ", ..." if len(prep.columns) > 20 else ""
            )
            lines.append(f"  input columns ({len(prep.columns)}): {shown}")
            lines.append(f"  features: {prep.n_features}")
            if prep.categories:
                lines.append(f"  one-hot columns: {', '.join(prep.categories)}")
            lines.append(f"  standardized: {'yes' if prep.mean else 'no'}")
            if prep.class_names:
                lines.append(f"  classes: {', '.join(map(str, prep.class_names))}")
        lines.append("  tensors:")
        for name, (shape, dtype) in self.tensors.items():
            lines.append(f"    {name:<24} {dtype:<8} {shape}")
        return "\n".join(lines)


def inspect_file(path: str | os.PathLike[str]) -> FileInfo:
    """Report what a deltaprop file holds, without building the model.

    The file gets :func:`load`'s checks but the building: format, checksums, known names, and
    tensors of the shapes the architecture needs.
    """
    return inspect_contents(read_file(path), str(path))


def inspect_contents(file: FileContents, shown: str = "<file>") -> FileInfo:
    """:func:`inspect_file` for a file already read and checked by the file format."""
    try:
        info = file.info
        needed = registry.state_shapes(info.get("architecture"), "architecture")
        _check_tensors(shown, {n: (shape, None) for n, shape in needed.items()}, file.tensors)
        loss = _loss_from(info, shown)
        state = info.get("checkpoint") or {}
        optimizer = state.get("optimizer")
        if optimizer is not None and not (
            isinstance(optimizer, dict) and {"type", "step_count"} <= set(optimizer)
        ):
            raise ValueError(f"its optimizer record is not one: {str(optimizer)[:100]}")
        return FileInfo(
            path=shown,
            kind=str(info.get("kind", "model")),
            format_version=file.version,
            library_version=str(info.get("library_version", "?")),
            architecture=info["architecture"],
            loss=None if loss is None else registry.LOSSES.name_of(type(loss)),
            tensors={n: (tuple(a.shape), a.dtype.name) for n, a in sorted(file.tensors.items())},
            epoch=state.get("epoch"),
            optimizer=optimizer,
            preprocessing=preprocessor_from(file, shown),
        )
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as error:
        raise _malformed(shown, error) from None
