"""The contracts: :class:`Parameter` and the :class:`Layer` protocol.

- A :class:`Parameter` holds ``value`` (updated in place by optimizers), ``grad`` (same shape,
  always an array) and ``name``.
- A :class:`Layer` caches in ``forward(x, training=True)`` exactly what ``backward`` needs;
  ``backward(grad_out)`` *sets* each parameter's ``grad`` and returns the gradient for its input.
  A layer never divides by N (the loss owns the batch mean) and never updates itself.
- Everything a caller needs to know about a layer it asks the layer — its configuration, its
  tensors' names, its dtype, its widths, how it behaves in training, what it needs from ``fit`` —
  never ``isinstance``. Adding a layer type is one class and a registry entry
  (:mod:`deltaprop.registry`).
"""

from __future__ import annotations

import copy
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from ..backend.arrays import Array, copy_into, float_dtype, moved_to, to_host
from ..backend.devices import resolve_device
from ..backend.memory import Workspace
from ..errors import ForwardNotCalledError, ShapeError
from .formula_text import ActivationFormula

Reducer = Callable[[Array], Array]
"""``sum_(array)``: the array summed over the ranks of a data-parallel run, in place."""


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        value: the array the optimizer updates in place. Shape as created.
        grad: ∂L/∂value, same shape and dtype; set (not accumulated) by ``Layer.backward``.
        name: stable name, e.g. ``"0.W"`` inside a Sequential.
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value: Array, name: str) -> None:
        self.value: Array = value
        self.grad: Array = np.zeros_like(value)
        self.name: str = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.value.dtype})"


def format_call(name: str, config: Mapping[str, Any], positional: Sequence[str] = ()) -> str:
    """``Dense(4, 8, bias=True, dtype='float32')``: a constructor call from a configuration.

    The ``positional`` keys come first, as bare values; the rest as ``key=value``.
    """
    args = [repr(config[key]) for key in positional if key in config]
    args += [f"{key}={value!r}" for key, value in config.items() if key not in positional]
    return f"{name}({', '.join(args)})"


