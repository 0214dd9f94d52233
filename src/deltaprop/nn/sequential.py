"""Sequential: layers composed in order, with all parameters in one flat buffer."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Self, overload

import numpy as np
import numpy.typing as npt

from ..backend.arrays import (
    DEFAULT_DTYPE,
    Array,
    Device,
    as_float_array,
    device_of,
    float_dtype,
    is_array,
    moved_to,
    to_host,
)
from ..backend.memory import Workspace, flatten_into, reusing, shared_span
from ..errors import ShapeError
from ..validation import check_int
from .dense_chain import compiled_predictions, forward_rows
from .layer import Layer, Parameter, Reducer, check_free
from .summary import summary


class Sequential(Layer):
    """A chain of layers: ``forward`` runs them in order, ``backward`` in reverse.

    ``Sequential`` is itself a :class:`~deltaprop.nn.layer.Layer`, so it nests and gradient checks
    treat it like any other layer. Its parameters are named ``"<index>.<name>"`` (``"0.W"``,
    ``"0.b"``, ``"2.W"``, ...), and their values and gradients live as views into two flat
    contiguous buffers (:attr:`flat_values`, :attr:`flat_grads`) so an optimizer updates the whole
    model in one pass. Layers still see ordinary ``W`` and ``b`` arrays.

    Shapes: X (N, input_features()) -> logits (N, output width of the last layer).

    Raises:
        ShapeError: if the widths of consecutive layers do not chain (names both layers).
        TypeError: if an element is not a Layer, or the layers' parameters mix dtypes.
    """

    dtype: np.dtype[Any]  # of every parameter; float32 for a model without parameters

    def __init__(self, *layers: Layer, device: Any = None) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        check_free(layers)
        self.layers: list[Layer] = list(layers)
        self.training = False  # the mode net(X) computes in; see train() and eval()
        self._check_widths_chain()
        for index, layer in enumerate(self.layers):
            layer.adapt_to_following(
                self.layers[index + 1] if index + 1 < len(self.layers) else None
            )
        self._parameters: list[Parameter] = []
        for name, p in self.named_parameters():
            p.name = name
            self._parameters.append(p)
        self.dtype = self._common_dtype()
        self.flat_values, self.flat_grads = flatten_into(self._parameters, self.dtype)
        self._share_spans_with_nested()
        self._claim_layers()
        if device is not None:
            self.to(device)

    @property
    def device(self) -> Device:
        """Where the parameters live (and the model computes): the CPU, or a GPU."""
        return device_of(self.flat_values)

    def to(self, device: Any) -> Self:
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``) in place, as
        PyTorch's ``Module.to``, and return it. Inputs follow it there (``fit`` copies the data
        once); ``dp.predict`` returns NumPy. Build the optimizer after the move.

        Raises:
            DeviceUnavailableError: for a GPU without CuPy or a CUDA device (what to install).
        """
        for layer in self.layers:
            layer.to(device)
        self._reflatten()
        return self

    def _claim_layers(self) -> None:
        for layer in self.layers:
            layer._owner = weakref.ref(self)

    def _share_spans_with_nested(self) -> None:
        # flatten_into moved nested models' parameters into this buffer: point them at it
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.flat_values, layer.flat_grads = self._span_of(layer._parameters)
                layer._share_spans_with_nested()

    def _check_widths_chain(self) -> None:
        width: int | None = None
        previous: tuple[int, Layer] | None = None
        for index, layer in enumerate(self.layers):
            in_features = layer.input_features()
            if in_features is not None:
                if width is not None and previous is not None and in_features != width:
                    prev_index, prev_layer = previous
                    raise ShapeError(
                        f"Sequential: layer {prev_index} ({prev_layer!r}) outputs {width} features "
                        f"but layer {index} ({layer!r}) expects {in_features}"
                    )
                width = in_features
                previous = (index, layer)
            if width is not None:
                width = layer.output_features(width)

    def _common_dtype(self) -> np.dtype[Any]:
        dtypes = {p.value.dtype for p in self._parameters}
        if len(dtypes) > 1:
            raise TypeError(
                f"Sequential: layers mix dtypes {sorted(d.name for d in dtypes)}; "
                "build every layer with the same dtype"
            )
        return dtypes.pop() if dtypes else DEFAULT_DTYPE

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # numpy copies views as independent arrays: rebuild the flat buffers in the copy
        clone = super().__deepcopy__(memo)
        clone._reflatten()
        return clone

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled parameters are separate arrays: put them back into one flat buffer
        self.__dict__.update(state)
        self._reflatten()
        self._claim_layers()

    def _span_of(self, parameters: list[Parameter]) -> tuple[Array, Array]:
        return shared_span(parameters, self._parameters, self.flat_values, self.flat_grads)

    def _reflatten(self) -> None:
        self.flat_values, self.flat_grads = flatten_into(self._parameters, self.dtype)
        self._share_spans_with_nested()

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
        """A layer, or for a slice a new Sequential that *shares* those layers' parameters.

        Raises:
            ValueError: for a slice with a step other than 1 (its parameters would not be one
                contiguous span of this model's flat buffers).
        """
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError(
                    f"Sequential: slices must be contiguous (step 1), got {index}; to compose "
                    "other layers into a new model, build it from fresh layers"
                )
            view = Sequential.__new__(Sequential)
            Layer.__init__(view)
            view.layers = self.layers[index]
            view.dtype = self.dtype
            view._parameters = [p for layer in view.layers for p in layer.parameters()]
            view.flat_values, view.flat_grads = self._span_of(view._parameters)
            return view
        return self.layers[index]

    # --- forward and backward, a facing pair ---------------------------------------------

    def __call__(self, x: Any) -> Array:
        """``net(X)``, as in PyTorch: :meth:`forward` in the mode :meth:`train` and
        :meth:`eval` set (evaluation until ``train()`` is called: dropout off)."""
        return self.forward(x, training=self.training)

    def train(self, mode: bool = True) -> Self:
        """Make ``net(X)`` compute as in training (dropout's mask, batch statistics); returns
        the model. ``fit`` sets its own mode and does not read this."""
        self.training = bool(mode)
        return self

    def eval(self) -> Self:
        """Make ``net(X)`` compute as in evaluation, as ``train(False)``; returns the model."""
        return self.train(False)

    def summary(self, input_features: int | None = None) -> None:
        """Print :func:`deltaprop.summary`'s table of this model, as Keras' ``model.summary()``."""
        print(summary(self, input_features))

    def forward(self, x: Any, *, training: bool = False) -> Array:
        """Run every layer in order. Shapes: (N, input_features()) -> (N, out).

        ``x`` is converted to the network's dtype once, here (float64 data into a float32 network
        computes in float32, as the network asks).
        """
        x = moved_to(self.as_input(x), self.flat_values)
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

    def predict_logits(self, x: Any, batch_size: int = 2048, *, engine: str = "auto") -> Array:
        """The last layer's output for ``x`` (logits, before the loss's output activation),
        in batches with no caches kept, as a NumPy array wherever the model is; the array is
        the caller's. Shapes: (N, in) -> (N, out).

        ``engine``: ``"auto"`` runs a CPU model of Dense, ReLU and Identity layers through the
        compiled kernel of :mod:`deltaprop.nn.dense_chain` (each thread takes its share of
        the rows through every layer, ``batch_size`` at a time) when the call is large enough
        to gain from it; ``"compiled"`` insists (ValueError where it cannot); ``"reference"``
        runs each layer's ``forward`` on batches of ``batch_size`` rows. The same numbers to
        float rounding. Threads may call this on one model at once (not while it trains).
        """
        batch_size = check_int("batch_size", batch_size, 1)
        x = self.as_input(x)
        work = x.shape[0] * self.flat_values.size
        if compiled_predictions(engine, self.layers, self.device.name, work):
            return forward_rows(self.layers, self.flat_values, x, batch_size)
        out = np.empty((x.shape[0], self.output_features(x.shape[1])), dtype=self.dtype)
        with reusing(*self.workspaces()):
            for start in range(0, x.shape[0], batch_size):
                logits = self.forward(x[start : start + batch_size])
                out[start : start + batch_size] = to_host(logits)
        return out

    def as_input(self, x: Any, *, name: str = "X") -> Array:
        """``x`` as a 2-D array of the model's dtype (converted once, here) and input width.

        Raises:
            TypeError: for values that are not real numbers.
            ShapeError: for another number of dimensions or another width.
        """
        if not is_array(x) or x.dtype != self.dtype or x.ndim != 2:
            x = as_float_array(to_host(x), self.dtype, name=name)
            if x.ndim != 2:
                raise ShapeError(f"{name} must be 2-D (n_samples, n_features), got shape {x.shape}")
        width = self.input_features()
        if width is not None and x.shape[1] != width:
            raise ShapeError(
                f"{name} has {x.shape[1]} features (shape {x.shape}), "
                f"but the model's first layer expects {width}"
            )
        return x

    # --- the Layer protocol, asked of every layer inside -----------------------------------

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [
            (f"{index}.{name}", p)
            for index, layer in enumerate(self.layers)
            for name, p in layer.named_parameters()
        ]

    def parameters(self) -> list[Parameter]:
        return list(self._parameters)

    def state_dict(self) -> dict[str, Array]:
        """The tensors of every layer under ``"<index>.<name>"``, as PyTorch's ``nn.Sequential``."""
        return {
            f"{index}.{name}": tensor
            for index, layer in enumerate(self.layers)
            for name, tensor in layer.state_dict().items()
        }

    def state_errors(self, state: Mapping[str, Array]) -> list[str]:
        by_layer: dict[str, dict[str, Array]] = {}
        for key, tensor in state.items():
            position, _, name = key.partition(".")
            by_layer.setdefault(position, {})[name] = tensor
        errors = []
        for index, layer in enumerate(self.layers):
            own = by_layer.get(str(index), {})
            errors += [f"{index}.{error}" for error in layer.state_errors(own)]
        return errors

    def buffers(self) -> dict[str, Array]:
        return {
            f"{index}.{name}": tensor
            for index, layer in enumerate(self.layers)
            for name, tensor in layer.buffers().items()
        }

    def snapshot(self, into: list[Array] | None = None) -> list[Array]:
        """Copies of everything that defines the model's function: the flat parameters, then
        each buffer (running statistics). :meth:`restore` puts them back.

        Args:
            into: an earlier snapshot of this model to overwrite (no new storage), or None.
        """
        current = [self.flat_values, *self.buffers().values()]
        if into is None:
            return [array.copy() for array in current]
        for target, array in zip(into, current, strict=True):
            np.copyto(target, array)
        return into

    def restore(self, snapshot: list[Array]) -> None:
        """Put back what :meth:`snapshot` copied, in place."""
        np.copyto(self.flat_values, snapshot[0])
        for target, saved in zip(self.buffers().values(), snapshot[1:], strict=True):
            np.copyto(target, saved)

    def astype(self, dtype: npt.DTypeLike) -> Self:
        dtype = float_dtype(dtype)
        for layer in self.layers:
            layer.astype(dtype)
        self.dtype = dtype
        self._reflatten()
        return self

    def config(self) -> dict[str, Any]:
        return {"layers": list(self.layers)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(*config["layers"])

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return {
            f"{index}.{name}": shape
            for index, shapes in enumerate(config["layers"])
            for name, shape in shapes.items()
        }

    def input_features(self) -> int | None:
        """Width of the input the first width-bound layer expects (None if no layer has one)."""
        for layer in self.layers:
            width = layer.input_features()
            if width is not None:
                return width
        return None

    def output_features(self, in_features: int) -> int:
        for layer in self.layers:
            in_features = layer.output_features(in_features)
        return in_features

    def penalty(self) -> float:
        return sum(layer.penalty() for layer in self.layers)

    def penalty_backward(self, scale: float) -> None:
        for layer in self.layers:
            layer.penalty_backward(scale)

    def differs_in_training(self) -> bool:
        return any(layer.differs_in_training() for layer in self.layers)

    def min_training_rows(self) -> int:
        return max((layer.min_training_rows() for layer in self.layers), default=1)

    def offer_rng(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.offer_rng(rng)

    def data_parallel_refusal(self) -> str | None:
        return next(filter(None, (layer.data_parallel_refusal() for layer in self.layers)), None)

    def share_batch(self, start: int, total: int, sum_: Reducer | None = None) -> None:
        for layer in self.layers:
            layer.share_batch(start, total, sum_)

    def generators(self) -> list[np.random.Generator]:
        found: list[np.random.Generator] = []
        for layer in self.layers:
            found += [g for g in layer.generators() if all(g is not f for f in found)]
        return found

    def workspaces(self) -> list[Workspace]:
        return [ws for layer in self.layers for ws in layer.workspaces()]

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)" if self.layers else "Sequential()"
