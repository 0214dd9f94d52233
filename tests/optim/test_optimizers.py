"""One table of optimizers drives every test: formula, kernel, convergence, PyTorch agreement.

Each case pairs an optimizer with the plain NumPy rule it must follow (``<rule>_reference`` of
``updates`` or ``adaptive_updates``, the algorithm PyTorch documents) and that rule's arguments:
the optimizer's steps are checked against the rule applied by the test, in float64 and float32,
and the compiled kernel against the reference rule directly — none of it needs PyTorch.
"""

import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.nn.layer import Parameter
from deltaprop.optim import adagrad, adam, rmsprop, sgd

SGD_DEFAULTS = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "decoupled": False}
RMSPROP_DEFAULTS = {
    "alpha": 0.99,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "centered": False,
}
ADAGRAD_DEFAULTS = {"lr_decay": 0.0, "eps": 1e-10, "weight_decay": 0.0}

# (id, optimizer class, its arguments, reference rule, the rule's arguments besides lr)
CASES = [
    ("SGD", dp.SGD, {"lr": 0.1}, sgd.sgd_reference, SGD_DEFAULTS),
    (
        "SGD-momentum",
        dp.SGD,
        {"lr": 0.1, "momentum": 0.9},
        sgd.sgd_reference,
        {**SGD_DEFAULTS, "momentum": 0.9},
    ),
    (
        "SGD-dampening",
        dp.SGD,
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.3},
        sgd.sgd_reference,
        {**SGD_DEFAULTS, "momentum": 0.9, "dampening": 0.3},
    ),
    (
        "SGD-nesterov-wd",
        dp.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        sgd.sgd_reference,
        {**SGD_DEFAULTS, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    ("Adam", dp.Adam, {"lr": 0.01}, adam.adam_reference, ADAM_DEFAULTS),
    (
        "Adam-l2",
        dp.Adam,
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1},
        adam.adam_reference,
        {**ADAM_DEFAULTS, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1},
    ),
    (
        "AdamW",
        dp.AdamW,
        {"lr": 0.01, "weight_decay": 0.1},
        adam.adam_reference,
        {**ADAM_DEFAULTS, "weight_decay": 0.1, "decoupled": True},
    ),
    ("RMSprop", dp.RMSprop, {"lr": 0.01}, rmsprop.rmsprop_reference, RMSPROP_DEFAULTS),
    (
        "RMSprop-centered-momentum",
        dp.RMSprop,
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
        rmsprop.rmsprop_reference,
        {**RMSPROP_DEFAULTS, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
    ),
    (
        "Adagrad",
        dp.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01},
        adagrad.adagrad_reference,
        {**ADAGRAD_DEFAULTS, "lr_decay": 0.01},
    ),
]
IDS = [c[0] for c in CASES]
PARAMS = ("name", "cls", "kwargs", "ref", "rule_args")
TOLERANCE = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 1e-5, "atol": 1e-6}}


