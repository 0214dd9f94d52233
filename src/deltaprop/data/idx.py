"""The IDX file format of MNIST and Fashion-MNIST: a reader that checks what it reads.

An IDX file is a 4-byte magic number (two zero bytes, the element type, the number of
dimensions), one big-endian 32-bit size per dimension, and the elements, row-major. Gzipped
files (``.gz``) are read as they are. Each reader checks the magic number and that the body holds
exactly as many bytes as the header announces: a truncated or padded file is refused.
"""

from __future__ import annotations

import gzip
import os
import struct
from typing import Any, BinaryIO, cast

import numpy as np

from ..backend.arrays import DEFAULT_DTYPE, Array, empty

_IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _open_idx(path: str | os.PathLike[str]) -> tuple[BinaryIO, tuple[int, ...], np.dtype[Any]]:
    """Open an IDX file and read its header: (file positioned at the data, shape, dtype)."""
    file = cast(BinaryIO, gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb"))
    try:
        shape, dtype = _header(file, path)
    except (OSError, EOFError) as error:  # a .gz that is not gzip, or is cut short
        file.close()
        raise ValueError(f"{str(path)!r} is truncated or corrupt ({error})") from None
    except ValueError:
        file.close()
        raise
    return file, shape, dtype


def _header(file: BinaryIO, path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    head = file.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{str(path)!r}: unknown IDX element type 0x{code:02x}")
    sizes = file.read(4 * ndim)
    if len(sizes) != 4 * ndim:
        raise ValueError(f"{str(path)!r}: the IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = np.dtype(_IDX_TYPES[code])
    announced = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    on_disk = os.path.getsize(path)
    # deflate expands at most 1032-fold: a header announcing more cannot be true
    if announced > on_disk * (1032 if str(path).endswith(".gz") else 1):
        raise ValueError(
            f"{str(path)!r}: header says shape {shape} ({announced} bytes), but the file holds "
            f"only {on_disk} bytes: it is truncated or corrupt"
        )
    return shape, dtype


def _read_exactly(
    file: BinaryIO, size: int, path: str | os.PathLike[str], shape: tuple[int, ...]
) -> bytes:
    try:
        data = file.read(size)
    except (OSError, EOFError) as error:  # a gzip stream cut short or corrupt
        raise ValueError(f"{str(path)!r} is truncated or corrupt ({error})") from None
    if len(data) != size:
        raise ValueError(
            f"{str(path)!r}: header says shape {shape}, but the body is shorter "
            f"({len(data)} bytes where {size} were due)"
        )
    return data


def _check_at_end(file: BinaryIO, path: str | os.PathLike[str], shape: tuple[int, ...]) -> None:
    try:
        longer = file.read(1)
    except (OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is truncated or corrupt ({error})") from None
    if longer:
        raise ValueError(f"{str(path)!r}: header says shape {shape}, but the body is longer")


def read_idx(path: str | os.PathLike[str]) -> Array:
    """Read an IDX file (the MNIST format), gzipped or not.

    Raises:
        ValueError: if the file is not IDX or its size disagrees with its header.
    """
    file, shape, dtype = _open_idx(path)
    with file:
        size = int(np.prod(shape)) * dtype.itemsize
        data = _read_exactly(file, size, path, shape)
        _check_at_end(file, path, shape)
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def read_idx_images(path: str | os.PathLike[str], rows_per_chunk: int = 4096) -> Array:
    """Read IDX images straight into float32 rows scaled to [0, 1], shape (N, H·W).

    Converted chunk by chunk, so the bytes and the floats are never both held in full.
    """
    file, shape, dtype = _open_idx(path)
    with file:
        n, row = shape[0], int(np.prod(shape[1:]))
        out = empty((n, row), DEFAULT_DTYPE)
        for start in range(0, n, rows_per_chunk):
            stop = min(start + rows_per_chunk, n)
            chunk = _read_exactly(file, (stop - start) * row * dtype.itemsize, path, shape)
            np.multiply(
                np.frombuffer(chunk, dtype=dtype).reshape(stop - start, row),
                np.float32(1 / 255),
                out=out[start:stop],
            )
        _check_at_end(file, path, shape)
    return out


def idx_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The shape an IDX file's header announces, read without its body."""
    file, shape, _ = _open_idx(path)
    file.close()
    return shape
