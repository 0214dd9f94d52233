"""Model and checkpoint files: safetensors (data only), versioned, checksummed, written atomically.

A file is a standard safetensors file. Its tensors are named like PyTorch's ``nn.Sequential``
state dict (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...), so a PyTorch user can load a
deltaprop network's weights into the equivalent ``nn.Sequential`` with ``load_state_dict``.
Its header metadata holds:

- ``format`` = ``"deltaprop"`` and ``format_version`` (an integer),
- ``deltaprop``: a JSON document with the library version, the architecture as registry names and
  arguments (never import paths or code), the loss, a SHA-256 of each tensor and of the whole
  payload, and for checkpoints the training state,
- ``deltaprop_sha256``: the SHA-256 of that JSON document, so a damaged header is detected.

Loading never executes anything from the file: names are looked up in the explicit registries
below, and every check failure raises :class:`ModelFileError` with a plain message.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from . import activations, schedules
from .backend import Array
from .core import DeltapropError, Layer, Parameter
from .layers import Dense
from .losses import Loss, MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .optimizers import OPTIMIZERS, Optimizer

FORMAT_NAME = "deltaprop"
FORMAT_VERSION = 1
HEADER_CAP = 16 * 1024 * 1024  # bytes: no real deltaprop header comes near this
_CHUNK = 1 << 20

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Dense,
        activations.Identity,
        activations.ReLU,
        activations.LeakyReLU,
        activations.Sigmoid,
        activations.Tanh,
        activations.GELU,
        activations.Softplus,
        activations.Softmax,
        Sequential,
    )
}
LOSSES: dict[str, type[Loss]] = {
    cls.__name__: cls for cls in (SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, MeanSquaredError)
}
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


class ModelFileError(DeltapropError, ValueError):
    """A file that deltaprop cannot or will not load, with the reason in plain words."""


# --- architecture <-> registry names ---------------------------------------------------------


def layer_config(layer: Layer) -> dict[str, Any]:
    """The registry name and constructor arguments of ``layer`` (JSON-able)."""
    name = type(layer).__name__
    if name not in LAYERS:
        raise ValueError(f"cannot save layer type {name!r}: known types are {sorted(LAYERS)}")
    if isinstance(layer, Sequential):
        return {"type": name, "layers": [layer_config(inner) for inner in layer.layers]}
    if isinstance(layer, Dense):
        return {
            "type": name,
            "in_features": layer.in_features,
            "out_features": layer.out_features,
            "bias": layer.b is not None,
            "dtype": layer.dtype.name,
        }
    if isinstance(layer, activations.LeakyReLU):
        return {"type": name, "negative_slope": layer.negative_slope}
    return {"type": name}


def layer_from_config(config: Any, where: str = "architecture") -> Layer:
    """Build a layer from :func:`layer_config` output, through the registry only."""
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ModelFileError(f"{where}: expected a layer description with a 'type', got {config!r}")
    name = config["type"]
    cls = LAYERS.get(name)
    if cls is None:
        raise ModelFileError(f"{where}: unknown layer type {name!r} (known: {sorted(LAYERS)})")
    args = {k: v for k, v in config.items() if k != "type"}
    try:
        if cls is Sequential:
            return Sequential(
                *(
                    layer_from_config(c, f"{where}.{i}")
                    for i, c in enumerate(args.get("layers", []))
                )
            )
        if cls is Dense:
            return Dense(
                int(args["in_features"]),
                int(args["out_features"]),
                rng=np.random.default_rng(0),
                bias=bool(args.get("bias", True)),
                dtype=str(args.get("dtype", "float32")),
            )
        return cls(**args)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ModelFileError(f"{where}: invalid arguments for {name}: {args} ({error})") from None


def _describe(config: dict[str, Any]) -> str:
    """``Dense(4, 8, bias=True, dtype=float32)``: widths first, then named arguments."""
    widths = [str(config[k]) for k in ("in_features", "out_features") if k in config]
    named = [
        f"{k}={v}"
        for k, v in sorted(config.items())
        if k not in ("type", "layers", "in_features", "out_features")
    ]
    return f"{config.get('type')}({', '.join(widths + named)})"


def _architecture_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    saved_layers, current_layers = saved.get("layers", []), current.get("layers", [])
    notes = []
    if len(saved_layers) != len(current_layers):
        notes.append(f"{len(saved_layers)} layers in the file, {len(current_layers)} in the model")
    for i, (a, b) in enumerate(zip(saved_layers, current_layers, strict=False)):
        if a != b:
            notes.append(f"layer {i}: file has {_describe(a)}, model has {_describe(b)}")
    return notes


def named_parameters(model: Layer, prefix: str = "") -> list[tuple[str, Parameter]]:
    """Parameters under PyTorch state-dict names: ``"0.weight"``, ``"0.bias"``, ``"1.0.weight"``."""
    if isinstance(model, Dense):
        named = [(f"{prefix}weight", model.W)]
        return named + ([(f"{prefix}bias", model.b)] if model.b is not None else [])
    if isinstance(model, Sequential):
        return [
            pair
            for i, layer in enumerate(model.layers)
            for pair in named_parameters(layer, f"{prefix}{i}.")
        ]
    return []


# --- writing ----------------------------------------------------------------------------------


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_chunk(file: Any, chunk: memoryview) -> None:
    file.write(chunk)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    A temporary file in the same directory is written, flushed and fsynced, then renamed over
    ``path`` with ``os.replace``, and the directory is fsynced. On any error the temporary file is
    removed and the previous file is untouched.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write the model file: {str(target)!r} is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                _write_chunk(file, view[start : start + _CHUNK])
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_file(
    path: str | os.PathLike[str], tensors: dict[str, Array], info: dict[str, Any]
) -> None:
    """Write tensors and the metadata document ``info`` as a deltaprop safetensors file."""
    tensors = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    info = dict(info)
    # Loading checks each tensor's hash, so a damaged file names the tensor; the payload hash
    # (the tensors' bytes in name order) is there for tools that check the file as a whole.
    info["tensor_sha256"] = {name: _sha256(a.data) for name, a in sorted(tensors.items())}
    payload = hashlib.sha256()
    for name in sorted(tensors):
        payload.update(tensors[name].data)
    info["payload_sha256"] = payload.hexdigest()
    document = json.dumps(info, sort_keys=True)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "deltaprop": document,
        "deltaprop_sha256": _sha256(document.encode()),
    }
    atomic_write(path, safetensors.numpy.save(tensors, metadata=metadata))


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deltaprop")
    except PackageNotFoundError:
        return "unknown"


def _base_info(model: Sequential, loss: Loss | None, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "library_version": _library_version(),
        "architecture": layer_config(model),
        "loss": None if loss is None else {"type": type(loss).__name__},
    }


def save(model: Sequential, path: str | os.PathLike[str], *, loss: Loss | None = None) -> None:
    """Save a network (and optionally its loss) to a safetensors file, atomically.

    Raises:
        TypeError: if ``model`` is not a Sequential.
        ValueError: if it holds a layer type the registry does not know.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"save: model must be a Sequential, got {type(model).__name__}")
    tensors = {name: p.value for name, p in named_parameters(model)}
    write_file(path, tensors, _base_info(model, loss, "model"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _optimizer_config(optimizer: Optimizer) -> dict[str, Any]:
    lr = optimizer.lr
    lr_config: Any = (
        {"schedule": type(lr).__name__, **lr.config()} if isinstance(lr, schedules.Schedule) else lr
    )
    if callable(lr) and not isinstance(lr, schedules.Schedule):
        raise ValueError(
            "cannot checkpoint a learning rate given as a plain function; "
            "use a deltaprop.schedules.Schedule"
        )
    return {
        "type": type(optimizer).__name__,
        "lr": lr_config,
        "hyperparameters": _json_safe(optimizer.hyperparameters()),
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
) -> None:
    """Write everything needed to continue training exactly, atomically."""
    tensors: dict[str, Array] = {name: p.value for name, p in named_parameters(model)}
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
                plain[key] = _json_safe(value)
        saved_callbacks.append({"type": name, "state": plain})
    info = _base_info(model, loss, "checkpoint")
    info["checkpoint"] = {
        "epoch": int(epoch),
        "history": _json_safe(history),
        "rng": _json_safe(rng_state),
        "optimizer": {
            **_optimizer_config(optimizer),
            "step_count": optimizer.step_count,
            "lr_scale": optimizer.lr_scale,
        },
        "callbacks": saved_callbacks,
    }
    write_file(path, tensors, info)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _File:
    info: dict[str, Any]
    tensors: dict[str, Array]
    version: int


def _read_file(path: str | os.PathLike[str], *, verify: bool = True) -> _File:
    """Read and check a deltaprop file: format, version, header and tensor checksums."""
    target = Path(path)
    shown = str(target)
    if target.is_dir():
        raise ModelFileError(f"{shown!r} is a directory, not a model file")
    if not target.exists():
        raise FileNotFoundError(f"no such model file: {shown!r}")
    data = target.read_bytes()
    if not data:
        raise ModelFileError(f"{shown!r} is empty (0 bytes): not a deltaprop file")
    if data[0] == 0x80 and len(data) > 1 and 2 <= data[1] <= 5:
        raise ModelFileError(
            f"{shown!r} is a Python pickle, which can run code when loaded; deltaprop reads "
            "only its own safetensors files and never unpickles"
        )
    if data.startswith(b"PK\x03\x04"):
        raise ModelFileError(
            f"{shown!r} is a zip archive (such as a PyTorch .pt or a Keras .keras file), "
            "not a deltaprop safetensors file"
        )
    if len(data) < 8:
        raise ModelFileError(
            f"{shown!r} is truncated or not a deltaprop file: only {len(data)} bytes"
        )
    header_size = int.from_bytes(data[:8], "little")
    available = len(data) - 8
    if header_size > HEADER_CAP:
        if header_size > available:
            raise ModelFileError(
                f"{shown!r} is not a deltaprop file: its first 8 bytes do not give a plausible "
                f"safetensors header length ({header_size} bytes)"
            )
        raise ModelFileError(
            f"{shown!r}: the metadata header is {header_size} bytes, over the cap of "
            f"{HEADER_CAP} bytes; refusing to parse it"
        )
    if header_size > available:
        raise ModelFileError(
            f"{shown!r} is truncated: the header needs {header_size} bytes, only {available} follow"
        )
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"{shown!r} is corrupted or not a deltaprop file: its header is not valid JSON "
            f"({error})"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{shown!r} is not a deltaprop file: the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{shown!r} is a safetensors file but was not written by deltaprop "
            "(no deltaprop format metadata)"
        )
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise ModelFileError(
            f"{shown!r}: format_version {metadata.get('format_version')!r} is not an integer"
        ) from None
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{shown!r} uses deltaprop format version {version}, newer than this library reads "
            f"(up to {FORMAT_VERSION}); upgrade deltaprop to load it"
        )
    if version < 1:
        raise ModelFileError(f"{shown!r}: invalid format version {version}")
    document = metadata.get("deltaprop")
    if not isinstance(document, str) or _sha256(document.encode()) != metadata.get(
        "deltaprop_sha256"
    ):
        raise ModelFileError(
            f"{shown!r} is corrupted: the checksum of its metadata does not match "
            "(the header was damaged or edited)"
        )
    info = json.loads(document)
    payload = memoryview(data)[8 + header_size :]
    tensors: dict[str, Array] = {}
    for name, entry in header.items():
        try:
            dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(
                f"{shown!r} is corrupted: tensor {name!r} has an invalid header entry {entry!r}"
            ) from None
        if end > len(payload):
            raise ModelFileError(
                f"{shown!r} is truncated: tensor {name!r} needs payload bytes up to {end}, the "
                f"file holds {len(payload)}"
            )
        if begin < 0 or end - begin != int(np.prod(shape)) * dtype.itemsize:
            raise ModelFileError(
                f"{shown!r} is corrupted: tensor {name!r} has shape {shape} and dtype "
                f"{dtype.name} but occupies {end - begin} bytes"
            )
        chunk = payload[begin:end]
        expected = info.get("tensor_sha256", {}).get(name)
        if expected is None:
            raise ModelFileError(
                f"{shown!r}: unexpected extra tensor {name!r} not in its checksums"
            )
        if verify and _sha256(chunk) != expected:
            raise ModelFileError(
                f"{shown!r} is corrupted: checksum mismatch in tensor {name!r} (its bytes "
                "changed after it was written)"
            )
        tensors[name] = (
            np.frombuffer(chunk, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        )
    missing = sorted(set(info.get("tensor_sha256", {})) - set(tensors))
    if missing:
        raise ModelFileError(f"{shown!r} is missing tensors {missing} listed in its checksums")
    return _File(info, tensors, version)


def _fill_model(path: str, model: Sequential, tensors: dict[str, Array]) -> None:
    expected = named_parameters(model)
    names = {name for name, _ in expected}
    extra = sorted(
        n
        for n in tensors
        if n not in names and not n.startswith(("optimizer.", "callbacks.", "split."))
    )
    if extra:
        raise ModelFileError(f"{path!r}: tensors {extra} do not belong to the architecture")
    for name, p in expected:
        if name not in tensors:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} is missing (the architecture needs shape {p.shape})"
            )
        array = tensors[name]
        if array.shape != p.value.shape:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has shape {array.shape}, but the architecture needs "
                f"{p.value.shape}"
            )
        if array.dtype != p.value.dtype:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has dtype {array.dtype}, but the architecture needs "
                f"{p.value.dtype}"
            )
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} holds {bad} non-finite values (NaN or inf); refusing "
                "to load a broken model"
            )
    for name, p in expected:
        np.copyto(p.value, tensors[name])


