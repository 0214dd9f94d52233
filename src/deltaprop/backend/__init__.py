"""Where arrays live and the compiled kernels that run on them.

The array type and dtype policy (:mod:`.arrays`), devices by name — NumPy on the CPU, CuPy on an
NVIDIA GPU (:mod:`.devices`) —, flat parameter buffers and reused workspaces (:mod:`.memory`),
and the compiled kernels, one module per device with the same loops side by side: Numba on the
CPU (:mod:`.cpu_kernels`), CUDA through CuPy (:mod:`.cuda_kernels`). Nothing here knows a layer,
a loss or an optimizer; everything above writes its formulas against this room's namespace.
"""

from .arrays import Array, Device, as_float_array, as_real_array, device_of, float_dtype, namespace
from .devices import resolve_device
from .memory import Workspace, flat_buffers, flatten_into

__all__ = [
    "Array",
    "Device",
    "Workspace",
    "as_float_array",
    "as_real_array",
    "device_of",
    "flat_buffers",
    "flatten_into",
    "float_dtype",
    "namespace",
    "resolve_device",
]
