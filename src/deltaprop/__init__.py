"""deltaprop: neural networks trained by explicit, verifiable forward and back propagation.

Every gradient follows the seed's derivation: δ_L = ŷ − y at a fused output, δ_l =
(W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l) below it, ∂L/∂W_l = δ_l a_{l−1}ᵀ and ∂L/∂b_l = δ_l.
"""

from . import functional, gradcheck, initializers, schedules
from .activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .core import DeltapropError, ForwardNotCalledError, Layer, Parameter, ShapeError
from .explain import LayerTrace, Trace, trace
from .io import FileInfo, ModelFileError, inspect, load, save
from .layers import Dense
from .losses import Loss, MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedules import Constant, CosineDecay, ExponentialDecay, InverseScaling, Schedule, StepDecay
from .train import (
    Callback,
    CSVLogger,
    Diagnostics,
    EarlyStopping,
    EpochLogger,
    History,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
    TrainingRun,
    evaluate,
    fit,
    predict,
)

__version__ = "0.1.0"

__all__ = [
    "GELU",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Constant",
    "CosineDecay",
    "Dense",
    "DeltapropError",
    "ExponentialDecay",
    "ForwardNotCalledError",
    "Identity",
    "InverseScaling",
    "Layer",
    "LayerTrace",
    "LeakyReLU",
    "Loss",
    "MeanSquaredError",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "ReLU",
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
    "Trace",
    "functional",
    "Callback",
    "CSVLogger",
    "Diagnostics",
    "EarlyStopping",
    "EpochLogger",
    "History",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "TrainingRun",
    "evaluate",
    "fit",
    "predict",
    "FileInfo",
    "ModelFileError",
    "inspect",
    "load",
    "save",
    "gradcheck",
    "initializers",
    "schedules",
    "trace",
    "__version__",
]