@pytest.mark.parametrize(PARAMS, CASES, ids=IDS)
@pytest.mark.parametrize("layout", ["flat", "separate"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_steps_equal_the_formula(name, cls, kwargs, ref, rule_args, layout, dtype, rng):
    if layout == "flat":
        net = dp.Sequential(dp.Dense(3, 2, rng=rng, dtype=dtype))
        params = net.parameters()
    else:
        params = [
            Parameter(rng.standard_normal((2, 3)).astype(dtype), "a"),
            Parameter(rng.standard_normal(2).astype(dtype), "b"),
        ]
    opt = cls(params, **kwargs)
    expected = [p.value.copy().ravel() for p in params]
    # the rule's state, per parameter, starting as the optimizer's does (Adagrad's accumulator)
    states = [
        [np.full(p.value.size, opt.state[key][0], dtype) for key in opt.state_names] for p in params
    ]
    for t in range(1, 5):
        for p in params:
            p.grad[...] = rng.standard_normal(p.value.shape)
        for e, p, state in zip(expected, params, states, strict=True):
            ref(e, p.grad.ravel(), *state, lr=kwargs["lr"], grad_scale=1.0, step=t, **rule_args)
        opt.step()
        for e, p in zip(expected, params, strict=True):
            assert p.value.dtype == dtype
            np.testing.assert_allclose(p.value.ravel(), e, **TOLERANCE[dtype])
    assert opt.step_count == 4


RULES = {
    "sgd": (sgd.sgd, sgd.sgd_reference, 1, {**SGD_DEFAULTS, "momentum": 0.9}),
    "sgd-nesterov": (
        sgd.sgd,
        sgd.sgd_reference,
        1,
        {**SGD_DEFAULTS, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ),
    "adam": (adam.adam, adam.adam_reference, 2, {**ADAM_DEFAULTS, "weight_decay": 0.1}),
    "adamw": (
        adam.adam,
        adam.adam_reference,
        2,
        {**ADAM_DEFAULTS, "weight_decay": 0.1, "decoupled": True},
    ),
    "rmsprop": (
        rmsprop.rmsprop,
        rmsprop.rmsprop_reference,
        3,
        {**RMSPROP_DEFAULTS, "centered": True, "momentum": 0.5},
    ),
    "adagrad": (adagrad.adagrad, adagrad.adagrad_reference, 1, ADAGRAD_DEFAULTS),
}


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_compiled_rule_equals_its_reference(rule, dtype, rng):
    """The kernel and the NumPy formula beside it agree, clipping scale and state included."""
    kernel, reference, n_states, args = RULES[rule]
    p = rng.standard_normal(50).astype(dtype)
    states = [np.abs(rng.standard_normal(50)).astype(dtype) for _ in range(n_states)]
    p_ref, states_ref = p.copy(), [s.copy() for s in states]
    for step in (1, 2, 3):
        g = rng.standard_normal(50).astype(dtype)
        kernel(p, g, *states, lr=0.01, grad_scale=0.5, step=step, **args)
        reference(p_ref, g, *states_ref, lr=0.01, grad_scale=0.5, step=step, **args)
        np.testing.assert_allclose(p, p_ref, **TOLERANCE[dtype])
        for s, s_ref in zip(states, states_ref, strict=True):
            np.testing.assert_allclose(s, s_ref, **TOLERANCE[dtype])


@pytest.mark.parametrize("rule", list(RULES))
def test_a_kernel_refuses_arrays_of_different_lengths(rule):
    kernel, _, n_states, args = RULES[rule]
    p = np.zeros(5)
    states = [np.zeros(5) for _ in range(n_states - 1)] + [np.zeros(4)]
    with pytest.raises(dp.ShapeError, match="1-D arrays of one length"):
        kernel(p, np.zeros(5), *states, lr=0.1, grad_scale=1.0, step=1, **args)
    assert not p.any()


@pytest.mark.parametrize(PARAMS, CASES, ids=IDS)
def test_converges_on_a_quadratic(name, cls, kwargs, ref, rule_args):
    # f(θ) = ½ Σ a_i (θ_i − c_i)²  with minimum at c
    a = np.array([1.0, 3.0, 0.5, 2.0])
    c = np.array([1.0, -2.0, 0.5, 3.0])
    theta = Parameter(np.zeros(4), "theta")
    args = dict(kwargs)
    args.pop("weight_decay", None)  # decay moves the minimum
    if cls is dp.Adagrad:  # its steps shrink as 1/sqrt(Σ g²): start it bigger, without decay
        args = {"lr": 1.0}
    opt = cls([theta], **args)
    for _ in range(3000):
        theta.grad[...] = a * (theta.value - c)
        opt.step()
    np.testing.assert_allclose(theta.value, c, atol=2e-2)


@pytest.mark.slow
@pytest.mark.parametrize(PARAMS, CASES, ids=IDS)
def test_float32_step_matches_pytorch(name, cls, kwargs, ref, rule_args, rng):
    torch = pytest.importorskip("torch")
    torch_cls = {
        "SGD": torch.optim.SGD,
        "Adam": torch.optim.Adam,
        "AdamW": torch.optim.AdamW,
        "RMSprop": torch.optim.RMSprop,
        "Adagrad": torch.optim.Adagrad,
    }[cls.__name__]
    net = dp.Sequential(dp.Dense(5, 4, rng=rng))
    tensors = [torch.tensor(p.value.copy(), requires_grad=True) for p in net.parameters()]
    opt = cls(net.parameters(), **kwargs)
    torch_opt = torch_cls(tensors, **kwargs)
    for _ in range(5):
        for p, t in zip(net.parameters(), tensors, strict=True):
            g = rng.standard_normal(p.value.shape).astype(np.float32)
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        torch_opt.step()
    for p, t in zip(net.parameters(), tensors, strict=True):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("cls", "kwargs", "keys"),
    [
        (dp.Adam, {"lr": 1e-3}, ("exp_avg", "exp_avg_sq")),
        (dp.SGD, {"lr": 1e-3, "momentum": 0.9}, ("momentum_buffer",)),
        (
            dp.RMSprop,
            {"lr": 1e-3, "alpha": 0.9, "centered": True, "momentum": 0.9},
            ("square_avg", "grad_avg", "momentum_buffer"),
        ),
    ],
    ids=["Adam", "SGD", "RMSprop"],
)
def test_subnormal_state_is_flushed_to_zero(cls, kwargs, keys):
    p = Parameter(np.zeros(3, np.float32), "p")
    opt = cls([p], **kwargs)
    p.grad[...] = [1e-30, 1.0, 0.0]
    opt.step()
    p.grad[...] = 0.0
    for _ in range(1000):  # 0.9^1000 · 1e-30 ≈ 1e-76: far below float32's normal range
        opt.step()
    tiny = np.finfo(np.float32).tiny
    for key in keys:
        state = opt.state[key]
        assert np.all((state == 0) | (np.abs(state) >= tiny)), (key, state)
        assert state[0] == 0.0 and state[2] == 0.0, (key, state)
    assert opt.state[keys[0]][0] == 0.0


def test_lr_schedule_and_scale_are_applied():
    p = Parameter(np.zeros(1), "p")
    opt = dp.SGD([p], lr=dp.StepDecay(1.0, step_size=2, gamma=0.5))
    seen = []
    for _ in range(5):
        seen.append(opt.current_lr())
        p.grad[...] = 1.0
        opt.step()
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert p.value[0] == pytest.approx(-3.25)
    opt.lr_scale = 0.1
    assert opt.current_lr() == pytest.approx(0.025)


def test_gradient_clipping_by_global_norm():
    a, b = Parameter(np.zeros(2), "a"), Parameter(np.zeros(1), "b")
    opt = dp.SGD([a, b], lr=1.0, clip_norm=1.0)
    a.grad[...] = [3.0, 0.0]
    b.grad[...] = [4.0]  # global norm 5 → scaled by 1/5
    assert opt.grad_norm() == pytest.approx(5.0)
    opt.step()
    np.testing.assert_allclose(np.concatenate([a.value, b.value]), [-0.6, 0.0, -0.8], rtol=1e-6)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (dp.SGD, {"lr": -0.1}, "lr must be > 0, got -0.1"),
        (dp.Adam, {"lr": 0}, "lr must be > 0, got 0.0"),
        (dp.Adam, {"betas": (1.0, 0.999)}, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        (dp.AdamW, {"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\), got -0.1"),
        (dp.SGD, {"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
        (dp.SGD, {"nesterov": True}, "nesterov needs momentum > 0"),
        (dp.RMSprop, {"eps": -1.0}, "eps must be >= 0, got -1.0"),
        (dp.Adagrad, {"weight_decay": math.nan}, "weight_decay must be >= 0, got nan"),
        (dp.SGD, {"clip_norm": 0}, "clip_norm must be > 0, got 0.0"),
    ],
)
def test_bad_hyperparameters_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([Parameter(np.zeros(2), "p")], **kwargs)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: dp.SGD(p, lr="0.1"), r"SGD: lr must be a number, got '0.1' \(str\)"),
        (lambda p: dp.SGD(p, momentum="0.5"), r"SGD: momentum must be a number, got '0.5'"),
        (lambda p: dp.SGD(p, momentum=0.9, nesterov="yes"), "nesterov must be True or False"),
        (lambda p: dp.Adam(p, eps=True), r"Adam: eps must be a number, got True \(bool\)"),
        (lambda p: dp.RMSprop(p, centered=1), "RMSprop: centered must be True or False, got 1"),
        (lambda p: dp.SGD(p, lr=dp.Constant("0.1")), r"Constant: lr must be a number, got '0.1'"),
        (lambda p: dp.StepDecay(0.1, step_size=2.5), "StepDecay: step_size must be an integer"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_refused(make, message):
    with pytest.raises(TypeError, match=message):
        make([Parameter(np.zeros(2), "p")])


def test_a_schedule_that_goes_negative_stops_the_step():
    p = Parameter(np.zeros(2), "p")
    opt = dp.SGD([p], lr=lambda step: 0.1 - 0.1 * step)  # 0.1, 0.0, then -0.1
    p.grad[...] = 1.0
    opt.step()
    opt.step()
    with pytest.raises(ValueError, match=r"learning rate for step 3 is -0.1.*finite and >= 0"):
        opt.step()
    np.testing.assert_allclose(p.value, [-0.1, -0.1])  # the refused step changed nothing
    assert opt.step_count == 2


def test_config_is_the_constructor_arguments_and_repr_shows_them():
    p = [Parameter(np.zeros(2), "p")]
    opt = dp.Adam(p, lr=dp.CosineDecay(0.01, total_steps=100), betas=(0.8, 0.9))
    assert opt.config() == {
        "lr": opt.lr,
        "betas": [0.8, 0.9],
        "eps": 1e-8,
        "weight_decay": 0.0,
        "clip_norm": None,
    }
    assert repr(opt) == (
        "Adam(lr=CosineDecay(lr=0.01, total_steps=100, min_lr=0.0, warmup_steps=0), "
        "betas=[0.8, 0.9], eps=1e-08, weight_decay=0.0, clip_norm=None)"
    )
    rebuilt = dp.Adam(p, **opt.config())
    assert rebuilt.config() == opt.config()


def test_empty_parameter_list_is_refused():
    with pytest.raises(ValueError, match="empty parameter list"):
        dp.Adam([])


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (dp.Constant(0.1), [0.1, 0.1, 0.1]),
        (dp.ExponentialDecay(1.0, gamma=0.5), [1.0, 0.5, 0.25]),
        (dp.InverseScaling(1.0, power_t=0.5), [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3)]),
        (dp.CosineDecay(1.0, total_steps=3, warmup_steps=1), [1.0, 1.0, 0.5]),
    ],
)
def test_schedules(schedule, expected):
    assert [schedule(t) for t in range(3)] == pytest.approx(expected)


def test_cosine_decay_warms_up_then_ends_at_min_lr():
    s = dp.CosineDecay(1.0, total_steps=10, warmup_steps=4, min_lr=0.1)
    assert [s(t) for t in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert s(7) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert s(10) == s(100) == 0.1
    with pytest.raises(ValueError, match="warmup_steps must be"):
        dp.CosineDecay(1.0, total_steps=5, warmup_steps=5)
