"""Optimizers and learning-rate schedules.

:mod:`.optimizer` is the base class (validation, learning rate, clipping, the loop over
parameter groups); every other module is one optimizer — its class, its update rule in NumPy and
the same rule compiled — and :mod:`.schedules` holds the schedules ``step -> lr``.
"""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .schedules import Constant, CosineDecay, ExponentialDecay, InverseScaling, Schedule, StepDecay
from .sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "InverseScaling",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepDecay",
]
