"""Every GPU kernel computes what its plain formula computes.

The CUDA source of :mod:`deltaprop.backend.cuda_kernels` runs compiled for the CPU (the emulated
device of ``gpu_emulation.py``), through the same wrappers the GPU uses; where CuPy finds a
CUDA device, the same comparisons run on it too (the ``device`` fixture of ``conftest.py``).
"""

import numpy as np
import pytest

from deltaprop import functional as F
from deltaprop.backend import arrays as backend
from deltaprop.backend import cuda_kernels as gpu_kernels
from deltaprop.errors import ShapeError
from deltaprop.optim import adagrad, adam, rmsprop, sgd

DTYPES = [np.float32, np.float64]


def _specials(rng, shape, dtype):
    z = rng.standard_normal(shape).astype(dtype)
    z[0, :3] = 0
    z[1, 0], z[1, 1], z[1, 2] = np.nan, np.inf, -np.inf
    return z


def _tolerance(dtype):
    return {"rtol": 1e-6 if dtype == np.float32 else 1e-13, "atol": 0}


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_gate_and_the_bias_sum_equal_their_formulas(device, rng, dtype):
    z = _specials(rng, (9, 5), dtype)
    z_d = device.asarray(z)
    a, gate = F.relu_and_gate(
        z_d, out=device.xp.empty_like(z_d), gate=device.xp.empty(z.shape, bool)
    )
    assert backend.device_of(a) is device
    np.testing.assert_array_equal(a.get(), F.relu(z))
    np.testing.assert_array_equal(gate.get(), F.relu_prime(z))

    grad = rng.standard_normal((9, 5)).astype(dtype)
    grad[2, 1] = np.inf
    out = F.apply_gate(device.asarray(grad), gate, out=device.xp.empty_like(z_d))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(out.get(), grad * F.relu_prime(z))

    D = rng.standard_normal((33, 7)).astype(dtype)
    sums = F.sum_over_batch(device.asarray(D), out=device.xp.empty(7, dtype))
    np.testing.assert_array_equal(sums.get(), F.sum_over_batch(D, out=np.empty(7, dtype)))

    W = rng.standard_normal((4, 3)).astype(dtype)
    g = rng.standard_normal((4, 3)).astype(dtype)
    g_d = device.asarray(g)
    F.add_scaled(g_d, device.asarray(W), 0.25)
    np.testing.assert_allclose(g_d.get(), g + dtype(0.25) * W, **_tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_one_hot_and_hits_equal_their_formulas(device, rng, dtype):
    z = rng.standard_normal((50, 6)).astype(dtype) * 4
    labels = rng.integers(0, 6, 50)
    P = np.empty_like(z)
    expected_total = F.softmax_cross_entropy_labels(z, labels, out=P)
    P_d = device.xp.empty_like(device.asarray(z))
    total = F.softmax_cross_entropy_labels(device.asarray(z), device.asarray(labels), out=P_d)
    np.testing.assert_allclose(total, expected_total, rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(P_d.get(), F.softmax(z), **_tolerance(dtype))
    lse = F.softmax_and_logsumexp(z.astype(np.float64))[1][:, 0]
    np.testing.assert_allclose(total, np.sum(lse - z[np.arange(50), labels]), rtol=1e-5)

    bad = labels.copy()
    bad[3] = 6  # outside [0, K): NaN, as on the CPU
    assert np.isnan(F.softmax_cross_entropy_labels(device.asarray(z), device.asarray(bad), P_d))

    D = device.asarray(P)
    F.subtract_one_hot(D, device.asarray(bad))
    expected = P.copy()
    keep = bad < 6
    expected[np.arange(50)[keep], bad[keep]] -= 1
    np.testing.assert_array_equal(D.get(), expected)

    z[4, 2] = np.nan  # NaN counts as the largest, as in np.argmax
    hits = F.count_argmax_hits(device.asarray(z), device.asarray(labels))
    assert hits == int(np.sum(np.argmax(z, axis=1) == labels)) == F.count_argmax_hits(z, labels)


RULES = [
    (
        sgd.sgd,
        sgd.sgd_reference,
        ["momentum_buffer"],
        dict(momentum=0.9, dampening=0.1, nesterov=True, weight_decay=1e-3, lr=0.05),
    ),
    (
        sgd.sgd,
        sgd.sgd_reference,
        ["momentum_buffer"],
        dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, lr=0.1),
    ),  # noqa: E501
    (
        adam.adam,
        adam.adam_reference,
        ["exp_avg", "exp_avg_sq"],
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False),
    ),
    (
        adam.adam,
        adam.adam_reference,
        ["exp_avg", "exp_avg_sq"],
        dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.01, decoupled=True),
    ),
    (
        rmsprop.rmsprop,
        rmsprop.rmsprop_reference,
        ["square_avg", "grad_avg", "momentum_buffer"],
        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=1e-4, momentum=0.9, centered=True),
    ),
    (
        adagrad.adagrad,
        adagrad.adagrad_reference,
        ["sum_sq"],
        dict(lr=0.1, lr_decay=0.01, eps=1e-10, weight_decay=0.0),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule, reference, states, hyper", RULES)
def test_update_rules_equal_the_cpu_kernels_and_their_references_over_three_steps(
    device, rng, dtype, rule, reference, states, hyper
):
    n = 1001
    p = rng.standard_normal(n).astype(dtype)
    p_d = device.asarray(p)
    p_ref = p.copy()
    host = {name: np.zeros(n, dtype) for name in states}
    plain = {name: np.zeros(n, dtype) for name in states}
    on_device = {name: device.xp.zeros(n, dtype) for name in states}
    for step in (1, 2, 3):
        g = rng.standard_normal(n).astype(dtype)
        g[:5] = 0  # the moments of these decay into the flushed range
        rule(p, g, *host.values(), **hyper, grad_scale=0.5, step=step)
        reference(p_ref, g, *plain.values(), **hyper, grad_scale=0.5, step=step)
        rule(p_d, device.asarray(g), *on_device.values(), **hyper, grad_scale=0.5, step=step)
    # the same loop as the CPU's compiled kernel: equal but for a fused multiply-add or two
    tight = {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-14, "atol": 0}
    np.testing.assert_allclose(p_d.get(), p, **tight)
    for name in states:
        np.testing.assert_allclose(on_device[name].get(), host[name], **tight)
    # and the plain formula, to float rounding over three steps
    loose = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(p_d.get(), p_ref, rtol=loose, atol=loose)


def test_a_strided_array_is_refused(device, rng):
    D = device.asarray(rng.standard_normal((6, 8)).astype(np.float32))
    with pytest.raises(ShapeError, match="C-contiguous"):
        device.kernels.sum_over_batch(D=D[:, ::2], out=device.xp.empty(4, np.float32), zero=0)


def test_the_cupy_launcher_compiles_once_per_dtype_and_sizes_the_grid():
    calls = []

    class Function:
        def __init__(self, name):
            self.name = name

        def __call__(self, grid, block, arguments):
            calls.append((self.name, grid, block, len(arguments)))

    class Module:
        built = []

        def __init__(self, code, options):
            Module.built.append((code.splitlines()[0], options))

        def get_function(self, name):
            return Function(name)

    class FakeCupy:
        RawModule = Module

    launch = gpu_kernels.cupy_launcher(FakeCupy, block=256, max_blocks=4096)
    launch("adam_kernel", np.dtype(np.float32), 235_146, *range(15))
    launch("adam_kernel", np.dtype(np.float32), 100, *range(15))
    launch("sum_in_order", np.dtype(np.float64), 1, 0, 1, 2)
    launch("relu_and_gate", np.dtype(np.float32), 10**9, 0, 1, 2, 3)
    assert Module.built == [
        ("#define T float", ("--std=c++14",)),
        ("#define T double", ("--std=c++14",)),
    ]
    assert calls == [
        ("adam_kernel", (919,), (256,), 15),  # ⌈235,146 / 256⌉ blocks
        ("adam_kernel", (1,), (256,), 15),
        ("sum_in_order", (1,), (256,), 3),
        ("relu_and_gate", (4096,), (256,), 4),  # at most 4,096: the loops stride the rest
    ]


@pytest.mark.parametrize(
    ("name", "cpu_kernel"),
    [
        ("sgd_kernel", sgd._sgd_kernel),
        ("adam_kernel", adam._adam_kernel),
        ("rmsprop_kernel", rmsprop._rmsprop_kernel),
        ("adagrad_kernel", adagrad._adagrad_kernel),
    ],
)
def test_each_rule_takes_the_cpu_kernels_arguments_in_its_order(name, cpu_kernel):
    """The CUDA wrapper reads its argument order from the source: it must be the CPU's."""
    import inspect

    from deltaprop.backend.cuda_kernels import parameters

    assert parameters(name) == [*inspect.signature(cpu_kernel.py_func).parameters, "n"]
    with pytest.raises(KeyError, match="no kernel 'nope'"):
        parameters("nope")
