"""One table of optimizers drives every test: formula, convergence, PyTorch agreement."""

import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.core import Parameter


def ref_sgd(p, g, s, t, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    g = g + weight_decay * p
    if momentum:
        s["b"] = g.copy() if t == 1 else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def ref_adam(p, g, s, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    m_hat = s["m"] / (1 - b1**t)
    v_hat = s["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_rmsprop(
    p, g, s, t, lr, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0
):
    g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g * g
    v = s["v"]
    if centered:
        s["a"] = alpha * s.get("a", 0) + (1 - alpha) * g
        v = v - s["a"] ** 2
    avg = np.sqrt(v) + eps
    if momentum:
        s["b"] = momentum * s.get("b", 0) + g / avg
        return p - lr * s["b"]
    return p - lr * g / avg


def ref_adagrad(p, g, s, t, lr, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
    g = g + weight_decay * p
    s["sum"] = s.get("sum", 0) + g * g
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s["sum"]) + eps)


CASES = [
    ("SGD", dp.SGD, {"lr": 0.1}, ref_sgd, {}),
    ("SGD-momentum", dp.SGD, {"lr": 0.1, "momentum": 0.9}, ref_sgd, {}),
    ("SGD-dampening", dp.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}, ref_sgd, {}),
    (
        "SGD-nesterov-wd",
        dp.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        ref_sgd,
        {},
    ),
    ("Adam", dp.Adam, {"lr": 0.01}, ref_adam, {}),
    ("Adam-l2", dp.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}, ref_adam, {}),
    ("AdamW", dp.AdamW, {"lr": 0.01, "weight_decay": 0.1}, ref_adam, {"decoupled": True}),
    ("RMSprop", dp.RMSprop, {"lr": 0.01}, ref_rmsprop, {}),
    (
        "RMSprop-centered-momentum",
        dp.RMSprop,
        {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
        ref_rmsprop,
        {},
    ),
    ("Adagrad", dp.Adagrad, {"lr": 0.1, "lr_decay": 0.01}, ref_adagrad, {}),
]
IDS = [c[0] for c in CASES]


def _ref_kwargs(kwargs, extra):
    args = {k: v for k, v in kwargs.items() if k != "lr"}
    return {**args, **extra}


@pytest.mark.parametrize(("name", "cls", "kwargs", "ref", "extra"), CASES, ids=IDS)
@pytest.mark.parametrize("layout", ["flat", "separate"])
def test_steps_equal_the_formula(name, cls, kwargs, ref, extra, layout, rng):
    if layout == "flat":
        net = dp.Sequential(dp.Dense(3, 2, rng=rng, dtype=np.float64))
        params = net.parameters()
    else:
        params = [
            Parameter(rng.standard_normal((2, 3)), "a"),
            Parameter(rng.standard_normal(2), "b"),
        ]
    opt = cls(params, **kwargs)
    expected = [p.value.copy() for p in params]
    states = [{} for _ in params]
    for t in range(1, 5):
        for p in params:
            p.grad[...] = rng.standard_normal(p.value.shape)
        expected = [
            ref(e, p.grad.copy(), s, t, kwargs["lr"], **_ref_kwargs(kwargs, extra))
            for e, p, s in zip(expected, params, states, strict=True)
        ]
        opt.step()
        for e, p in zip(expected, params, strict=True):
            np.testing.assert_allclose(p.value, e, rtol=1e-12, atol=1e-14)
    assert opt.step_count == 4


@pytest.mark.parametrize(("name", "cls", "kwargs", "ref", "extra"), CASES, ids=IDS)
def test_converges_on_a_quadratic(name, cls, kwargs, ref, extra):
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


@pytest.mark.parametrize(("name", "cls", "kwargs", "ref", "extra"), CASES, ids=IDS)
def test_float32_step_matches_pytorch(name, cls, kwargs, ref, extra, rng):
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


def test_subnormal_state_is_flushed_to_zero():
    p = Parameter(np.zeros(3, np.float32), "p")
    opt = dp.Adam([p], lr=1e-3)
    p.grad[...] = [1e-30, 1.0, 0.0]
    opt.step()
    p.grad[...] = 0.0
    for _ in range(400):  # 0.9^400 · 1e-31 ≈ 5e-50: far below float32's normal range
        opt.step()
    m, v = opt.state["exp_avg"], opt.state["exp_avg_sq"]
    tiny = np.finfo(np.float32).tiny
    assert np.all((m == 0) | (np.abs(m) >= tiny)) and np.all((v == 0) | (v >= tiny))
    assert m[0] == 0.0 and m[1] != 0.0


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
