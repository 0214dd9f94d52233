"""The bytes of a deltaprop file: safetensors, a checksummed metadata document, atomic writes.

A file is a standard safetensors file — an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range, then the tensors' bytes. Its header metadata
holds:

- ``format`` = ``"deltaprop"`` and ``format_version`` (an integer),
- ``deltaprop``: a JSON document (what the file holds, written by
  :mod:`deltaprop.files.model_files` and :mod:`deltaprop.files.checkpoints`) plus a SHA-256 of
  each tensor and of the whole payload,
- ``deltaprop_sha256``: the SHA-256 of that JSON document, so a damaged header is detected.

This module knows nothing of models: it writes and reads tensors and a document, and every check
failure raises :class:`~deltaprop.errors.ModelFileError` with a plain message.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import safetensors.numpy

from ..backend.arrays import Array, to_host
from ..errors import ModelFileError
from .atomic import atomic_write, resolve_target

FORMAT_NAME = "deltaprop"
FORMAT_VERSION = 1
HEADER_CAP = 16 * 1024 * 1024  # bytes: no real deltaprop header comes near this
MAX_DIMENSIONS = 64  # NumPy's limit on an array's dimensions
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def json_value(value: Any, *, finite_only: bool = False) -> Any:
    """``value`` as JSON holds it, recursively: NumPy scalars as Python numbers, arrays and
    tuples as lists, dictionary keys as strings, paths as strings; with ``finite_only``, NaN
    and ±inf as None (JSON's null), else kept as they are."""
    if isinstance(value, dict):
        return {str(k): json_value(v, finite_only=finite_only) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v, finite_only=finite_only) for v in value]
    if isinstance(value, np.ndarray):
        return json_value(value.tolist(), finite_only=finite_only)
    if isinstance(value, np.generic):
        return json_value(value.item(), finite_only=finite_only)
    if finite_only and isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing ----------------------------------------------------------------------------------


def encode(tensors: dict[str, Array], info: dict[str, Any]) -> bytes:
    """The bytes of a deltaprop file holding ``tensors`` and the metadata document ``info``."""
    # np.asarray, not np.ascontiguousarray: that one turns a 0-d tensor into shape (1,)
    # (to_host: a GPU's tensors are written as the CPU's, so the file loads anywhere)
    tensors = {name: np.asarray(to_host(array), order="C") for name, array in tensors.items()}
    info = dict(info)
    # Loading checks each tensor's hash, so a damaged file names the tensor; the payload hash
    # (the tensors' bytes in name order) is there for tools that check the file as a whole.
    info["tensor_sha256"] = {name: sha256(a.data) for name, a in sorted(tensors.items())}
    payload = hashlib.sha256()
    for name in sorted(tensors):
        payload.update(tensors[name].data)
    info["payload_sha256"] = payload.hexdigest()
    document = json.dumps(info, sort_keys=True, allow_nan=True)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "deltaprop": document,
        "deltaprop_sha256": sha256(document.encode()),
    }
    return bytes(safetensors.numpy.save(tensors, metadata=metadata))


def write_file(
    path: str | os.PathLike[str],
    tensors: dict[str, Array],
    info: dict[str, Any],
    *,
    check: Callable[[FileContents], object] | None = None,
) -> None:
    """Write tensors and the metadata document ``info`` as a deltaprop file, atomically.

    The bytes are read back first, by the same reader ``load`` uses, and handed to ``check``
    (which builds what the file describes): a file that would not load again never replaces
    anything.

    Raises:
        ModelFileError: if the file would not load again (nothing is written).
        OSError: if the directory is missing or not writable (nothing is written).
    """
    target = resolve_target(path)
    data = encode(tensors, info)
    contents = read_bytes(data, shown=str(path))
    if check is not None:
        try:
            check(contents)
        except ModelFileError as error:
            raise ModelFileError(
                f"refusing to write {str(path)!r}: the file would not load again ({error})"
            ) from None
    atomic_write(target, data)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class FileContents:
    """A checked deltaprop file: its metadata document, its tensors and its format version."""

    info: dict[str, Any]
    tensors: dict[str, Array]
    version: int


