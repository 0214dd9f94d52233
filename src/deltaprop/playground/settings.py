"""What a ``deltaprop playground`` page may ask for: the settings, checked, and the data they name.

Every field the page sends is checked here, and a refusal names the field and the value
(:class:`SettingsError`); :func:`settings_schema` is what the page offers.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import registry
from ..data import catalog as datasets
from ..data.dataset import Dataset
from ..data.tables import Table

DATA_SETS = (
    "spirals",
    "xor",
    "moons",
    "circles",
    "blobs",
    "iris",
    "wine",
    "breast-cancer",
    "digits",
    "diabetes",
)
"""The built-in sets the page offers (the 2-D ones first); uploaded CSV files come beside them."""


class SettingsError(ValueError):
    """Settings from the page that cannot be used; the message names the field and value."""


MAX_HIDDEN_LAYERS = 32
"""The most hidden layers the page may ask for."""

MAX_DROPPED = 100
"""The most columns the page may leave out of an uploaded file."""


@dataclass
class Settings:
    """What the page chose; :meth:`from_json` checks every field."""

    data: str = "spirals"
    target: str | None = None
    samples: int = 400
    noise: float = 0.1
    hidden: list[int] = field(default_factory=lambda: [8, 8])
    activation: str = "tanh"
    loss: str = "auto"
    optimizer: str = "Adam"
    lr: float = 0.01
    batch_size: int = 16
    init: str = "auto"
    l2: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    standardize: bool | None = None  # None: as the data set recommends (files: yes)
    drop: list[str] = field(default_factory=list)  # columns of an uploaded file left out

    @classmethod
    def from_json(cls, document: Any, uploads: dict[str, str]) -> Settings:
        if not isinstance(document, dict):
            raise SettingsError(f"settings must be a JSON object, got {str(document)[:60]}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(document) - known)
        if unknown:
            raise SettingsError(f"unknown settings {unknown}; known: {sorted(known)}")
        s = cls(**document)
        if s.data not in DATA_SETS and s.data not in uploads:
            raise SettingsError(f"data: unknown data set {s.data!r}; known: {list(DATA_SETS)}")
        _integer("samples", s.samples, 20, 20_000)
        _number("noise", s.noise, 0.0, 10.0)
        if not (isinstance(s.hidden, list) and all(is_int(w) and w >= 1 for w in s.hidden)):
            raise SettingsError(f"hidden: a list of layer widths >= 1, got {repr(s.hidden)[:80]}")
        if len(s.hidden) > MAX_HIDDEN_LAYERS:
            raise SettingsError(
                f"hidden: {len(s.hidden)} layers; at most {MAX_HIDDEN_LAYERS} are drawn and "
                "trained at an interactive pace"
            )
        for name, table in (
            ("activation", registry.ACTIVATIONS),
            ("optimizer", registry.OPTIMIZERS),
        ):
            _known(name, getattr(s, name), table)
        if s.loss != "auto":
            _known("loss", s.loss, registry.LOSSES)
        if s.init != "auto":
            _known("init", s.init, registry.INITIALIZERS)
        _number("lr", s.lr, 1e-7, 10.0)
        _integer("batch_size", s.batch_size, 1, 100_000)
        _number("l2", s.l2, 0.0, 100.0)
        _number("dropout", s.dropout, 0.0, 0.95)
        _integer("seed", s.seed, 0, 2**32 - 1)
        if s.standardize not in (None, True, False):
            raise SettingsError(f"standardize: true, false or null, got {s.standardize!r}")
        if not (
            isinstance(s.drop, list)
            and len(s.drop) <= MAX_DROPPED
            and all(isinstance(c, str) and 0 < len(c) <= 200 for c in s.drop)
        ):
            raise SettingsError(
                f"drop: a list of at most {MAX_DROPPED} column names, got {repr(s.drop)[:80]}"
            )
        if s.drop and s.data not in uploads:
            raise SettingsError(f"drop: columns are left out of uploaded files only, not {s.data}")
        return s


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if not (is_int(value) and low <= value <= high):
        raise SettingsError(f"{name}: an integer from {low} to {high}, got {value!r}")


def _number(name: str, value: Any, low: float, high: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and low <= value <= high):
        raise SettingsError(f"{name}: a number from {low:g} to {high:g}, got {value!r}")


def _known(name: str, value: Any, table: registry.Registry[Any]) -> None:
    try:
        table.get(str(value))
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def csv_dataset(
    text: str, target: str | None, name: str = "upload.csv", drop: tuple[str, ...] = ()
) -> Dataset:
    """An uploaded file's text as a data set, read through a temporary file as any data file:
    a ``.tsv`` or ``.tab`` name is tab-separated, any other CSV (``,`` or ``;``)."""
    with _as_file(text, name) as path:
        return datasets.from_file(path, target, drop=drop)


def upload_table(text: str, name: str) -> Table:
    """An uploaded file's columns, before a target is chosen."""
    with _as_file(text, name) as path:
        return datasets.read_table(path)


@contextmanager
def _as_file(text: str, name: str) -> Iterator[str]:
    suffix = ".tsv" if Path(name).suffix.lower() in (".tsv", ".tab") else ".csv"
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "upload" + suffix)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        yield path


def upload_name(key: str) -> str:
    """The file name in an upload's key (``upload 3: wine.tsv`` → ``wine.tsv``)."""
    return key.split(": ", 1)[-1]


def load_data(settings: Settings, uploads: dict[str, str]) -> Dataset:
    """The chosen data set: a built-in one, or an uploaded file (less its dropped columns)."""
    if settings.data in uploads:
        text, name = uploads[settings.data], upload_name(settings.data)
        return csv_dataset(text, settings.target, name, tuple(settings.drop))
    loader = datasets.LOADERS[settings.data]
    if settings.data in datasets.SYNTHETIC:
        return loader(n=settings.samples, noise=settings.noise, seed=settings.seed)
    return loader()


def settings_schema() -> dict[str, Any]:
    """The choices the page offers, and the defaults."""
    return {
        "data": list(DATA_SETS),
        "synthetic": list(datasets.SYNTHETIC),
        "activations": registry.ACTIVATIONS.names(),
        "losses": ["auto", *registry.LOSSES.names()],
        "optimizers": registry.OPTIMIZERS.names(),
        "inits": ["auto", *registry.INITIALIZERS.names()],
        "defaults": asdict(Settings()),
    }
