"""Layers with parameters."""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ..backend.arrays import Array, float_dtype, to_host
from ..errors import ShapeError
from ..validation import check_bool, check_input, check_int, check_positive, check_rng
from . import functional as F
from . import init as initializers
from .layer import Layer, Parameter


class Dense(Layer):
    """Fully connected layer, the seed's ``z = W a_prev + b`` on a batch of rows.

    Forward:  ``Z = X @ W.T + b``
    Backward: ``dW = D.T @ X`` (the sum of the N outer products δ xᵀ), ``db = Σ_n δ_n``,
    ``dX = D @ W`` (the seed's Wᵀ δ, one row per sample).

    Shapes:
        X (N, in_features) -> Z (N, out_features); W (out_features, in_features) as in the seed
        and in PyTorch; b (out_features,).

    Args:
        in_features: width of the input, > 0.
        out_features: width of the output, > 0.
        rng: the generator that draws the initial weights (an int seeds a new one).
        init: an initializer name (``"he_uniform"``, ``"glorot_normal"``, ...) or ``"auto"``:
            He for a layer followed by a ReLU-like activation, Glorot otherwise (decided when
            the layer is placed in a :class:`~deltaprop.Sequential`).
        bias: whether to learn b (zeros at start).
        dtype: float32 (default) or float64.
        l2: L2 penalty λ >= 0 on W (not b): ½ λ ‖W‖² joins the loss, divided by the loss's
            normalizer (the batch size, or its total sample weight) like the data term, so
            ∂L/∂W gains λ W / N. scikit-learn's ``alpha`` is this λ.

    In model files its tensors are ``weight`` and ``bias``, as ``torch.nn.Linear``'s.
    """

    positional_config = ("in_features", "out_features")
    affine = True
    compiled_as = "dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | int,
        init: str = "auto",
        bias: bool = True,
        dtype: npt.DTypeLike = np.float32,
        l2: float = 0.0,
    ) -> None:
        super().__init__()
        self.l2 = check_positive("l2", l2, owner="Dense", allow_zero=True)
        self.in_features = check_int("in_features", in_features, 1, owner="Dense")
        self.out_features = check_int("out_features", out_features, 1, owner="Dense")
        rng = check_rng("rng", rng, owner="Dense")
        self.init = init
        self.dtype = float_dtype(dtype)
        rule = initializers.glorot_uniform if init == "auto" else initializers.get(init)
        self.W = Parameter(rule(rng, self.in_features, self.out_features, self.dtype), "W")
        self.b: Parameter | None = (
            Parameter(np.zeros(self.out_features, dtype=self.dtype), "b")
            if check_bool("bias", bias, owner="Dense")
            else None
        )
        # the Glorot draw, kept until Sequential resolves "auto" (weights a user set are kept)
        self._auto_draw: Array | None = self.W.value.copy() if init == "auto" else None
        self._x: Array | None = None  # the input, cached for dW = D.T @ X

    @property
    def has_bias(self) -> bool:
        """Whether the layer learns a bias b."""
        return self.b is not None

    def compiled_epoch_refusal(self) -> str | None:
        if self.l2 or not self.has_bias:
            return "a Dense layer has an L2 penalty or no bias"
        return None

    def adapt_to_following(self, following: Layer | None) -> None:
        """Resolve ``init="auto"`` once the following layer is known.

        The weights were drawn Glorot-uniform; for a ReLU-like follower they are rescaled to
        He-uniform, which is the same draw times sqrt(fan_in + fan_out) / sqrt(fan_in). Weights
        the user has already overwritten are left as they are.
        """
        draw, self._auto_draw = self._auto_draw, None
        if draw is None or not np.array_equal(draw, to_host(self.W.value)):
            return
        if following is not None and following.relu_like:
            fan_in, fan_out = self.in_features, self.out_features
            self.W.value *= self.W.value.dtype.type(math.sqrt((fan_in + fan_out) / fan_in))

    # --- forward and backward, a facing pair -------------------------------------------------

    def forward(self, x: Array, *, training: bool = False) -> Array:
        """Z = X @ W.T + b. Shapes: X (N, in) -> Z (N, out)."""
        check_input(
            x, layer=f"Dense({self.in_features}, {self.out_features})", in_features=self.in_features
        )
        dtype = self.W.value.dtype
        if x.dtype != dtype:  # compute in the layer's dtype: no silent up-cast
            x = x.astype(dtype)
        Z = self._buffer("Z", (x.shape[0], self.out_features), dtype, x)
        np.matmul(x, self.W.value.T, out=Z)  # (N, out)
        if self.b is not None:
            Z += self.b.value
        self._x = x if training else None
        return Z

    def backward(self, grad_out: Array) -> Array:
        """dW = D.T @ X, db = Σ_n D_n, dX = D @ W. Shapes: D (N, out) -> dX (N, in)."""
        self.backward_params(grad_out)
        dtype = self.W.value.dtype
        D = grad_out.astype(dtype, copy=False)
        dX = self._buffer("dX", (D.shape[0], self.in_features), dtype, D)
        # the seed's Step 3: ∂L/∂a_prev = Wᵀ δ, one row per sample: (N, out) @ (out, in)
        return np.matmul(D, self.W.value, out=dX)  # (N, in)

    def backward_params(self, grad_out: Array) -> None:
        """Set dW and db only (the input gradient of a first layer is never used)."""
        self._require_cache(self._x)
        assert self._x is not None
        D = grad_out.astype(self.W.value.dtype, copy=False)
        if D.shape != (self._x.shape[0], self.out_features):
            raise ShapeError(
                f"Dense({self.in_features}, {self.out_features}).backward: grad_out has shape "
                f"{D.shape}, expected {(self._x.shape[0], self.out_features)}"
            )
        # the seed's Steps 2 and 5: ∂L/∂W = δ a_prevᵀ, summed over the batch's N outer products,
        # and ∂L/∂b = δ, summed over the batch
        np.matmul(D.T, self._x, out=self.W.grad)  # (out, in): Σ_n δ_n x_nᵀ
        if self.b is not None:
            F.sum_over_batch(D, out=self.b.grad)  # (out,): Σ_n δ_n

    # --- the L2 penalty: ½ λ ‖W‖², divided by the loss's normalizer -----------------------------

    def penalty(self) -> float:
        """½ λ ‖W‖² (0 without ``l2``)."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * float(np.vdot(self.W.value, self.W.value))

    def penalty_backward(self, scale: float) -> None:
        """∂/∂W of scale · ½ λ ‖W‖² = scale · λ W, added to dW."""
        if self.l2:
            F.add_scaled(self.W.grad, self.W.value, scale * self.l2)

    # --- the protocol ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Array]:
        tensors = {"weight": self.W.value}
        if self.b is not None:
            tensors["bias"] = self.b.value
        return tensors

    def config(self) -> dict[str, Any]:
        assert self.dtype is not None
        config: dict[str, Any] = {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.has_bias,
            "dtype": self.dtype.name,
        }
        if self.l2:  # only when set, so configurations written without it compare equal
            config["l2"] = self.l2
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        # the weights are loaded from the file right after: any generator will do
        return cls(**config, rng=np.random.default_rng(0))

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        fan_in = check_int("in_features", config.get("in_features"), 1, owner="Dense")
        fan_out = check_int("out_features", config.get("out_features"), 1, owner="Dense")
        shapes: dict[str, tuple[int, ...]] = {"weight": (fan_out, fan_in)}
        if config.get("bias", True):
            shapes["bias"] = (fan_out,)
        return shapes

    def input_features(self) -> int:
        return self.in_features

    def output_features(self, in_features: int) -> int:
        return self.out_features
