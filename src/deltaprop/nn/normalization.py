"""Normalization layers: batch normalization and layer normalization, with explicit backward.

Both normalize, then scale and shift with learnable γ (``weight``) and β (``bias``):
``y = γ ⊙ x̂ + β`` with ``x̂ = (x − μ) / √(σ² + ε)``. They differ in what μ and σ² are taken over:
the batch, per feature (BatchNorm), or the features, per row (LayerNorm). Tensor names and
conventions follow PyTorch's ``BatchNorm1d`` and ``LayerNorm``, so a model file loads into the
equivalent ``torch.nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ..backend.arrays import Array, float_dtype, moved_to
from ..validation import check_input, check_int, check_number, check_positive
from .layer import Layer, Parameter, Reducer


def _normalized_backward(g_hat: Array, x_hat: Array, inv_std: Array, axis: int) -> Array:
    """∂L/∂x from ∂L/∂x̂ for x̂ = (x − μ)/σ with μ and σ taken over ``axis`` (M values each).

    μ and σ² depend on every x along the axis, so besides the direct path g_hat / σ there are
    two more: through μ (−mean(g_hat)/σ) and through σ² (−x̂ mean(g_hat ⊙ x̂)/σ). Together:
    ``∂L/∂x = (g_hat − mean(g_hat) − x̂ · mean(g_hat ⊙ x̂)) / σ``.
    """
    mean_g = np.mean(g_hat, axis=axis, keepdims=True)
    mean_gx = np.mean(g_hat * x_hat, axis=axis, keepdims=True)
    return (g_hat - mean_g - x_hat * mean_gx) * inv_std


class BatchNorm(Layer):
    """Batch normalization over the batch, per feature (PyTorch's ``BatchNorm1d``).

    Training: μ_j and σ²_j are the batch's mean and (biased) variance of feature j, and the
    running statistics move towards them, ``running ← (1 − momentum) running + momentum batch``
    (the variance unbiased, × N/(N − 1), as PyTorch). Evaluation: the running statistics are used,
    so a prediction does not depend on the other rows of its batch.

    Backward (training), with g = ∂L/∂y, per feature (σ = √(σ² + ε)):

        y = γ x̂ + β            ∂L/∂γ = Σ_n g_n x̂_n,  ∂L/∂β = Σ_n g_n,  ĝ = ∂L/∂x̂ = g γ
        x̂_n = (x_n − μ) / σ    ∂L/∂σ² = −½ Σ_n ĝ_n (x_n − μ) / σ³,  ∂L/∂μ = −Σ_n ĝ_n / σ
        μ, σ² over the batch   ∂L/∂x_n = ĝ_n / σ + ∂L/∂μ / N + ∂L/∂σ² · 2 (x_n − μ) / N
                                       = (ĝ_n − mean ĝ − x̂_n mean(ĝ x̂)) / σ

    (the ∂L/∂μ term through σ² is 0: Σ_n (x_n − μ) = 0). Treating μ and σ² as constants would
    keep only ĝ / σ.

    Args:
        num_features: the input width F.
        momentum: in [0, 1], PyTorch's meaning (the weight of the new batch).
        eps: added to the variance, > 0.
        dtype: float32 (default) or float64.

    Tensors: ``weight`` (γ, ones), ``bias`` (β, zeros), ``running_mean`` (zeros),
    ``running_var`` (ones), ``num_batches_tracked``. Shapes: (N, F) -> (N, F).

    A bias in the layer before is redundant (subtracting the batch mean removes it; its gradient
    is exactly 0), so ``Dense(..., bias=False)`` is the usual companion, as in PyTorch.

    Raises:
        ValueError: a training batch of one row (its variance says nothing).
    """

    positional_config = ("num_features",)

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.1,
        eps: float = 1e-5,
        *,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features, 1, owner="BatchNorm")
        self.momentum = check_number("momentum", momentum, owner="BatchNorm", low=0, high=1)
        self.eps = check_positive("eps", eps, owner="BatchNorm")
        self.dtype = float_dtype(dtype)
        self.weight = Parameter(np.ones(self.num_features, self.dtype), "weight")
        self.bias = Parameter(np.zeros(self.num_features, self.dtype), "bias")
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self.num_batches_tracked = np.zeros((), np.int64)
        self._x_hat: Array | None = None  # the normalized input, (N, F)
        self._inv_std: Array | None = None  # 1 / √(σ² + ε), (1, F)
        self._total = 0  # a data-parallel batch's rows on every rank (0: the batch is here)
        self._sum: Reducer | None = None  # sums an array over the ranks, then

    def forward(self, x: Array, *, training: bool = False) -> Array:
        name = f"BatchNorm({self.num_features})"
        check_input(x, layer=name, in_features=self.num_features)
        x = x.astype(self.dtype, copy=False)
        if not training:
            self._x_hat = self._inv_std = None
            inv_std = 1.0 / np.sqrt(self.running_var + x.dtype.type(self.eps))
            return (x - self.running_mean) * (inv_std * self.weight.value) + self.bias.value
        n = self._total or x.shape[0]  # the batch's rows, on every rank of a data-parallel run
        if n < 2:
            raise ValueError(
                f"{name}: a training batch needs at least 2 rows to have a variance, got {n} "
                "(choose a batch size that leaves no last batch of 1 row)"
            )
        mean = self._batch_mean(x)  # (1, F)
        centered = x - mean
        var = self._batch_mean(centered * centered)  # biased, (1, F)
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centered * inv_std
        m = x.dtype.type(self.momentum)
        self.running_mean *= 1 - m
        self.running_mean += m * mean[0]
        self.running_var *= 1 - m
        self.running_var += m * var[0] * x.dtype.type(n / (n - 1))  # unbiased, as PyTorch
        self.num_batches_tracked += 1
        self._x_hat, self._inv_std = x_hat, inv_std
        return x_hat * self.weight.value + self.bias.value

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._x_hat, grad_out)
        assert self._x_hat is not None and self._inv_std is not None
        self.weight.grad[...] = np.sum(grad_out * self._x_hat, axis=0)  # ∂L/∂γ = Σ g ⊙ x̂
        self.bias.grad[...] = np.sum(grad_out, axis=0)  # ∂L/∂β = Σ g
        g_hat = grad_out * self.weight.value  # ∂L/∂x̂ = g ⊙ γ
        if self._sum is None:
            return _normalized_backward(g_hat, self._x_hat, self._inv_std, axis=0)
        # data-parallel: this rank's loss is the mean over its n_r rows, the batch's over all N;
        # its rows' ∂L/∂x̂ in the batch's units is g_hat · n_r / N, and the means over all rows
        # are sums over the ranks
        scale = grad_out.dtype.type(grad_out.shape[0] / self._total)
        mean_g = self._batch_mean(g_hat * scale)
        mean_gx = self._batch_mean(g_hat * scale * self._x_hat)
        return (g_hat - (mean_g + self._x_hat * mean_gx) / scale) * self._inv_std

    def _batch_mean(self, values: Array) -> Array:
        """The mean over the batch's rows, shape (1, F): over every rank's rows in a
        data-parallel run (their sums summed, over N), else over these."""
        if self._sum is None:
            return np.mean(values, axis=0, keepdims=True)
        total = np.ascontiguousarray(np.sum(values, axis=0, keepdims=True, dtype=np.float64))
        return (self._sum(total) / self._total).astype(values.dtype)

    def share_batch(self, start: int, total: int, sum_: Reducer | None = None) -> None:
        self._total, self._sum = (total, sum_) if total else (0, None)

    def data_parallel_refusal(self) -> str | None:
        return None  # its statistics are summed over the ranks (share_batch)

    # --- the protocol: buffers beside the parameters -----------------------------------------

    def state_dict(self) -> dict[str, Array]:
        return {
            "weight": self.weight.value,
            "bias": self.bias.value,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
            "num_batches_tracked": self.num_batches_tracked,
        }

    def buffers(self) -> dict[str, Array]:
        return {
            "running_mean": self.running_mean,
            "running_var": self.running_var,
            "num_batches_tracked": self.num_batches_tracked,
        }

    def state_errors(self, state: Mapping[str, Array]) -> list[str]:
        errors = []
        for name in ("running_var", "num_batches_tracked"):
            negative = int(np.count_nonzero(np.asarray(state[name]) < 0))
            if negative:
                errors.append(f"{name} holds {negative} negative values (it must be >= 0)")
        return errors

    def astype(self, dtype: npt.DTypeLike) -> Self:
        super().astype(dtype)
        self.running_mean = self.running_mean.astype(self.dtype)
        self.running_var = self.running_var.astype(self.dtype)
        return self

    def to(self, device: Any) -> Self:
        super().to(device)
        self.running_mean = moved_to(self.running_mean, self.weight.value)
        self.running_var = moved_to(self.running_var, self.weight.value)
        self.num_batches_tracked = moved_to(self.num_batches_tracked, self.weight.value)
        return self

    def config(self) -> dict[str, Any]:
        assert self.dtype is not None
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
            "dtype": self.dtype.name,
        }

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        f = check_int("num_features", config.get("num_features"), 1, owner="BatchNorm")
        shapes = ("weight", "bias", "running_mean", "running_var")
        return {**{name: (f,) for name in shapes}, "num_batches_tracked": ()}

    def input_features(self) -> int:
        return self.num_features

    def differs_in_training(self) -> bool:
        return True

    def min_training_rows(self) -> int:
        return 2


class LayerNorm(Layer):
    """Layer normalization over the features, per row (PyTorch's ``LayerNorm(num_features)``).

    μ_n and σ²_n are row n's mean and (biased) variance over its F features, the same in
    training and evaluation. Backward, with g = ∂L/∂y and ĝ = g ⊙ γ: ``∂L/∂γ = Σ_n g ⊙ x̂``,
    ``∂L/∂β = Σ_n g``, ``∂L/∂x = (ĝ − mean_j ĝ − x̂ mean_j(ĝ ⊙ x̂)) / √(σ² + ε)`` row by row.

    Tensors: ``weight`` (γ, ones), ``bias`` (β, zeros). Shapes: (N, F) -> (N, F).
    """

    positional_config = ("num_features",)

    def __init__(
        self, num_features: int, eps: float = 1e-5, *, dtype: npt.DTypeLike = np.float32
    ) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features, 1, owner="LayerNorm")
        self.eps = check_positive("eps", eps, owner="LayerNorm")
        self.dtype = float_dtype(dtype)
        self.weight = Parameter(np.ones(self.num_features, self.dtype), "weight")
        self.bias = Parameter(np.zeros(self.num_features, self.dtype), "bias")
        self._x_hat: Array | None = None
        self._inv_std: Array | None = None  # (N, 1)

    def forward(self, x: Array, *, training: bool = False) -> Array:
        check_input(x, layer=f"LayerNorm({self.num_features})", in_features=self.num_features)
        x = x.astype(self.dtype, copy=False)
        centered = x - np.mean(x, axis=1, keepdims=True)
        var = np.mean(centered * centered, axis=1, keepdims=True)  # (N, 1)
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centered * inv_std
        self._x_hat, self._inv_std = (x_hat, inv_std) if training else (None, None)
        return x_hat * self.weight.value + self.bias.value

    def backward(self, grad_out: Array) -> Array:
        self._require_cache(self._x_hat, grad_out)
        assert self._x_hat is not None and self._inv_std is not None
        self.weight.grad[...] = np.sum(grad_out * self._x_hat, axis=0)
        self.bias.grad[...] = np.sum(grad_out, axis=0)
        g_hat = grad_out * self.weight.value
        return _normalized_backward(g_hat, self._x_hat, self._inv_std, axis=1)

    def config(self) -> dict[str, Any]:
        assert self.dtype is not None
        return {"num_features": self.num_features, "eps": self.eps, "dtype": self.dtype.name}

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        f = check_int("num_features", config.get("num_features"), 1, owner="LayerNorm")
        return {"weight": (f,), "bias": (f,)}

    def input_features(self) -> int:
        return self.num_features
