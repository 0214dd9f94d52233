"""The BLAS libraries under NumPy and SciPy: held at one thread while other threads call them,
and the ``gemm`` the compiled kernels call.

Plain Python and ``threadpoolctl``, no compiler: :func:`one_blas_thread` serves the compiled
kernels (:mod:`deltaprop.nn.dense_chain`, :mod:`deltaprop.training.compiled_epoch`) and the
data checks (:func:`deltaprop.validation.check_finite`); :func:`blas_threads` serves
``fit(n_threads=k)``; :func:`gemm_address` is read once, when :mod:`.cpu_kernels` links its
kernels to BLAS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_held: list[int] = []  # the thread counts the callers holding BLAS now asked for
_before: dict[str, int] = {}  # each library's own count, from before the first hold
_libraries: Any = None  # the BLAS libraries loaded (finding them takes ~1 ms)
_modules = -1  # len(sys.modules) when they were found


def _blas() -> Any:
    """The BLAS libraries loaded now: found again only after a module was imported (a BLAS
    loads with one — SciPy's with ``scipy.linalg`` — and a limit must hold it too)."""
    global _libraries, _modules
    if _libraries is None or len(sys.modules) != _modules:
        _libraries = ThreadpoolController().select(user_api="blas")
        _modules = len(sys.modules)
    return _libraries


def _set(count: int | None) -> None:
    """Every BLAS library loaded at ``count`` threads (None: back to its own count, kept the
    first time a hold met it — a library loaded during a hold is restored too)."""
    for lib in _blas().lib_controllers:
        own = _before.setdefault(lib.filepath, lib.get_num_threads())
        lib.set_num_threads(own if count is None else count)


@contextlib.contextmanager
def _hold(count: int) -> Iterator[None]:
    """BLAS at no more than ``count`` threads meanwhile. Holds from several threads at once
    share the libraries' one setting: the smallest count asked for is in force, and the last
    hold to end gives each library back its own count."""
    with _lock:
        _held.append(count)
        _set(min(_held))
    try:
        yield
    finally:
        with _lock:
            _held.remove(count)
            _set(min(_held) if _held else None)
            if not _held:
                _before.clear()


def one_blas_thread() -> contextlib.AbstractContextManager[None]:
    """Hold every BLAS library at one thread meanwhile: while compiled kernels call BLAS from
    their own threads (a BLAS with its own pool inside each of them runs ~10× slower,
    oversubscribed), and for a product whose result must not wake OpenBLAS's threads (they
    spin for ~0.1 s after it, on the cores the compiled kernels' threads need next).

    Calls from several threads at once share one limit (:func:`_hold`): the first sets it, the
    last lifts it. Other code calling BLAS meanwhile gets one thread too.
    """
    return _hold(1)


def blas_threads(count: int | None) -> contextlib.AbstractContextManager[None]:
    """Hold every BLAS library at ``count`` threads meanwhile; nothing when ``count`` is None.
    ``fit(n_threads=k)`` on the reference path, whose products are BLAS's own: OpenBLAS's
    last bits depend on its thread count, so a count fixed by the caller gives the same
    numbers on every run, however busy the machine. A :func:`one_blas_thread` inside it, or in
    another thread meanwhile, lowers the limit to one until it ends."""
    return contextlib.nullcontext() if count is None else _hold(count)


def holders() -> int:
    """How many callers hold BLAS's thread count now (0 when BLAS has its own limits)."""
    return len(_held)


def gemm_address(kind: str) -> int | None:
    """The address of ``kind`` (``"sgemm"``, ``"dgemm"``, the Fortran interface) in the OpenBLAS
    that NumPy links — the reference path's products — or None where NumPy links another BLAS.
    NumPy's wheels carry a newer OpenBLAS than SciPy's: on one Xeon, 784-256-128-10 at batch
    1024, the compiled epoch's products took 0.15 s per 20,000 rows through it and 0.26 s
    through SciPy's. Its integers may be 32- or 64-bit (``scipy_sgemm_64_``)."""
    home = os.path.dirname(os.path.realpath(np.__file__))
    for lib in _blas().select(internal_api="openblas").lib_controllers:
        path = os.path.realpath(lib.filepath)
        if not path.startswith((home + os.sep, home + ".libs" + os.sep)):
            continue
        handle = ctypes.CDLL(path)
        for name in (f"scipy_{kind}_64_", f"{kind}_64_", f"scipy_{kind}_", f"{kind}_"):
            if hasattr(handle, name):
                return ctypes.cast(getattr(handle, name), ctypes.c_void_p).value
    return None