def read_file(path: str | os.PathLike[str], *, verify: bool = True) -> FileContents:
    """Read and check a deltaprop file: format, version, header and tensor checksums.

    Only a regular file is read (never a FIFO or a device), its header length is checked before
    the header is read, and the payload is memory-mapped: a file that is not a deltaprop file
    costs a few bytes of reading, whatever its size.

    Raises:
        ModelFileError: for anything but an intact deltaprop file.
        FileNotFoundError: if ``path`` does not exist.
        PermissionError: if it cannot be read.
    """
    shown = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {shown!r}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ModelFileError(f"{shown!r} is a directory, not a model file")
        raise ModelFileError(
            f"{shown!r} is not a regular file (a FIFO, a device or a socket); deltaprop "
            "reads model files only"
        )
    with os.fdopen(fd, "rb") as file:
        return _read(file, info.st_size, shown, verify)


def read_bytes(data: bytes, *, shown: str = "<bytes>", verify: bool = True) -> FileContents:
    """:func:`read_file` for the bytes of a file held in memory."""
    return _read(io.BytesIO(data), len(data), shown, verify)


def _read(file: BinaryIO, size: int, shown: str, verify: bool) -> FileContents:
    head = file.read(min(size, 8))
    _check_kind(head, size, shown)
    header_size = int.from_bytes(head, "little")
    available = size - 8
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
    header = _json_object(file.read(header_size), shown, "its header")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{shown!r} is a safetensors file but was not written by deltaprop "
            "(no deltaprop format metadata)"
        )
    version = _version(metadata, shown)
    document = metadata.get("deltaprop")
    if not isinstance(document, str) or sha256(document.encode()) != metadata.get(
        "deltaprop_sha256"
    ):
        raise ModelFileError(
            f"{shown!r} is corrupted: the checksum of its metadata does not match "
            "(the header was damaged or edited)"
        )
    info = _json_object(document.encode(), shown, "its metadata document")
    checksums = info.get("tensor_sha256", {})
    if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
        raise ModelFileError(f"{shown!r}: its tensor checksums are not a table of names")
    entries = {name: _entry(name, entry, shown) for name, entry in header.items()}
    payload_size = available - header_size
    _check_layout(entries, payload_size, shown)
    tensors: dict[str, Array] = {}
    file.seek(8 + header_size)
    for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda e: e[1][2]):
        expected = checksums.get(name)
        if expected is None:
            raise ModelFileError(
                f"{shown!r}: unexpected extra tensor {name!r} not in its checksums"
            )
        chunk = _read_exactly(file, end - begin, shown, name)
        if verify and sha256(chunk) != expected:
            raise ModelFileError(
                f"{shown!r} is corrupted: checksum mismatch in tensor {name!r} (its bytes "
                "changed after it was written)"
            )
        tensors[name] = (
            np.frombuffer(chunk, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        )
    missing = sorted(set(checksums) - set(tensors))
    if missing:
        raise ModelFileError(f"{shown!r} is missing tensors {missing} listed in its checksums")
    return FileContents(info, tensors, version)


def _check_kind(head: bytes, size: int, shown: str) -> None:
    """Refuse empty files, pickles, zip archives and files too short for a header length.

    A pickle or a zip archive is named only when the first 8 bytes are no plausible header
    length: a safetensors header of 640 bytes also starts with 0x80 0x02.
    """
    if size == 0:
        raise ModelFileError(f"{shown!r} is empty (0 bytes): not a deltaprop file")
    plausible = len(head) == 8 and int.from_bytes(head, "little") <= min(size - 8, HEADER_CAP)
    if not plausible and head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        raise ModelFileError(
            f"{shown!r} is a Python pickle, which can run code when loaded; deltaprop reads "
            "only its own safetensors files and never unpickles"
        )
    if not plausible and head.startswith(b"PK\x03\x04"):
        raise ModelFileError(
            f"{shown!r} is a zip archive (such as a PyTorch .pt or a Keras .keras file), "
            "not a deltaprop safetensors file"
        )
    if size < 8:
        raise ModelFileError(f"{shown!r} is truncated or not a deltaprop file: only {size} bytes")


def _json_object(data: bytes, shown: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # no lone surrogate ("\\ud800")
    except (UnicodeError, ValueError, RecursionError) as error:
        # ValueError: JSONDecodeError, or an integer of more digits than Python converts
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ModelFileError(
            f"{shown!r} is corrupted or not a deltaprop file: {what} is not valid JSON ({reason})"
        ) from None
    if not isinstance(value, dict):
        raise ModelFileError(
            f"{shown!r} is not a deltaprop file: {what} is not a JSON object "
            f"(it is a {type(value).__name__})"
        )
    return value


def _version(metadata: dict[str, Any], shown: str) -> int:
    text = metadata.get("format_version", "")
    if not isinstance(text, str) or not text.isdigit() or len(text) > 9:
        raise ModelFileError(f"{shown!r}: format_version {text!r} is not an integer")
    version = int(text)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{shown!r} uses deltaprop format version {version}, newer than this library reads "
            f"(up to {FORMAT_VERSION}); upgrade deltaprop to load it"
        )
    if version < 1:
        raise ModelFileError(f"{shown!r}: invalid format version {version}")
    return version


def _entry(name: str, entry: Any, shown: str) -> tuple[np.dtype[Any], tuple[int, ...], int, int]:
    """A tensor's dtype, shape and byte range, each checked (Python integers: no overflow)."""
    invalid = ModelFileError(
        f"{shown!r} is corrupted: tensor {name!r} has an invalid header entry {str(entry)[:200]}"
    )
    if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
        raise invalid
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (
        isinstance(shape, list)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_count(i) for i in [*shape, *offsets])
    ):
        raise invalid
    if len(shape) > MAX_DIMENSIONS:
        raise ModelFileError(
            f"{shown!r} is corrupted: tensor {name!r} has {len(shape)} dimensions (at most "
            f"{MAX_DIMENSIONS})"
        )
    dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
    begin, end = offsets
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise ModelFileError(
            f"{shown!r} is corrupted: tensor {name!r} has shape {tuple(shape)} and dtype "
            f"{dtype.name} but occupies {end - begin} bytes"
        )
    return dtype, tuple(shape), begin, end


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(
    entries: dict[str, tuple[np.dtype[Any], tuple[int, ...], int, int]], size: int, shown: str
) -> None:
    """The tensors' byte ranges tile the payload, as the safetensors format requires: in
    order, without gaps or overlaps, the last ending where the file does (no trailing data)."""
    at = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: (e[1][2], e[1][3])):
        if end > size:
            raise ModelFileError(
                f"{shown!r} is truncated: tensor {name!r} needs payload bytes up to {end}, "
                f"the file holds {size}"
            )
        if begin < at:
            raise ModelFileError(
                f"{shown!r} is corrupted: tensor {name!r} (bytes {begin}-{end}) overlaps the "
                f"tensor before it (which ends at {at})"
            )
        if begin > at:
            raise ModelFileError(
                f"{shown!r} is corrupted: {begin - at} bytes before tensor {name!r} belong to no "
                "tensor"
            )
        at = end
    if at < size:
        raise ModelFileError(
            f"{shown!r} is corrupted: {size - at} bytes of trailing data follow the last tensor"
        )


def _read_exactly(file: BinaryIO, size: int, shown: str, name: str) -> bytes:
    """``size`` bytes of tensor ``name``, read (not memory-mapped: a file truncated while it is
    read ends in this error, not in a bus error)."""
    chunk = file.read(size)
    if len(chunk) != size:
        raise ModelFileError(
            f"{shown!r} is truncated: tensor {name!r} needs {size} bytes, {len(chunk)} were "
            "there (was the file changed while it was read?)"
        )
    return chunk
