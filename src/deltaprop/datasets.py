"""Built-in and file-based data sets, returned as float arrays ready for ``fit``.

Each loader returns ``(X_train, X_test, y_train, y_test)`` with inputs standardized on the training
split (mean 0, std 1 per feature; pixels scaled to [0, 1] for images).
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from .backend import DEFAULT_DTYPE, Array, empty

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

Split = tuple[Array, Array, Array, Array]


def _standardized_split(X: Array, y: Array, test_size: float, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y
    )
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return (
        ((X_train - mean) / std).astype(np.float32),
        ((X_test - mean) / std).astype(np.float32),
        y_train,
        y_test,
    )


def breast_cancer(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's Wisconsin breast cancer set: 569 × 30, binary labels (1 = benign)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return _standardized_split(X, y.astype(np.int64), test_size, seed)


def digits(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's 8×8 digits: 1797 × 64, 10 classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _standardized_split(X, y.astype(np.int64), test_size, seed)


def two_moons(n: int = 1000, noise: float = 0.2, test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's two interleaving half circles, binary labels."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return _standardized_split(X, y.astype(np.int64), test_size, seed)


def xor() -> tuple[Array, Array]:
    """The four points of XOR and their labels."""
    return (
        np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32),
        np.array([0, 1, 1, 0], dtype=np.int64),
    )


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
    head = file.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        file.close()
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        file.close()
        raise ValueError(f"{str(path)!r}: unknown IDX element type 0x{code:02x}")
    shape = struct.unpack(f">{ndim}I", file.read(4 * ndim))
    return file, shape, np.dtype(_IDX_TYPES[code])


def _read_exactly(
    file: BinaryIO, size: int, path: str | os.PathLike[str], shape: tuple[int, ...]
) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError(
            f"{str(path)!r}: header says shape {shape}, but the body is shorter "
            f"({len(data)} bytes where {size} were due)"
        )
    return data


def read_idx(path: str | os.PathLike[str]) -> Array:
    """Read an IDX file (the MNIST format), gzipped or not.

    Raises:
        ValueError: if the file is not IDX or its size disagrees with its header.
    """
    file, shape, dtype = _open_idx(path)
    with file:
        size = int(np.prod(shape)) * dtype.itemsize
        data = _read_exactly(file, size, path, shape)
        if file.read(1):
            raise ValueError(f"{str(path)!r}: header says shape {shape}, but the body is longer")
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
    return out


def fashion_mnist(directory: str | os.PathLike[str] = FASHION_MNIST_DIR) -> Split:
    """Fashion-MNIST: 60,000 + 10,000 images 28×28 flattened to 784 float32 in [0, 1], 10 classes.

    Reads the four gzipped IDX files (Debian package ``dataset-fashion-mnist``).

    Raises:
        FileNotFoundError: if the files are not in ``directory``, saying how to get them.
    """
    root = Path(directory)
    names = (
        "train-images-idx3-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {missing} not found in {str(root)!r}; on Debian: "
            "apt-get install dataset-fashion-mnist"
        )
    return (
        read_idx_images(root / names[0]),
        read_idx_images(root / names[1]),
        read_idx(root / names[2]).astype(np.int64),
        read_idx(root / names[3]).astype(np.int64),
    )


LOADERS: dict[str, Callable[[], Split]] = {
    "breast-cancer": breast_cancer,
    "digits": digits,
    "two-moons": two_moons,
    "fashion-mnist": fashion_mnist,
}
