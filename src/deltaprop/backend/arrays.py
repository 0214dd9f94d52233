"""The array type, the dtype policy and the compiler for element-wise kernels.

A network's floating-point type is decided once — float32 by default, float64 on request — and
never silently widened: layers compute in the dtype of their parameters, and data are converted
to it once, at the boundary (:func:`as_float_array`). Kernels that fuse several array passes into
one loop are compiled with :data:`compiled` (Numba); each sits beside the plain NumPy formula it
equals (see :mod:`deltaprop.nn.functional` and :mod:`deltaprop.optim.rules`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
"""Any NumPy array; shapes are stated in each docstring."""

DEFAULT_DTYPE: np.dtype[Any] = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Compiled:
    """A function compiled by Numba when it is first used: called from Python, called from
    other compiled code, or asked for one of Numba's attributes (``overloads``, ...). Until
    then nothing of Numba is imported, so ``import deltaprop`` stays light.

    Args:
        function: the Python function (kept as ``py_func``, as Numba keeps it).
        options: Numba's ``njit`` options.
    """

    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = function
        self.options = options
        self._dispatcher: Any = None
        functools.update_wrapper(self, function)

    def dispatcher(self) -> Any:
        """Numba's dispatcher of the function, made on the first call."""
        if self._dispatcher is None:
            from numba import njit

            _teach_numba()
            self._dispatcher = njit(**self.options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.dispatcher()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)

    def __repr__(self) -> str:
        return f"Compiled({self.py_func.__qualname__}, {self.options})"


@functools.cache
def _teach_numba() -> None:
    """Let compiled code call a :class:`Compiled` as it calls a dispatcher (it is typed as one)."""
    from numba.core.typing.typeof import typeof
    from numba.extending import typeof_impl

    @typeof_impl.register(Compiled)
    def _typeof_compiled(value: Compiled, context: Any) -> Any:
        return typeof(value.dispatcher(), context.purpose)


_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


def compiled(function: Callable[..., Any]) -> Compiled:
    """The decorator of every compiled kernel (compiled on first use: :class:`Compiled`).

    ``error_model="numpy"`` drops Python's division-by-zero check from a loop, which is what lets
    LLVM vectorise it (the Adam pass was 4x slower without it); ``nogil`` lets other Python
    threads run meanwhile; ``cache`` keeps the machine code between processes. Kernels run on
    one thread: they sit between BLAS calls, and parallel versions on two threads made
    Fashion-MNIST epochs slower.
    """
    return Compiled(function, dict(_OPTIONS))


def compiled_parallel(function: Callable[..., Any]) -> Compiled:
    """The decorator of a compiled kernel whose ``prange`` loops run on Numba's threads."""
    return Compiled(function, {**_OPTIONS, "parallel": True})


