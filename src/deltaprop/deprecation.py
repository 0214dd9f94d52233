"""Old names that moved keep working for one release, with a DeprecationWarning.

A module whose names moved sets ``__getattr__ = moved(__name__, {"old name": "new module"})``;
Python calls it only for names the module no longer has.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` answering ``module.<name>`` from ``deltaprop.<names[name]>``."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home = f"deltaprop.{names[name]}"
        warnings.warn(
            f"{module}.{name} moved to {home}.{name}; the old name goes away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__
