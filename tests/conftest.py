import numpy as np
import pytest
from hypothesis import settings

import deltaprop as dp
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
