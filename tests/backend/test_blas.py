"""The BLAS helpers: NumPy's own gemm for the compiled kernels, one thread while others call it."""

import ctypes
import os
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from deltaprop import validation
from deltaprop.backend import blas


def numpy_openblas() -> bool:
    home = os.path.dirname(os.path.realpath(np.__file__))
    return any(
        info["internal_api"] == "openblas"
        and os.path.realpath(info["filepath"]).startswith(home + ".libs")
        for info in threadpool_info()
    )


@pytest.mark.skipif(not numpy_openblas(), reason="NumPy here does not carry its own OpenBLAS")
@pytest.mark.parametrize(("kind", "dtype"), [("sgemm", np.float32), ("dgemm", np.float64)])
def test_gemm_address_is_numpys_own_and_multiplies_as_numpy_does(kind, dtype):
    address = blas.gemm_address(kind)
    assert isinstance(address, int) and address > 0
    # column-major C (m × n) = A (m × k) · B (k × n), integers as int64 (read whole by a 64-bit
    # BLAS, their low half by a 32-bit one: the compiled kernels pass them so)
    m, n, k = 5, 3, 4
    rng = np.random.default_rng(0)
    A = np.asfortranarray(rng.standard_normal((m, k)).astype(dtype))
    B = np.asfortranarray(rng.standard_normal((k, n)).astype(dtype))
    C = np.zeros((m, n), dtype=dtype, order="F")
    gemm = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))(address)
    ints = np.array([m, n, k, m, k, m], dtype=np.int64)
    scalars = np.array([1, 0], dtype=dtype)
    chars = np.frombuffer(b"NN", dtype=np.uint8).copy()

    def at(array, i=0):
        return array.ctypes.data + i * array.itemsize

    gemm(
        at(chars),
        at(chars, 1),
        at(ints),
        at(ints, 1),
        at(ints, 2),
        at(scalars),
        at(A),
        at(ints, 3),
        at(B),
        at(ints, 4),
        at(scalars, 1),
        at(C),
        at(ints, 5),
    )
    np.testing.assert_allclose(C, A @ B, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_gemm_address_is_none_for_an_unknown_routine():
    assert blas.gemm_address("no_such_gemm") is None


def test_one_blas_thread_holds_every_library_at_one_and_restores_them():
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    with blas.one_blas_thread():
        with blas.one_blas_thread():  # nested and shared: the first sets it, the last lifts it
            assert blas.holders() == 2
            inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        assert blas.holders() == 1 and set(inside) == {1}
    assert blas.holders() == 0
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_check_finite_holds_blas_at_one_thread_for_large_data_only(monkeypatch):
    held = []
    real = blas.one_blas_thread

    def recording():
        held.append(True)
        return real()

    monkeypatch.setattr(validation, "one_blas_thread", recording)
    validation.check_finite("X", np.zeros((validation.BLAS_THREADED // 8 - 1, 8), np.float32))
    assert held == []
    large = np.zeros((validation.BLAS_THREADED // 8, 8), np.float32)
    validation.check_finite("X", large)
    assert held == [True]
    large[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in X: 1 value in 1 row \(first in row 7\)"):
        validation.check_finite("X", large)


def test_the_libraries_are_found_again_after_an_import(monkeypatch):
    """A BLAS that loads after the first limit (SciPy's, with ``scipy.linalg``) is held too."""
    import types

    first = blas._blas()
    assert blas._blas() is first  # nothing imported: no new search
    monkeypatch.setitem(sys.modules, "deltaprop_test_new_module", types.ModuleType("new"))
    again = blas._blas()
    assert again is not first and blas._blas() is again
    paths = {lib.filepath for lib in again.lib_controllers}
    assert paths == {i["filepath"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_holds_share_one_setting_the_smallest_count_and_end_in_any_order():
    """A fixed count (``fit(n_threads=k)``) and one thread (compiled kernels, in another
    thread meanwhile) end in either order; the last gives each library its own count back."""

    def counts() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    with blas.blas_threads(None):  # no count: nothing held, nothing changed
        assert blas.holders() == 0
        assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
    fixed, single = blas.blas_threads(3), blas.one_blas_thread()
    fixed.__enter__()
    assert counts() == {3} and blas.holders() == 1
    single.__enter__()
    assert counts() == {1} and blas.holders() == 2
    fixed.__exit__(None, None, None)  # the fixed count ends first: one thread still holds
    assert counts() == {1} and blas.holders() == 1
    single.__exit__(None, None, None)
    assert blas.holders() == 0
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
    with blas.blas_threads(3):
        with blas.one_blas_thread():
            assert counts() == {1}
        assert counts() == {3}
