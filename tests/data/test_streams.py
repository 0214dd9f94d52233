"""Row chunks of arrays larger than memory, and memory-mapped .npy data sets."""

import numpy as np
import pytest

import deltaprop as dp


def test_chunks_follow_the_arrays_own_chunks_or_the_rows_asked_for():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    parts = list(dp.datasets.chunks(X, y, rows=4))
    assert [len(a) for a, _ in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.vstack([a for a, _ in parts]), X)
    np.testing.assert_array_equal(np.concatenate([b for _, b in parts]), y)
    assert [len(a) for a in dp.datasets.chunks(X)] == [10]
    with pytest.raises(ValueError, match="X has 10 rows and y has 3"):
        next(dp.datasets.chunks(X, y[:3]))
    with pytest.raises(ValueError, match="rows must be an integer >= 1, got 0"):
        next(dp.datasets.chunks(X, rows=0))


def test_a_dask_arrays_uneven_chunks_are_kept():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.ones((7, 3)), chunks=((3, 2, 2), (3,)))
    assert [len(a) for a in dp.datasets.chunks(X)] == [3, 2, 2]


def test_a_zarr_arrays_chunks_are_read_one_at_a_time(tmp_path):
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(
        store=str(tmp_path / "x.zarr"), shape=(1000, 4), chunks=(300, 4), dtype="f4"
    )
    z[:] = np.arange(4000, dtype="f4").reshape(1000, 4)
    parts = list(dp.datasets.chunks(z))
    assert [len(a) for a in parts] == [300, 300, 300, 100]
    assert all(type(a) is np.ndarray for a in parts)
    np.testing.assert_array_equal(np.vstack(parts), z[:])


def test_from_npy_maps_the_features_and_splits_by_a_slice(tmp_path):
    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(40) % 2)
    data = dp.datasets.from_npy(tmp_path / "X.npy", tmp_path / "y.npy")
    assert data.streamed and data.task == "classification" and data.class_names == (0, 1)
    train, test = data.split(0.25)
    assert isinstance(train.features.matrix, np.memmap)  # views, not copies
    np.testing.assert_array_equal(test.features.matrix, X[30:])
    np.testing.assert_array_equal(test.y, np.arange(30, 40) % 2)
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="must hold a 2-D array of numbers"):
        dp.datasets.from_npy(tmp_path / "cube.npy", tmp_path / "y.npy")
    with pytest.raises(ValueError, match="cannot read"):
        dp.datasets.from_npy(tmp_path / "missing.npy", tmp_path / "y.npy")
