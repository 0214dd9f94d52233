import gzip
import struct

import numpy as np
import pytest

from deltaprop import datasets


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + images.tobytes())
    np.testing.assert_array_equal(datasets.read_idx(path), images)
    scaled = datasets.read_idx_images(path, rows_per_chunk=1)
    assert scaled.dtype == np.float32 and scaled.shape == (2, 12)
    np.testing.assert_allclose(scaled, images.reshape(2, 12) / 255, rtol=1e-6)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match=r"shape \(10,\), but the body is shorter"):
        datasets.read_idx(short)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path)


def test_builtin_sets_are_standardized():
    X_train, X_test, y_train, y_test = datasets.digits()
    assert X_train.dtype == np.float32 and X_train.shape[1] == 64
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-5)
    assert set(np.unique(y_train)) == set(range(10))