def float_dtype(dtype: npt.DTypeLike, *, name: str = "dtype") -> np.dtype[Any]:
    """Return ``dtype`` as a NumPy dtype, accepting only float32 and float64.

    Raises:
        TypeError: if ``dtype`` is anything else.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from error
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {resolved}")
    return resolved


def empty(shape: int | tuple[int, ...], dtype: npt.DTypeLike) -> Array:
    """Uninitialised storage of ``shape`` and float ``dtype``."""
    return np.empty(shape, dtype=float_dtype(dtype))


def as_real_array(x: Any, *, name: str = "x", numeric: bool = True) -> Array:
    """``x`` as a NumPy array, taking data frames as scikit-learn does.

    A pandas DataFrame or Series (anything with ``to_numpy`` that is not an array) becomes a
    float64 array: boolean and nullable columns included, missing values as NaN (which the data
    checks then name). With ``numeric=False`` (targets) other dtypes pass through unchanged.

    Raises:
        TypeError: if a frame holds values that are not numbers.
    """
    if type(x) in _BY_TYPE:  # a device's array: its values, on the host
        return to_host(x)
    if isinstance(x, np.ndarray):
        return x
    to_numpy = getattr(x, "to_numpy", None)
    if to_numpy is None:
        return np.asarray(x)
    try:
        return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as error:
        if not numeric:
            return np.asarray(to_numpy())
        raise TypeError(f"{name} must hold real numbers: {error}") from None


def as_float_array(x: Any, dtype: npt.DTypeLike, *, name: str = "x") -> Array:
    """Return ``x`` as a C-contiguous array of ``dtype``, copying only when needed.

    Raises:
        TypeError: if ``x`` is not numeric (strings, objects, complex numbers).
    """
    array = np.asarray(to_host(x))
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    with np.errstate(over="ignore"):  # values beyond the dtype's range: the data checks say so
        return np.ascontiguousarray(array, dtype=float_dtype(dtype))


# --- devices: where a model's arrays live ------------------------------------------------------


class Device:
    """Where a model's arrays live and what computes on them: the one seam of the GPU backend.

    Layers, losses and optimizers are written once, against NumPy's API; NumPy hands a call on
    a device's arrays to the device's library (CuPy implements NumPy's dispatch protocols), and
    only arrays made from nothing (``empty``, ``zeros``) and the compiled kernels need the device
    by name: :func:`namespace` gives the first, :func:`kernels` the second.

    Attributes:
        name: ``"cpu"``, ``"cuda:0"``, ...
        xp: the array namespace (``numpy``, ``cupy``).
        array_type: the type of its arrays.
        kernels: the compiled kernels, by the names of the CPU's (None on the CPU, whose kernels
            the formulas' modules call directly).
    """

    def __init__(self, name: str, xp: Any, array_type: type, kernels: Any = None) -> None:
        self.name = name
        self.xp = xp
        self.array_type = array_type
        self.kernels = kernels

    def asarray(self, x: Any, dtype: npt.DTypeLike | None = None) -> Any:
        """``x`` (a NumPy array or another device's) as an array on this device: a copy
        unless it is already here in ``dtype``."""
        if device_of(x) != self:
            x = to_host(x)
        return self.xp.ascontiguousarray(self.xp.asarray(x, dtype=dtype))

    def synchronize(self) -> None:
        """Wait until the device has finished its queued work (timings need it)."""
        sync = getattr(self.xp, "cuda", None)
        if sync is not None:
            sync.get_current_stream().synchronize()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Device({self.name!r})"


CPU = Device("cpu", np, np.ndarray)
"""The CPU: NumPy arrays, Numba kernels."""

_BY_TYPE: dict[type, Device] = {}


def register_device(device: Device) -> Device:
    """Make ``device``'s arrays known: :func:`device_of`, :func:`namespace` and :func:`kernels`
    then find it from any of its arrays. Returns the device."""
    if device.kernels is None:
        raise ValueError(f"a device other than the CPU needs its kernels, {device.name!r} has none")
    _BY_TYPE[device.array_type] = device
    return device


def device_of(x: Any) -> Device:
    """The device an array lives on (the CPU for NumPy arrays and anything unknown)."""
    if type(x) is np.ndarray:
        return CPU
    return _BY_TYPE.get(type(x), CPU)


def on_cpu(x: Any) -> bool:
    """Whether ``x`` is an array of the CPU's (checked on every kernel call: kept cheap)."""
    return type(x) is np.ndarray or type(x) not in _BY_TYPE


def namespace(x: Any) -> Any:
    """The array namespace of ``x``'s device: ``numpy`` or ``cupy``."""
    return np if type(x) is np.ndarray else device_of(x).xp


def kernels(x: Any) -> Any:
    """The compiled kernels of ``x``'s device (not the CPU's: callers run those themselves)."""
    return _BY_TYPE[type(x)].kernels


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array of a known device: a NumPy array, or a registered device's."""
    return isinstance(x, np.ndarray) or type(x) in _BY_TYPE


def to_host(x: Any) -> Any:
    """``x`` as a NumPy array (a copy from a device; ``x`` itself on the CPU); anything that is
    not an array passes through."""
    if type(x) is np.ndarray:
        return x
    device = _BY_TYPE.get(type(x))
    if device is None:
        return x
    get = getattr(x, "get", None)  # cupy.ndarray.get() copies to the host
    return get() if callable(get) else np.array(x)


def run_kernel(kernel: Any, **arguments: Any) -> Any:
    """Run a compiled CPU ``kernel`` on its keyword ``arguments`` — or, when the first argument
    is a device's array, the device's kernel of the same name (without the leading ``_``)."""
    first = next(iter(arguments.values()))
    if on_cpu(first):
        return kernel(**arguments)
    return getattr(kernels(first), kernel.__name__.lstrip("_"))(**arguments)


def address(x: Any) -> int:
    """Where the first element of ``x`` is in its device's memory: views into one buffer are
    compared by it. (CuPy's ``data.ptr`` first: its CUDA array interface may synchronize.)"""
    pointer = getattr(getattr(x, "data", None), "ptr", None)
    if pointer is not None:
        return int(pointer)
    interface = getattr(x, "__cuda_array_interface__", None) or x.__array_interface__
    return int(interface["data"][0])


def moved_to(x: Any, reference: Any) -> Any:
    """``x`` on the device of the array ``reference``: ``x`` itself when it is there already,
    else a copy (host to device, device to host)."""
    target = device_of(reference)
    if device_of(x) == target:
        return x
    return to_host(x) if target is CPU else target.asarray(x)


def copy_into(target: Array, source: Any) -> None:
    """``target[...] = source``, in place, whichever devices the two are on."""
    np.copyto(target, moved_to(source, target))


def take_rows(X: Array, index: Array, out: Array) -> Array:
    """``out[:] = X[index]`` along the first axis, ``index`` on X's device."""
    if on_cpu(X):
        # mode="clip" skips numpy's bounds-checked (buffered) path; callers pass their own
        # valid indices, so nothing is ever clipped
        return np.take(X, index, axis=0, out=out, mode="clip")
    return device_of(X).xp.take(X, index, axis=0, out=out)
