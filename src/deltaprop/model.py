"""Sequential: layers composed in order, with all parameters in one flat buffer."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any, overload

import numpy as np

from .backend import Array, as_float_array
from .core import Layer, Parameter, ShapeError, Workspace, flatten_into, reusing
from .layers import Dense


class Sequential(Layer):
    """A chain of layers: ``forward`` runs them in order, ``backward`` in reverse.

    ``Sequential`` is itself a :class:`~deltaprop.core.Layer`, so it nests and gradient checks
    treat it like any other layer. Its parameters are named ``"<index>.<name>"`` (``"0.W"``,
    ``"0.b"``, ``"2.W"``, ...), and their values and gradients live as views into two flat
    contiguous buffers (:attr:`flat_values`, :attr:`flat_grads`) so an optimizer updates the whole
    model in one pass. Layers still see ordinary ``W`` and ``b`` arrays.

    Shapes: X (N, in_features of the first Dense) -> logits (N, out_features of the last).

    Raises:
        ShapeError: if the widths of consecutive Dense layers do not chain (names both layers).
        TypeError: if an element is not a Layer, or Dense layers disagree on dtype.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: element {index} must be a Layer, got {type(layer).__name__}"
                )
        self.layers: list[Layer] = list(layers)
        self._check_widths_chain()
        self.dtype = self._common_dtype()
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                following = self.layers[index + 1] if index + 1 < len(self.layers) else None
                layer.adapt_init(following)
        self._parameters: list[Parameter] = []
        for index, layer in enumerate(self.layers):
            for p in layer.parameters():
                if isinstance(layer, Sequential):
                    p.name = f"{index}.{p.name}"
                else:
                    p.name = f"{index}.{p.name.rsplit('.', 1)[-1]}"
                self._parameters.append(p)
        self.flat_values, self.flat_grads = flatten_into(self._parameters, self.dtype)
        self._share_spans_with_nested()

    def _share_spans_with_nested(self) -> None:
        # flatten_into moved nested models' parameters into this buffer: point them at it
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.flat_values, layer.flat_grads = _shared_span(layer._parameters, self)
                layer._share_spans_with_nested()

    def _check_widths_chain(self) -> None:
        width: int | None = None
        previous: tuple[int, Layer] | None = None
        for index, layer in enumerate(self.layers):
            in_features = _in_features(layer)
            if in_features is not None:
                if width is not None and previous is not None and in_features != width:
                    prev_index, prev_layer = previous
                    raise ShapeError(
                        f"Sequential: layer {prev_index} ({prev_layer!r}) outputs {width} features "
                        f"but layer {index} ({layer!r}) expects {in_features}"
                    )
                width = in_features
            if width is not None:
                width = layer.output_features(width)
            if _in_features(layer) is not None:
                previous = (index, layer)

    def _common_dtype(self) -> np.dtype[Any]:
        dtypes = {layer.dtype for layer in self.layers if isinstance(layer, Dense | Sequential)}
        if len(dtypes) > 1:
            raise TypeError(
                f"Sequential: layers mix dtypes {sorted(d.name for d in dtypes)}; "
                "build every Dense with the same dtype"
            )
        return dtypes.pop() if dtypes else np.dtype(np.float32)

    def __deepcopy__(self, memo: dict[int, Any]) -> Sequential:
        # numpy copies views as independent arrays: rebuild the flat buffers in the copy
        clone = Sequential.__new__(Sequential)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        clone.flat_values, clone.flat_grads = flatten_into(clone._parameters, clone.dtype)
        clone._share_spans_with_nested()
        return clone

    # --- container protocol ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @overload
    def __getitem__(self, index: int) -> Layer: ...

    @overload
    def __getitem__(self, index: slice) -> Sequential: ...

    def __getitem__(self, index: int | slice) -> Layer | Sequential:
        """A layer, or for a slice a new Sequential that *shares* those layers' parameters."""
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError(f"Sequential: slices must be contiguous (step 1), got {index}")
            view = Sequential.__new__(Sequential)
            Layer.__init__(view)
            view.layers = self.layers[index]
            view.dtype = self.dtype
            view._parameters = [p for layer in view.layers for p in layer.parameters()]
            view.flat_values, view.flat_grads = _shared_span(view._parameters, self)
            return view
        return self.layers[index]

    @property
    def in_features(self) -> int | None:
        """Width of the input the first Dense expects (None without Dense layers)."""
        for layer in self.layers:
            width = _in_features(layer)
            if width is not None:
                return width
        return None

    @property
    def out_features(self) -> int | None:
        width = self.in_features
        if width is None:
            return None
        for layer in self.layers:
            width = layer.output_features(width)
        return width

    def output_features(self, in_features: int) -> int:
        for layer in self.layers:
            in_features = layer.output_features(in_features)
        return in_features

    # --- forward and backward, a facing pair ---------------------------------------------

    def forward(self, x: Any, *, training: bool = False) -> Array:
        """Run every layer in order. Shapes: (N, in_features) -> (N, out_features).

        ``x`` is converted to the network's dtype once, here (float64 data into a float32 network
        computes in float32, as the network asks).
        """
        x = self._check_model_input(x)
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad_out: Array) -> Array:
        """Run every layer's backward in reverse; sets every parameter's grad; returns ∂L/∂X."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def backward_params(self, grad_out: Array) -> None:
        """Backward that skips the first layer's input gradient (the training loop's path)."""
        for layer in reversed(self.layers[1:]):
            grad_out = layer.backward(grad_out)
        if self.layers:
            self.layers[0].backward_params(grad_out)

    def predict(self, x: Any, batch_size: int = 2048) -> Array:
        """Logits for ``x``, computed in batches (no caches kept). Shapes: (N, in) -> (N, out).

        Batches reuse one set of intermediate arrays, small enough to stay in cache, and each
        batch's logits are copied into one output array.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        x = self._check_model_input(x)
        if x.shape[0] <= batch_size:
            return self.forward(x)
        out = np.empty((x.shape[0], self.output_features(x.shape[1])), dtype=self.dtype)
        with reusing(*self.workspaces()):
            for start in range(0, x.shape[0], batch_size):
                out[start : start + batch_size] = self.forward(x[start : start + batch_size])
        return out

    def _check_model_input(self, x: Any) -> Array:
        if not isinstance(x, np.ndarray) or x.dtype != self.dtype or x.ndim != 2:
            x = as_float_array(x, self.dtype, name="X")
            if x.ndim != 2:
                raise ShapeError(f"Sequential: X must be 2-D (N, features), got shape {x.shape}")
        width = self.in_features
        if width is not None and x.shape[1] != width:
            raise ShapeError(
                f"Sequential: X has {x.shape[1]} features (shape {x.shape}), "
                f"but the first Dense layer expects {width}"
            )
        return x

    # --- parameters and storage -----------------------------------------------------------

    def parameters(self) -> list[Parameter]:
        return list(self._parameters)

    def workspaces(self) -> list[Workspace]:
        return [ws for layer in self.layers for ws in layer.workspaces()]

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)" if self.layers else "Sequential()"


def _in_features(layer: Layer) -> int | None:
    if isinstance(layer, Dense):
        return layer.in_features
    if isinstance(layer, Sequential):
        return layer.in_features
    return None


def _shared_span(parameters: list[Parameter], parent: Sequential) -> tuple[Array, Array]:
    """The part of the parent's flat buffers that a slice's parameters occupy."""
    if not parameters:
        empty = parent.flat_values[:0]
        return empty, parent.flat_grads[:0]
    start = sum(p.value.size for p in parent._parameters[: parent._parameters.index(parameters[0])])
    size = sum(p.value.size for p in parameters)
    return parent.flat_values[start : start + size], parent.flat_grads[start : start + size]


def layers_of(model: Layer) -> Iterable[Layer]:
    """The layers of a model, or the layer itself if it is not a Sequential."""
    return model.layers if isinstance(model, Sequential) else [model]
