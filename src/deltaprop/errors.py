"""The exceptions deltaprop raises itself, one base class for all of them.

Arguments a user gets wrong raise the built-in ``TypeError`` / ``ValueError`` (see
:mod:`deltaprop.validation`); these classes name the faults that are deltaprop's own ideas.
Each also derives from the built-in class a caller would catch for it.
"""

from __future__ import annotations


class DeltapropError(Exception):
    """Base class of the errors raised by deltaprop itself."""


class ForwardNotCalledError(DeltapropError, RuntimeError):
    """``backward`` was called without a preceding ``forward(..., training=True)``."""


class ShapeError(DeltapropError, ValueError):
    """An array's shape does not fit where it is used."""


class UnknownNameError(DeltapropError, ValueError):
    """A name (of a layer, loss, optimizer, data set, ...) that the registry does not hold."""


class ModelFileError(DeltapropError, ValueError):
    """A file that deltaprop cannot or will not load, with the reason in plain words."""


class DeviceUnavailableError(DeltapropError, RuntimeError):
    """A device that this machine cannot give: no CuPy, or no CUDA device."""
