"""Devices by name: ``"cpu"``, and ``"cuda"`` / ``"cuda:N"`` through CuPy (optional).

``resolve_device("cuda")`` imports CuPy, checks that a CUDA device is there, and registers the
device with the backend (its arrays, namespace and :mod:`~deltaprop.backend.cuda_kernels`); without
CuPy or without a GPU it raises one :class:`~deltaprop.errors.DeviceUnavailableError` that says
what to install. Nothing here runs until a GPU is asked for: the CPU never imports CuPy.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import DeviceUnavailableError
from .arrays import CPU, Device, register_device
from .cuda_kernels import Kernels, cupy_launcher

INSTALL = (
    "install CuPy for your CUDA version: pip install 'deltaprop[cuda12]' (CUDA 12.x) or "
    "'deltaprop[cuda13]' (CUDA 13.x)"
)

_GPUS: dict[int, Device] = {}


def resolve_device(device: Any) -> Device:
    """The :class:`~deltaprop.backend.arrays.Device` named by ``device``.

    Args:
        device: ``"cpu"``; ``"cuda"`` or ``"gpu"`` (the current CUDA device), ``"cuda:N"``;
            or a Device (returned as it is).

    Raises:
        ValueError: for another name.
        DeviceUnavailableError: for a GPU where CuPy or a CUDA device is missing.
    """
    if isinstance(device, Device):
        return device
    name = str(device).strip().lower() if isinstance(device, str) else None
    if name == "cpu":
        return CPU
    match = re.fullmatch(r"(?:cuda|gpu)(?::(\d+))?", name or "")
    if match is None:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return _gpu(None if match.group(1) is None else int(match.group(1)))


def _gpu(index: int | None) -> Device:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as error:
        raise DeviceUnavailableError(
            f"device='cuda' needs CuPy, which is not installed ({error}); {INSTALL}"
        ) from None
    except Exception as error:  # an installed CuPy that cannot load its CUDA libraries
        raise DeviceUnavailableError(
            f"device='cuda' needs CuPy, which failed to load ({type(error).__name__}: {error}); "
            f"{INSTALL}"
        ) from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:  # CuPy raises its own CUDA errors when there is no driver
        raise DeviceUnavailableError(
            f"device='cuda': CuPy is installed but found no usable CUDA device "
            f"({type(error).__name__}: {error}); a GPU needs an NVIDIA card, its driver and the "
            f"CuPy build for the driver's CUDA version: {INSTALL}"
        ) from None
    if count == 0:
        raise DeviceUnavailableError(f"device='cuda': this machine has no CUDA device; {INSTALL}")
    if index is None:
        index = int(cupy.cuda.Device().id)
    if not 0 <= index < count:
        raise DeviceUnavailableError(
            f"device='cuda:{index}': this machine has {count} CUDA device(s), 0 to {count - 1}"
        )
    if index not in _GPUS:
        if _GPUS:  # arrays know their type, not their GPU: one GPU per process
            raise DeviceUnavailableError(
                f"device='cuda:{index}': this process already uses cuda:{next(iter(_GPUS))}; "
                "deltaprop uses one GPU per process (choose it with CUDA_VISIBLE_DEVICES)"
            )
        cupy.cuda.Device(index).use()
        # SciPy's special functions (expit, erf, xlogy) on CuPy arrays go to cupyx's twins
        importlib.import_module("cupyx.scipy.special")
        kernels = Kernels(cupy, cupy_launcher(cupy))
        _GPUS[index] = register_device(Device(f"cuda:{index}", cupy, cupy.ndarray, kernels))
    return _GPUS[index]
