"""The one registry of names: strings become objects here, and only through these tables.

Model files, the command line and the estimators name layers, activations, losses, optimizers,
schedules, initializers and data sets by string; each kind has one :class:`Registry` below, and
nothing is ever imported by a name found in a file. A new layer type becomes loadable, savable
and nameable with one line::

    dp.registry.LAYERS.register(MyLayer)

Lookups take the registered name (``"Adam"``, ``"SoftmaxCrossEntropy"``) or any alias, and forgive
case, ``_`` and ``-`` (``"adam"``, ``"softmax-ce"``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from .data import catalog as datasets
from .errors import UnknownNameError
from .nn import activations, losses, normalization
from .nn import dense as layers
from .nn import dropout as regularization
from .nn import init as initializers
from .nn import sequential as model
from .nn.layer import Layer, format_call
from .optim import adagrad, adam, rmsprop, schedules, sgd
from .optim.optimizer import Optimizer

T = TypeVar("T")


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


class Registry(Generic[T]):
    """Names ↔ entries (classes or functions) of one kind.

    Args:
        kind: what the entries are, for messages (``"layer"``, ``"data set"``).
        variable: the registry's name in this module, for messages (``"LAYERS"``).
        table: the name → entry mapping to hold. It is shared, not copied, so a module that
            keeps its own table (the initializers, the data sets) sees every registration.
    """

    def __init__(
        self,
        kind: str,
        variable: str,
        table: MutableMapping[str, T] | None = None,
        *,
        provider: str | None = None,
    ) -> None:
        self.kind = kind
        self.variable = variable
        self._table: MutableMapping[str, T] = {} if table is None else table
        self._aliases: dict[str, str] = {}
        self._provider = provider
        """deltaprop's own module that registers this kind's entries, imported at the first
        lookup rather than with deltaprop (the estimators: scikit-learn takes a second)."""

    def _load_provider(self) -> None:
        if self._provider is not None:
            provider, self._provider = self._provider, None
            importlib.import_module(provider)

    def register(self, entry: T, name: str | None = None, *, aliases: tuple[str, ...] = ()) -> T:
        """Add ``entry`` under ``name`` (default: its ``__name__``) and ``aliases``; returns it.

        Raises:
            ValueError: if the name or an alias already stands for another entry.
        """
        name = name if name is not None else str(getattr(entry, "__name__", ""))
        if not name:
            raise ValueError(f"cannot register {entry!r} as a {self.kind}: give it a name")
        for key in (name, *aliases):
            taken = self._resolve(key)
            if taken is not None and self._table[taken] is not entry:
                raise ValueError(f"{self.kind} name {key!r} is already taken by {taken!r}")
        self._table[name] = entry
        for alias in aliases:
            self._aliases[_normalized(alias)] = name
        return entry

    def register_each(self, *entries: T) -> Registry[T]:
        """Register each entry under its ``__name__``; returns the registry."""
        for entry in entries:
            self.register(entry)
        return self

    def _resolve(self, name: str) -> str | None:
        if name in self._table:
            return name
        wanted = _normalized(name)
        for key in self._table:
            if _normalized(key) == wanted:
                return key
        return self._aliases.get(wanted)

    def get(self, name: Any) -> T:
        """The entry registered as ``name`` (or an alias of it).

        Raises:
            UnknownNameError: naming the kind, the name and every known name.
        """
        self._load_provider()
        key = self._resolve(name) if isinstance(name, str) else None
        if key is None:
            known = [
                f"{n} ({', '.join(self.aliases(n))})" if self.aliases(n) else n
                for n in self.names()
            ]
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {', '.join(known)}")
        return self._table[key]

    def name_of(self, entry: Any) -> str:
        """The registered name of ``entry``.

        Raises:
            UnknownNameError: if it is not registered, saying how to register it.
        """
        for key, value in self._table.items():
            if value is entry:
                return key
        shown = getattr(entry, "__name__", repr(entry))
        raise UnknownNameError(
            f"{self.kind} {shown} is not registered (known: {', '.join(self.names())}); "
            f"register it with deltaprop.registry.{self.variable}.register({shown})"
        )

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._table)

    def aliases(self, name: str) -> list[str]:
        """The aliases of the entry registered as ``name``."""
        return sorted(alias for alias, target in self._aliases.items() if target == name)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


LAYERS = Registry[type[Layer]]("layer", "LAYERS").register_each(
    layers.Dense,
    activations.Identity,
    activations.ReLU,
    activations.LeakyReLU,
    activations.Sigmoid,
    activations.Tanh,
    activations.GELU,
    activations.Softplus,
    activations.Softmax,
    regularization.Dropout,
    normalization.BatchNorm,
    normalization.LayerNorm,
    model.Sequential,
)

ACTIVATIONS: Registry[type[Layer]] = Registry("activation", "ACTIVATIONS")
"""Hidden-layer activations by their short names, for ``mlp`` on the command line and in the
estimators (``"relu"``; scikit-learn's ``"logistic"`` is an alias of ``"sigmoid"``)."""
ACTIVATIONS.register(activations.ReLU, "relu")
ACTIVATIONS.register(activations.LeakyReLU, "leaky-relu")
ACTIVATIONS.register(activations.Tanh, "tanh")
ACTIVATIONS.register(activations.Sigmoid, "sigmoid", aliases=("logistic",))
ACTIVATIONS.register(activations.GELU, "gelu")
ACTIVATIONS.register(activations.Softplus, "softplus")
ACTIVATIONS.register(activations.Identity, "identity")

LOSSES: Registry[type[losses.Loss]] = Registry("loss", "LOSSES")
LOSSES.register(losses.SigmoidBinaryCrossEntropy, aliases=("bce", "binary-cross-entropy"))
LOSSES.register(losses.SoftmaxCrossEntropy, aliases=("softmax-ce", "cross-entropy", "ce"))
LOSSES.register(losses.MeanSquaredError, aliases=("mse", "squared-error"))
LOSSES.register(losses.PoissonLoss, aliases=("poisson",))

OPTIMIZERS = Registry[type[Optimizer]]("optimizer", "OPTIMIZERS").register_each(
    sgd.SGD,
    adam.Adam,
    adam.AdamW,
    rmsprop.RMSprop,
    adagrad.Adagrad,
)

SCHEDULES = Registry[type[schedules.Schedule]]("schedule", "SCHEDULES")
SCHEDULES.register(schedules.Constant, aliases=("constant",))
SCHEDULES.register(schedules.StepDecay, aliases=("step",))
SCHEDULES.register(schedules.ExponentialDecay, aliases=("exponential",))
SCHEDULES.register(schedules.CosineDecay, aliases=("cosine",))
SCHEDULES.register(schedules.InverseScaling, aliases=("inverse-scaling", "invscaling"))

INITIALIZERS: Registry[initializers.Initializer] = Registry(
    "initializer", "INITIALIZERS", initializers.INITIALIZERS
)
"""Weight initializers by name; ``Dense(init=name)`` looks names up in this same table."""

ESTIMATORS: Registry[Any] = Registry(
    "estimator", "ESTIMATORS", provider="deltaprop.sklearn.estimators"
)
"""The estimators a model file can hold (:mod:`deltaprop.sklearn.estimators` registers its two)."""

DATASETS: Registry[Callable[..., datasets.Dataset]] = Registry(
    "data set", "DATASETS", datasets.LOADERS
)
"""Built-in data sets by name, each loader returning a :class:`~deltaprop.data.catalog.Dataset`."""
for _alias, _name in datasets.ALIASES.items():
    DATASETS.register(datasets.LOADERS[_name], _name, aliases=(_alias,))


# --- objects <-> configurations ---------------------------------------------------------------


def to_config(obj: Any, registry: Registry[Any]) -> dict[str, Any]:
    """``{"type": <registered name>, **obj.config()}``, with layers inside written the same way.

    Works for layers, losses, optimizers and schedules: anything with a ``config()`` method
    whose class is in ``registry``.

    Raises:
        UnknownNameError: if the class (or a layer inside) is not registered.
    """
    return {"type": registry.name_of(type(obj)), **_plain(obj.config())}


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Layer):
            return to_config(value, LAYERS)
        if isinstance(value, list | tuple) and any(isinstance(v, Layer) for v in value):
            return [plain(v) for v in value]
        return value

    return {key: plain(value) for key, value in config.items()}


