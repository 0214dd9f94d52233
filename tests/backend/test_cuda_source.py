"""The GPU kernels' CUDA source compiles with NVIDIA's own compiler, NVRTC, for the H100/H200
generation — the compiler CuPy hands it to on a GPU — with no GPU needed.

NVRTC comes from the ``nvidia-cuda-nvrtc-cu12`` wheel (in the test extra); without it the test
is skipped. ``tests/backend/test_cuda_kernels.py`` runs the same source, compiled for the CPU.
"""

import ctypes
import re
from pathlib import Path

import pytest

from deltaprop.backend import cuda_kernels as gpu_kernels
from deltaprop.backend.cuda_kernels import C_TYPES, SOURCE


def _nvrtc() -> ctypes.CDLL | None:
    try:
        import nvidia.cuda_nvrtc as package
    except ImportError:
        return None
    for folder in package.__path__:
        found = sorted(Path(folder, "lib").glob("libnvrtc.so.*"))
        if found:
            return ctypes.CDLL(str(found[0]))
    return None


NVRTC = _nvrtc()
pytestmark = pytest.mark.skipif(NVRTC is None, reason="NVRTC is not installed")


def compile_ptx(code: str, architecture: str) -> tuple[int, str, str]:
    """(NVRTC's result code, its log, the PTX) for ``code``."""
    assert NVRTC is not None
    program = ctypes.c_void_p()
    assert (
        NVRTC.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"k.cu", 0, None, None) == 0
    )
    options = [f"--gpu-architecture={architecture}".encode(), b"--std=c++14"]
    result = NVRTC.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * 2)(*options))
    size = ctypes.c_size_t()
    NVRTC.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    NVRTC.nvrtcGetProgramLog(program, log)
    ptx = ""
    if result == 0:
        NVRTC.nvrtcGetPTXSize(program, ctypes.byref(size))
        text = ctypes.create_string_buffer(size.value)
        NVRTC.nvrtcGetPTX(program, text)
        ptx = text.value.decode()
    NVRTC.nvrtcDestroyProgram(ctypes.byref(program))
    return result, log.value.decode(), ptx


@pytest.mark.parametrize("c_type", sorted(C_TYPES.values()))
@pytest.mark.parametrize("architecture", ["compute_90", "compute_80"])
def test_the_source_compiles_cleanly_and_has_every_kernel_the_wrappers_launch(c_type, architecture):
    result, log, ptx = compile_ptx(f"#define T {c_type}\n{SOURCE}", architecture)
    assert result == 0 and log.strip() == "", log
    defined = set(re.findall(r'extern "C" __global__ void (\w+)\(', SOURCE))
    entries = set(re.findall(r"\.entry (\w+)\(", ptx))
    assert entries == defined and len(defined) == 12
    launched = set(
        re.findall(r'self\._(?:run|rule)\(\s*"(\w+)"', Path(gpu_kernels.__file__).read_text())
    )
    assert launched == defined  # every kernel is launched, and every launch has its kernel


def test_a_fault_in_the_source_is_reported_with_its_line():
    result, log, _ = compile_ptx(
        "#define T float\n" + SOURCE.replace("T zi = z[i];", "T zi = z[i]"), "compute_90"
    )
    assert result != 0 and "error" in log
