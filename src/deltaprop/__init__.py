"""deltaprop: neural networks trained by explicit, verifiable forward and back propagation.

Every gradient follows the seed's derivation: δ_L = ŷ − y at a fused output, δ_l =
(W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l) below it, ∂L/∂W_l = δ_l a_{l−1}ᵀ and ∂L/∂b_l = δ_l.
"""

import warnings
from typing import Any

from . import datasets, functional, gradcheck, initializers, registry, schedules
from .activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .adaptive_optimizers import Adagrad, RMSprop
from .builders import mlp
from .callbacks import (
    CSVLogger,
    Diagnostics,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .core import Layer, Parameter
from .derivation import explain
from .display import EpochLogger, ProgressBar
from .errors import (
    DeltapropError,
    ForwardNotCalledError,
    ModelFileError,
    ShapeError,
    UnknownNameError,
)
from .estimators import MLPClassifier, MLPRegressor
from .explain import LayerTrace, Trace, trace
from .explanation import Explanation
from .files import FileInfo, inspect_file, load, load_preprocessor, save
from .hooks import Callback, History, TrainingRun
from .layers import Dense
from .losses import (
    Loss,
    MeanSquaredError,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from .model import Sequential
from .neuron import explain_neuron
from .normalization import BatchNorm, LayerNorm
from .optimizers import SGD, Adam, AdamW, Optimizer
from .preprocessing import Preprocessor
from .regularization import Dropout
from .schedules import Constant, CosineDecay, ExponentialDecay, InverseScaling, Schedule, StepDecay
from .train import evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "GELU",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "BatchNorm",
    "CSVLogger",
    "Callback",
    "Constant",
    "CosineDecay",
    "Dense",
    "DeltapropError",
    "Diagnostics",
    "Dropout",
    "EarlyStopping",
    "EpochLogger",
    "Explanation",
    "ExponentialDecay",
    "FileInfo",
    "ForwardNotCalledError",
    "History",
    "Identity",
    "InverseScaling",
    "Layer",
    "LayerNorm",
    "LayerTrace",
    "LeakyReLU",
    "MLPClassifier",
    "MLPRegressor",
    "Loss",
    "MeanSquaredError",
    "ModelCheckpoint",
    "ModelFileError",
    "Optimizer",
    "Parameter",
    "PoissonLoss",
    "Preprocessor",
    "ProgressBar",
    "RMSprop",
    "ReLU",
    "ReduceLROnPlateau",
    "Schedule",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Softplus",
    "StepDecay",
    "Tanh",
    "TerminateOnNaN",
    "Trace",
    "TrainingRun",
    "UnknownNameError",
    "__version__",
    "datasets",
    "evaluate",
    "explain",
    "explain_neuron",
    "fit",
    "functional",
    "gradcheck",
    "initializers",
    "inspect_file",
    "load",
    "load_preprocessor",
    "mlp",
    "predict",
    "registry",
    "save",
    "schedules",
    "trace",
]


def __getattr__(name: str) -> Any:
    """Old names kept for one release, with a DeprecationWarning: ``inspect`` and ``io``."""
    if name == "inspect":
        from .files import inspect

        return inspect
    if name == "io":
        from . import files

        warnings.warn(
            "deltaprop.io is now deltaprop.files (models), deltaprop.checkpoints and "
            "deltaprop.fileformat (bytes); deltaprop.io goes away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return files
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
