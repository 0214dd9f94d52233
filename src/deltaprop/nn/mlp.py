"""Ready-made networks: ``mlp``, the multi-layer perceptron of the seed and of scikit-learn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..validation import check_int, check_rng
from .activations import ReLU
from .dense import Dense
from .dropout import Dropout
from .layer import Layer
from .sequential import Sequential


def mlp(
    widths: Sequence[int],
    *,
    rng: np.random.Generator | int,
    activation: Callable[[], Layer] = ReLU,
    dtype: npt.DTypeLike = np.float32,
    init: str = "auto",
    dropout: float = 0.0,
    l2: float = 0.0,
    device: Any = None,
) -> Sequential:
    """A multi-layer perceptron: Dense layers of the given widths, ``activation`` between them.

    The last Dense layer emits logits (no activation after it): the loss fuses the output
    activation. ``mlp([784, 256, 128, 10], rng=rng)`` is
    ``Sequential(Dense(784, 256), ReLU(), Dense(256, 128), ReLU(), Dense(128, 10))``.

    Args:
        widths: input width, hidden widths, output width; at least two, each > 0.
        rng: the generator that draws the initial weights (an int seeds a new one).
        activation: a Layer class or a function returning a new Layer (``lambda:
            dp.LeakyReLU(0.1)``), called once per hidden layer.
        dtype: float32 (default) or float64.
        init: each Dense layer's initializer (``"auto"``: He before ReLU-like units, else
            Glorot; or a name in ``dp.registry.INITIALIZERS``).
        dropout: if > 0, a ``Dropout(dropout)`` after each hidden activation.
        l2: each Dense layer's L2 penalty ½λ‖W‖² (see ``Dense``).
        device: where the model lives: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` (see
            :meth:`Sequential.to`). The weights are drawn on the host either way, so a seed
            gives the same initial network on every device.
    """
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"mlp: widths needs an input and an output width, got {widths}")
    widths = [check_int(f"widths[{i}]", w, 1, owner="mlp") for i, w in enumerate(widths)]
    rng = check_rng("rng", rng, owner="mlp")  # one generator for every layer, also from a seed
    layers: list[Layer] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(Dense(fan_in, fan_out, rng=rng, dtype=dtype, init=init, l2=l2))
        if i < len(widths) - 2:
            hidden = activation()
            if not isinstance(hidden, Layer):
                raise TypeError(
                    f"mlp: activation must make a Layer (a class such as dp.ReLU), got "
                    f"{type(hidden).__name__} from {activation!r}"
                )
            layers.append(hidden)
            if dropout > 0:
                layers.append(Dropout(dropout))
    return Sequential(*layers, device=device)
