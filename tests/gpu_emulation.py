"""A GPU-like device on the CPU, for testing the GPU backend where there is no GPU.

- Its arrays are :class:`EmulatedArray`, a NumPy array type that refuses to be mixed with host
  (NumPy) arrays in any NumPy call, as a GPU's arrays cannot be: code that makes an array on
  the host and meets a device array with it fails here as it would on the GPU.
- Its kernels are :class:`deltaprop.backend.cuda_kernels.Kernels` running the very CUDA source
  of the GPU backend, compiled by the C++ compiler with each launch as one thread (the kernels'
  grid-stride loops then visit every item in order).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop.backend import arrays as backend
from deltaprop.backend.cuda_kernels import C_TYPES, SOURCE, Kernels

PRELUDE = """
#include <math.h>
#define __global__
#define __device__
struct dp_dim3 { unsigned int x; };
static const dp_dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
"""


def compiler() -> str | None:
    """The C++ compiler the emulation needs, if there is one."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def compile_source(dtype: np.dtype) -> ctypes.CDLL:
    """:data:`SOURCE` with T = ``dtype``'s C type, compiled for the CPU (cached by its text)."""
    code = f"#define T {C_TYPES[np.dtype(dtype)]}\n{PRELUDE}\n{SOURCE}"
    digest = hashlib.sha256(code.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "deltaprop-gpu-emulation"
    folder.mkdir(exist_ok=True)
    library = folder / f"kernels-{digest}.so"
    if not library.exists():
        source = folder / f"kernels-{digest}.cpp"
        source.write_text(code)
        partial = folder / f"kernels-{digest}.{id(code)}.so"
        cxx = compiler()
        assert cxx is not None
        subprocess.run(
            [cxx, "-O1", "-shared", "-fPIC", "-o", str(partial), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        partial.replace(library)
    return ctypes.CDLL(str(library))


_C_SCALARS = {
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
    np.dtype(np.int32): ctypes.c_int,
    np.dtype(np.int64): ctypes.c_longlong,
}


class CpuLauncher:
    """Runs a kernel of :data:`SOURCE` compiled for the CPU."""

    def __init__(self) -> None:
        self.libraries: dict[np.dtype, ctypes.CDLL] = {}

    def __call__(self, name: str, dtype: np.dtype, n: int, *arguments: Any) -> None:
        dtype = np.dtype(dtype)
        library = self.libraries.get(dtype)
        if library is None:
            library = self.libraries[dtype] = compile_source(dtype)
        converted = []
        for a in arguments:
            if isinstance(a, np.ndarray):
                assert isinstance(a, EmulatedArray), f"{name}: a host array reached a kernel"
                assert a.flags.c_contiguous, f"{name}: a kernel got a non-contiguous array"
                converted.append(ctypes.c_void_p(a.ctypes.data))
            else:
                converted.append(_C_SCALARS[np.asarray(a).dtype](a))
        getattr(library, name)(*converted)


def _host_arrays(values: Any) -> list[np.ndarray]:
    found = []
    for v in values:
        if isinstance(v, list | tuple):
            found += _host_arrays(v)
        elif type(v) is np.ndarray and v.ndim > 0:
            found.append(v)
    return found


def _plain(values: Any) -> Any:
    if isinstance(values, EmulatedArray):
        return values.view(np.ndarray)
    if isinstance(values, list | tuple):
        return type(values)(_plain(v) for v in values)
    return values


ALLOCATIONS = [0]
"""How many device arrays of more than one element have been made (views not counted)."""


def _wrap(result: Any) -> Any:
    if type(result) is np.ndarray:
        if result.base is None and result.size > 1:
            ALLOCATIONS[0] += 1
        return result.view(EmulatedArray)
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    return result


class EmulatedArray(np.ndarray):
    """A "device" array: NumPy storage that refuses host arrays in the same call, and whose
    single elements are 0-d views, as CuPy's are (``a[i]`` changes when ``a`` does)."""

    def __getitem__(self, key: Any) -> Any:
        result = super().__getitem__(key)
        if isinstance(result, np.ndarray):
            return result
        key = key if isinstance(key, tuple) else (key,)
        return super().__getitem__((*key, Ellipsis))  # the element as a 0-d view

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out", ())
        mixed = _host_arrays(inputs) + _host_arrays(out)
        if mixed:
            raise TypeError(f"{ufunc.__name__}: a host array {mixed[0].shape} met a device array")
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        return out[0] if len(out) == 1 and result is not None else _wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        mixed = _host_arrays(args) + _host_arrays(list(kwargs.values()))
        if mixed:
            raise TypeError(f"{func.__name__}: a host array {mixed[0].shape} met a device array")
        result = func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})
        if isinstance(kwargs.get("out"), EmulatedArray):
            return kwargs["out"]
        return _wrap(result)

    @property
    def __array_interface__(self) -> dict:  # type: ignore[override]
        raise AttributeError("a device array has no __array_interface__ (as CuPy's has none)")

    @property
    def __cuda_array_interface__(self) -> dict:
        return self.view(np.ndarray).__array_interface__

    def get(self) -> np.ndarray:
        """A host copy (as ``cupy.ndarray.get``)."""
        return np.array(self.view(np.ndarray))


class EmulatedNumpy:
    """The device's array namespace: NumPy's functions, making device arrays."""

    def asarray(self, x: Any, dtype: Any = None) -> EmulatedArray:
        if isinstance(x, EmulatedArray):
            return x if dtype is None or x.dtype == dtype else x.astype(dtype)
        return _wrap(np.array(x, dtype=dtype))  # a copy, as a transfer is

    def __getattr__(self, name: str) -> Any:
        function = getattr(np, name)
        if not callable(function) or isinstance(function, type):
            return function

        def on_device(*args: Any, **kwargs: Any) -> Any:
            mixed = _host_arrays(args) + _host_arrays(list(kwargs.values()))
            if mixed and any(isinstance(a, EmulatedArray) for a in args):
                raise TypeError(f"{name}: a host array {mixed[0].shape} met a device array")
            return _wrap(function(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))

        return on_device


def emulated_device(name: str = "emulated") -> backend.Device:
    """The emulated device, registered (so the backend finds it from its arrays)."""
    xp = EmulatedNumpy()
    device = backend.Device(name, xp, EmulatedArray, Kernels(xp, CpuLauncher()))
    return backend.register_device(device)
