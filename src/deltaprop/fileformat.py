"""The bytes of a deltaprop file: safetensors, a checksummed metadata document, atomic writes.

A file is a standard safetensors file — an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range, then the tensors' bytes. Its header metadata
holds:

- ``format`` = ``"deltaprop"`` and ``format_version`` (an integer),
- ``deltaprop``: a JSON document (what the file holds, written by :mod:`deltaprop.files` and
  :mod:`deltaprop.checkpoints`) plus a SHA-256 of each tensor and of the whole payload,
- ``deltaprop_sha256``: the SHA-256 of that JSON document, so a damaged header is detected.

This module knows nothing of models: it writes and reads tensors and a document, and every check
failure raises :class:`~deltaprop.errors.ModelFileError` with a plain message.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .backend import Array
from .errors import ModelFileError

FORMAT_NAME = "deltaprop"
FORMAT_VERSION = 1
HEADER_CAP = 16 * 1024 * 1024  # bytes: no real deltaprop header comes near this
_CHUNK = 1 << 20
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing ----------------------------------------------------------------------------------


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
    info["tensor_sha256"] = {name: sha256(a.data) for name, a in sorted(tensors.items())}
    payload = hashlib.sha256()
    for name in sorted(tensors):
        payload.update(tensors[name].data)
    info["payload_sha256"] = payload.hexdigest()
    document = json.dumps(info, sort_keys=True)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "deltaprop": document,
        "deltaprop_sha256": sha256(document.encode()),
    }
    atomic_write(path, safetensors.numpy.save(tensors, metadata=metadata))


# --- reading ----------------------------------------------------------------------------------


@dataclass
class FileContents:
    """A checked deltaprop file: its metadata document, its tensors and its format version."""

    info: dict[str, Any]
    tensors: dict[str, Array]
    version: int


def read_file(path: str | os.PathLike[str], *, verify: bool = True) -> FileContents:
    """Read and check a deltaprop file: format, version, header and tensor checksums.

    Raises:
        ModelFileError: for anything but an intact deltaprop file.
        FileNotFoundError: if ``path`` does not exist.
    """
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
    if not isinstance(document, str) or sha256(document.encode()) != metadata.get(
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
        if verify and sha256(chunk) != expected:
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
    return FileContents(info, tensors, version)