def _loss_from(info: dict[str, Any], path: str) -> Loss | None:
    config = info.get("loss")
    if config is None:
        return None
    cls = LOSSES.get(str(config.get("type"))) if isinstance(config, dict) else None
    if cls is None:
        raise ModelFileError(f"{path!r}: unknown loss {config!r} (known: {sorted(LOSSES)})")
    return cls()


def load(path: str | os.PathLike[str]) -> tuple[Sequential, Loss | None]:
    """Load a network (and its loss, if one was saved) from a deltaprop file.

    Returns:
        ``(model, loss)``; loss is None when the file was saved without one.

    Raises:
        ModelFileError: for anything but an intact deltaprop file (see the module docstring).
        FileNotFoundError: if ``path`` does not exist.
    """
    file = _read_file(path)
    try:
        model = layer_from_config(file.info.get("architecture"))
    except ModelFileError as error:
        raise ModelFileError(f"{str(path)!r}: {error}") from None
    if not isinstance(model, Sequential):
        raise ModelFileError(f"{str(path)!r}: the architecture is not a Sequential")
    _fill_model(str(path), model, file.tensors)
    return model, _loss_from(file.info, str(path))


@dataclass
class CheckpointState:
    """What ``fit`` restores from a checkpoint besides weights and optimizer state."""

    epoch: int
    history: dict[str, list[float]]
    rng_state: dict[str, Any]
    val_index: Array | None
    callbacks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Sequential,
    optimizer: Optimizer,
    *,
    loss: Loss | None = None,
) -> CheckpointState:
    """Restore weights and optimizer state from a checkpoint into ``model`` and ``optimizer``.

    Raises:
        ModelFileError: if the file is not an intact checkpoint, or was written for a different
            architecture, loss or optimizer (the message says what differs).
    """
    shown = str(path)
    file = _read_file(path)
    state = file.info.get("checkpoint")
    if file.info.get("kind") != "checkpoint" or not isinstance(state, dict):
        raise ModelFileError(f"{shown!r} is a model file, not a training checkpoint")
    differences = _architecture_differences(file.info["architecture"], layer_config(model))
    if differences:
        raise ModelFileError(
            f"cannot resume from {shown!r}: it was written for a different architecture: "
            + "; ".join(differences)
        )
    saved_loss = (file.info.get("loss") or {}).get("type")
    if loss is not None and saved_loss != type(loss).__name__:
        raise ModelFileError(
            f"cannot resume from {shown!r}: it was trained with loss "
            f"{saved_loss}, not {type(loss).__name__}"
        )
    saved_opt = state["optimizer"]
    current_opt = _optimizer_config(optimizer)
    if saved_opt["type"] not in OPTIMIZERS:
        raise ModelFileError(f"{shown!r}: unknown optimizer {saved_opt['type']!r}")
    notes = [
        f"{key}: file has {saved_opt.get(key)!r}, given {current_opt[key]!r}"
        for key in ("type", "lr", "hyperparameters")
        if _json_safe(saved_opt.get(key)) != _json_safe(current_opt[key])
    ]
    if notes:
        raise ModelFileError(
            f"cannot resume from {shown!r} with a different optimizer: " + "; ".join(notes)
        )
    _fill_model(shown, model, file.tensors)
    for key, array in optimizer.state.items():
        saved = file.tensors.get(f"optimizer.{key}")
        if saved is None or saved.shape != array.shape:
            raise ModelFileError(f"{shown!r}: optimizer state {key!r} is missing or mis-shaped")
        np.copyto(array, saved)
    optimizer.step_count = int(saved_opt["step_count"])
    optimizer.lr_scale = float(saved_opt["lr_scale"])
    callbacks = []
    for entry in state.get("callbacks", []):
        restored = {
            key: file.tensors[value["tensor"]]
            if isinstance(value, dict) and "tensor" in value
            else value
            for key, value in entry["state"].items()
        }
        callbacks.append((entry["type"], restored))
    return CheckpointState(
        epoch=int(state["epoch"]),
        history=state["history"],
        rng_state=state["rng"],
        val_index=file.tensors.get("split.val_index"),
        callbacks=callbacks,
    )


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

    @property
    def n_parameters(self) -> int:
        return sum(
            int(np.prod(shape))
            for name, (shape, _) in self.tensors.items()
            if not name.startswith(("optimizer.", "callbacks.", "split."))
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
            lines.append(f"    ({i}) {_describe(layer)}")
        if self.epoch is not None:
            lines.append(f"  epoch reached: {self.epoch}")
        if self.optimizer is not None:
            lines.append(
                f"  optimizer: {self.optimizer['type']} (step {self.optimizer['step_count']})"
            )
        lines.append("  tensors:")
        for name, (shape, dtype) in self.tensors.items():
            lines.append(f"    {name:<24} {dtype:<8} {shape}")
        return "\n".join(lines)


def inspect(path: str | os.PathLike[str]) -> FileInfo:
    """Report what a deltaprop file holds, after the same checks as :func:`load`."""
    file = _read_file(path)
    state = file.info.get("checkpoint") or {}
    return FileInfo(
        path=str(path),
        kind=file.info.get("kind", "model"),
        format_version=file.version,
        library_version=file.info.get("library_version", "?"),
        architecture=file.info.get("architecture", {}),
        loss=(file.info.get("loss") or {}).get("type"),
        tensors={n: (tuple(a.shape), a.dtype.name) for n, a in sorted(file.tensors.items())},
        epoch=state.get("epoch"),
        optimizer=state.get("optimizer"),
    )