def from_config(config: Any, registry: Registry[Any], where: str = "config") -> Any:
    """Build an object from :func:`to_config` output, through ``registry`` only.

    Nested layer configurations (a dict with a ``"type"``, or a list of them) are built first,
    through :data:`LAYERS`.

    Raises:
        ValueError: for anything but a dict with a string ``"type"``, or arguments the class
            refuses (the message says where in the configuration).
        UnknownNameError: for a name the registry does not hold.
    """
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ValueError(
            f"{where}: expected a {registry.kind} description with a 'type', got {_short(config)}"
        )
    cls = registry.get(config["type"])
    args = {}
    for key, value in config.items():
        if key == "type":
            continue
        if _is_layer_config(value):
            value = from_config(value, LAYERS, f"{where}.{key}")
        elif isinstance(value, list) and value and all(_is_layer_config(v) for v in value):
            value = [from_config(v, LAYERS, f"{where}.{key}.{i}") for i, v in enumerate(value)]
        args[key] = value
    try:
        return cls.from_config(args)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{where}: invalid arguments for {config['type']}: {_short(args)} ({error})"
        ) from None


def state_shapes(config: Any, where: str = "architecture") -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of the model a configuration describes, without building
    the layers that can tell (:meth:`~deltaprop.nn.layer.Layer.state_shapes`).

    Raises:
        ValueError: as :func:`from_config`.
    """
    if not _is_layer_config(config):
        raise ValueError(
            f"{where}: expected a layer description with a 'type', got {_short(config)}"
        )
    cls = LAYERS.get(config["type"])
    args: dict[str, Any] = {}
    for key, value in config.items():
        if key == "type":
            continue
        if _is_layer_config(value):
            value = state_shapes(value, f"{where}.{key}")
        elif isinstance(value, list) and value and all(_is_layer_config(v) for v in value):
            value = [state_shapes(v, f"{where}.{key}.{i}") for i, v in enumerate(value)]
        args[key] = value
    try:
        shapes = cls.state_shapes(args)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{where}: invalid arguments for {config['type']}: {_short(args)} ({error})"
        ) from None
    if shapes is None:  # the class cannot tell without being built
        layer = from_config(config, LAYERS, where)
        shapes = {name: tuple(array.shape) for name, array in layer.state_dict().items()}
    return shapes


def _is_layer_config(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("type"), str)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(config: dict[str, Any]) -> str:
    """A configuration as a constructor call: ``Dense(4, 8, bias=True, dtype='float32')``.

    Reads the configuration only (nothing is built); layers inside are described the same way.
    """
    name = str(config.get("type"))
    cls = LAYERS.get(name) if name in LAYERS else None
    positional = cls.positional_config if cls is not None else ()
    # files store keys sorted: show them in the constructor's order again
    order = list(inspect.signature(cls).parameters) if cls is not None else []

    class Shown:
        def __init__(self, text: str) -> None:
            self.text = text

        def __repr__(self) -> str:
            return self.text

    def shown(value: Any) -> Any:
        if _is_layer_config(value):
            return Shown(describe(value))
        if isinstance(value, list) and value and all(_is_layer_config(v) for v in value):
            return [Shown(describe(v)) for v in value]
        return value

    keys = sorted(
        (key for key in config if key != "type"),
        key=lambda key: order.index(key) if key in order else len(order),
    )
    return format_call(name, {key: shown(config[key]) for key in keys}, positional)
