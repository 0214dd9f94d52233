"""deltaprop: neural networks trained by explicit, verifiable forward and back propagation.

Every gradient follows the seed's derivation: δ_L = ŷ − y at a fused output, δ_l =
(W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l) below it, ∂L/∂W_l = δ_l a_{l−1}ᵀ and ∂L/∂b_l = δ_l.
"""

from typing import TYPE_CHECKING, Any

from . import registry
from .data import catalog as datasets
from .data.preprocessing import Preprocessor
from .errors import (
    DeltapropError,
    ForwardNotCalledError,
    ModelFileError,
    ShapeError,
    UnknownNameError,
)
from .explanation import Explanation, LayerTrace, Trace, explain, explain_neuron, gradcheck, trace
from .files import FileInfo, inspect_file, load, load_preprocessor, save
from .nn import (
    GELU,
    BatchNorm,
    CustomLoss,
    Dense,
    Dropout,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    Loss,
    MeanSquaredError,
    Parameter,
    PoissonLoss,
    ReLU,
    Sequential,
    Sigmoid,
    SigmoidBinaryCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Softplus,
    Tanh,
    functional,
    mlp,
    summary,
)
from .nn import init as initializers
from .optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseScaling,
    Optimizer,
    RMSprop,
    Schedule,
    StepDecay,
    schedules,
)

if TYPE_CHECKING:  # imported on first use, by __getattr__ below
    from .sklearn import MLPClassifier, MLPRegressor
from .training import (
    Callback,
    CSVLogger,
    Diagnostics,
    EarlyStopping,
    EpochLogger,
    History,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
    TrainingRun,
    TuneReport,
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
    "BatchNorm",
    "CustomLoss",
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
    "summary",
    "ShapeError",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Softplus",
    "StepDecay",
    "Tanh",
    "TensorBoard",
    "TerminateOnNaN",
    "Trace",
    "TrainingRun",
    "TuneReport",
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
    """``dp.MLPClassifier`` and ``dp.MLPRegressor``, imported when first asked for: scikit-learn
    takes most of a second to import, which ``import deltaprop`` need not pay."""
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