class Layer(ABC):
    """A differentiable function of a batch, with optional parameters.

    Subclasses implement :meth:`forward` and :meth:`backward` as a facing pair, and override the
    protocol methods below where the defaults do not fit. The defaults suit a parameter-free,
    deterministic, width-preserving layer (an activation).

    Class attributes:
        relu_like: the layer passes positive inputs and flattens negative ones (ReLU, GELU, ...):
            a Dense layer before it starts with He initialization (``init="auto"``), and
            :class:`~deltaprop.Diagnostics` reports the fraction of its units whose gate
            1[z > 0] never opens.
        positional_config: configuration keys shown as bare values in ``repr``.
        formula: for an element-wise layer a = f(z), its symbol and local derivative f'(z) as
            text and TeX (``dp.explain`` shows them); None for any other layer.
        affine: the layer computes the seed's z = W a_prev + b with parameters named ``W`` and
            ``b`` (``dp.explain`` then writes its gradients as δ a_prevᵀ and Wᵀ δ).
        compiled_as: how the compiled kernels (:mod:`deltaprop.backend.cpu_kernels`) run the
            layer: ``"dense"`` (z = a_prev Wᵀ + b), ``"relu"`` (the gate, applied as the
            product is read), ``"identity"`` (nothing); None for a layer they cannot run.
    """

    relu_like: ClassVar[bool] = False
    positional_config: ClassVar[tuple[str, ...]] = ()
    formula: ClassVar[ActivationFormula | None] = None
    affine: ClassVar[bool] = False
    compiled_as: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.workspace = Workspace()
        self.dtype: np.dtype[Any] | None = None  # of the parameters; None without any
        # the Sequential this layer belongs to (a layer is part of one model at most)
        self._owner: weakref.ref[Layer] | None = None

    @property
    def owner(self) -> Layer | None:
        """The model (Sequential) this layer is part of, if any."""
        return None if self._owner is None else self._owner()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # a copy belongs to the copy of its owner, if that is being copied too, else to no one
        cls = type(self)
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key != "_owner":
                setattr(clone, key, copy.deepcopy(value, memo))
        owner = self.owner
        clone._owner = weakref.ref(memo[id(owner)]) if id(owner) in memo else None
        return clone

    def __getstate__(self) -> dict[str, Any]:
        # pickled without its owner: unpickling the owner claims it again
        return {**self.__dict__, "_owner": None}

    # --- forward and backward, a facing pair -------------------------------------------------

    @abstractmethod
    def forward(self, x: Array, *, training: bool = False) -> Array:
        """Compute the layer's output; with ``training=True`` cache what backward needs."""

    @abstractmethod
    def backward(self, grad_out: Array) -> Array:
        """Given ∂L/∂output, set each parameter's grad and return ∂L/∂input."""

    def backward_params(self, grad_out: Array) -> None:
        """Like :meth:`backward` but the input gradient is not needed (first layer of a model).

        Layers whose input gradient costs real work (Dense: a matrix product) override this.
        """
        self.backward(grad_out)

    # --- parameters and tensors ----------------------------------------------------------------

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(local name, parameter)`` pairs in a stable order.

        By default the layer's :class:`Parameter` attributes, in the order ``__init__`` set them
        (``W`` then ``b``); containers prefix their children's names (``"0.W"``).
        """
        return [(key, value) for key, value in vars(self).items() if isinstance(value, Parameter)]

    def parameters(self) -> list[Parameter]:
        """The layer's trainable parameters, in a stable order."""
        return [p for _, p in self.named_parameters()]

    def state_dict(self) -> dict[str, Array]:
        """Every tensor a model file holds for this layer, by state-dict name.

        Parameters' values, and buffers such as running statistics — the arrays themselves, not
        copies: saving reads them, loading writes into them in place. Names follow PyTorch's
        modules where one exists (Dense: ``"weight"``, ``"bias"``), so files load into the
        equivalent ``torch.nn.Sequential``. The default: each parameter under its local name.
        """
        return {name: p.value for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy ``state`` (arrays by :meth:`state_dict`'s names, as PyTorch's and a model file's)
        into the layer's tensors, in place — after checking every one: the same names, shapes
        and finite values, and what :meth:`state_errors` asks; nothing is copied on an error.

        Raises:
            KeyError: naming the missing and unexpected keys.
            ShapeError: naming a tensor of another shape.
            ValueError: for non-finite values, or a state the layer refuses.
        """
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {name: np.asarray(to_host(state[name])) for name in own}
        for name, target in own.items():
            if arrays[name].shape != target.shape:
                raise ShapeError(
                    f"load_state_dict: {name!r} has shape {arrays[name].shape}, the layer's "
                    f"{tuple(target.shape)}"
                )
            if not np.isfinite(arrays[name]).all():
                raise ValueError(f"load_state_dict: {name!r} holds NaN or inf values")
        errors = self.state_errors(arrays)
        if errors:
            raise ValueError(f"load_state_dict: {errors[0]}")
        for name, target in own.items():
            copy_into(target, arrays[name].astype(target.dtype, copy=False))

    def buffers(self) -> dict[str, Array]:
        """Tensors that are state but not trained (BatchNorm's running statistics), by name.

        They are in :meth:`state_dict` too; callers that snapshot a model (early stopping, the
        rollback after a blow-up) keep them with the parameters. The default: none.
        """
        return {}

    def astype(self, dtype: npt.DTypeLike) -> Self:
        """Convert parameters (and buffers) to float32 or float64, in place; returns the layer.

        The parameters become new arrays: an optimizer built before must be built again.
        """
        dtype = float_dtype(dtype)
        for p in self.parameters():
            p.value = p.value.astype(dtype)
            p.grad = np.zeros_like(p.value)
        if self.dtype is not None:
            self.dtype = dtype
        return self

    def to(self, device: Any) -> Self:
        """Move the parameters (and buffers) to ``device`` (``"cpu"``, ``"cuda"``,
        ``"cuda:1"`` or a :class:`~deltaprop.backend.arrays.Device`), in place; returns the layer.

        The parameters become new arrays: an optimizer built before must be built again.

        Raises:
            DeviceUnavailableError: for a GPU without CuPy or a CUDA device.
        """
        target = resolve_device(device)
        for p in self.parameters():
            p.value = target.asarray(p.value)
            p.grad = target.xp.zeros_like(p.value)
        return self

    # --- penalties ---------------------------------------------------------------------------

    def penalty(self) -> float:
        """The layer's regularization term, before the loss's normalizer: ½ Σ λ‖θ‖² over its
        penalized parameters (Dense with ``l2``); 0 by default."""
        return 0.0

    def penalty_backward(self, scale: float) -> None:
        """Add ``scale`` × ∂penalty/∂θ (scale · λ θ) to the penalized parameters' grads, after
        :meth:`backward`; ``scale`` is 1 / the loss's normalizer. Nothing by default."""
        return None

    # --- configuration -------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The constructor arguments that define the function (JSON-able; for files and repr).

        Not the weights, and not how they were first drawn (``rng``, ``init``). Layers inside
        a container appear as Layer objects; the registry writes them as nested configurations.
        """
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Build the layer from :meth:`config` (its weights are then loaded or drawn anew)."""
        return cls(**config)

    @classmethod
    def state_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[int, ...]] | None:
        """The names and shapes :meth:`state_dict` will have for ``config``, found without
        building the layer (layers inside a container arrive as their own shape tables).

        A model file is checked against these before anything is allocated, so a file whose
        description claims a huge layer costs nothing. None (the default) means "build the
        layer to find out": fine for layers whose size does not depend on their arguments.
        """
        return None

    # --- widths and composition ----------------------------------------------------------------

    def input_features(self) -> int | None:
        """The input width this layer requires, or None if it takes any width."""
        return None

    def output_features(self, in_features: int) -> int:
        """Width of the output for an input of width ``in_features`` (activations keep it)."""
        return in_features

    def adapt_to_following(self, following: Layer | None) -> None:
        """Called by Sequential with the layer that follows this one (None at the end).

        Dense uses it to resolve ``init="auto"``; the default does nothing.
        """
        return None

    # --- training behaviour --------------------------------------------------------------------

    def state_errors(self, state: Mapping[str, Array]) -> list[str]:
        """What makes ``state`` (finite tensors under :meth:`state_dict`'s names and shapes)
        wrong for this layer — a variance below 0, say; ``[]`` when it may be loaded. Model files
        and checkpoints ask before they load anything."""
        return []

    def compiled_epoch_refusal(self) -> str | None:
        """Why the compiled training epoch cannot train this layer, which the compiled kernels
        run (see :attr:`compiled_as`); None when it can."""
        return None

    def differs_in_training(self) -> bool:
        """Whether ``forward(x, training=True)`` computes something other than evaluation does
        (dropout's random mask, batch statistics). Gradient checks then differentiate the training
        function, with its randomness held fixed (see :meth:`generators`).
        """
        return False

    def data_parallel_refusal(self) -> str | None:
        """Why data-parallel training (each rank a share of every batch) would not compute
        what one process computes on the whole batch; None when it would. The default: a layer
        whose training differs from evaluation is refused unless it says otherwise."""
        if self.differs_in_training():
            return (
                f"{type(self).__name__} computes with the whole batch in training, which the "
                "ranks' shares would not reproduce"
            )
        return None

    def share_batch(self, start: int, total: int, sum_: Reducer | None = None) -> None:
        """Data-parallel ``fit``: the coming training forward's rows are rows ``start``, ... of
        a batch of ``total`` rows whose other rows other ranks compute (``total`` 0: the whole
        batch is here again); ``sum_(array)`` sums an array over the ranks, in place. A layer
        that draws per row (dropout) draws for the whole batch and keeps its rows; one that
        takes statistics of the batch (batch normalization) sums them over the ranks, so the
        ranks reproduce one process. The default needs nothing."""
        return None

    def min_training_rows(self) -> int:
        """The fewest rows a training batch may have (2 for batch statistics); ``fit`` refuses a
        batch size that would leave a smaller last batch, before any training."""
        return 1

    def offer_rng(self, rng: np.random.Generator) -> None:
        """What the layer needs from ``fit``: fit offers its generator before training, and a
        layer that draws random numbers in training (dropout) and was given none keeps it.
        The default needs nothing."""
        return None

    def generators(self) -> list[np.random.Generator]:
        """The generators the layer draws from in training; gradient checks restore their
        states before every evaluation, so the randomness is the same each time."""
        return []

    # --- storage -------------------------------------------------------------------------------

    def workspaces(self) -> list[Workspace]:
        """The storage of this layer (and of any layers inside it)."""
        return [self.workspace]

    def _buffer(
        self, key: str, shape: tuple[int, ...], dtype: npt.DTypeLike, like: Array | None = None
    ) -> Array:
        return self.workspace.get(key, shape, dtype, like)

    def _require_cache(self, cache: Any, grad_out: Array | None = None) -> None:
        """Refuse a backward without a training forward before it, or (given the cached array
        and ``grad_out``) a gradient whose shape is not that of the cached output."""
        if cache is None:
            raise ForwardNotCalledError(
                f"{type(self).__name__}.backward called before forward(x, training=True); "
                "run a training forward pass first"
            )
        if grad_out is not None and grad_out.shape != cache.shape:
            raise ShapeError(
                f"{type(self).__name__}.backward: grad_out has shape {grad_out.shape}, expected "
                f"{cache.shape} (the shape of the last training forward's output)"
            )

    def __repr__(self) -> str:
        return format_call(type(self).__name__, self.config(), self.positional_config)


def on_its_device(layer: Layer, x: Array) -> Array:
    """``x`` on the device of the layer's parameters (as it is, for a layer without any)."""
    parameters = layer.parameters()
    return moved_to(x, parameters[0].value) if parameters else x


def check_free(layers: Sequence[Any]) -> None:
    """Refuse anything but a Layer, a layer already part of a model, or one given twice, in one
    pass (linear in the layers). A layer's parameters live in its model's flat buffer and its
    caches hold one forward pass: in two places, one model would keep stale weights."""
    seen: dict[int, int] = {}
    for index, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential: element {index} must be a Layer, got {type(layer).__name__}"
            )
        earlier = seen.setdefault(id(layer), index)
        if earlier == index and layer.owner is None:
            continue
        shown = f"layer {index} ({' '.join(repr(layer).split())})"  # one line, also a Sequential
        if earlier != index:
            raise ValueError(
                f"Sequential: {shown} is the same object as layer {earlier}; a layer can "
                "appear once in a model: build a second layer of the same kind"
            )
        raise ValueError(
            f"Sequential: {shown} is already part of another model; a layer can be part of one "
            "model only (its parameters live in that model's storage): build new layers, or "
            "use copy.deepcopy(layer) for an independent copy"
        )
