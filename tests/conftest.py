import importlib.util

import numpy as np
import pytest
from hypothesis import settings

import deltaprop as dp
from deltaprop.backend.devices import resolve_device
from deltaprop.errors import DeviceUnavailableError
from gpu_emulation import compiler, emulated_device
from support import network

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.load_profile("ci")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def saved(tmp_path, rng):
    net = network(rng)
    path = tmp_path / "model.safetensors"
    dp.save(net, path, loss=dp.SoftmaxCrossEntropy())
    return net, path


def _cuda_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        resolve_device("cuda")
    except DeviceUnavailableError:
        return False
    return True


CUDA = _cuda_available()
"""Whether CuPy and a CUDA device are here (the GPU runs of the device tests)."""


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            "emulated",
            marks=pytest.mark.skipif(compiler() is None, reason="no C++ compiler"),
        ),
        pytest.param(
            "cuda",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="no CUDA device")],
        ),
    ],
)
def device(request):
    return emulated_device() if request.param == "emulated" else resolve_device("cuda")
