"""The network: the Layer protocol and every layer, the fused losses, Sequential and mlp.

Read in this order: :mod:`.layer` (``Parameter`` and the protocol every layer answers),
:mod:`.functional` (each formula next to its derivative), :mod:`.dense` (z = W a + b and its
backward, Steps 2, 3 and 5 of the seed), :mod:`.activations` (a = f(z) and Step 4's f′),
:mod:`.losses` (Step 1, the fused δ = ŷ − y), :mod:`.sequential` (the chain of them). Beside
them: :mod:`.custom_loss` (a loss from the user's own value and gradient), :mod:`.summary`
(Keras' table of the layers), :mod:`.normalization`, :mod:`.dropout`, :mod:`.init` (weight
draws), :mod:`.mlp` (a network from its widths), :mod:`.formula_text` (each formula as text and
TeX, for explanations) and :mod:`.dense_chain` (the chains of layers the compiled kernels run).
"""

from . import functional
from .activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .custom_loss import CustomLoss
from .dense import Dense
from .dropout import Dropout
from .layer import Layer, Parameter
from .losses import (
    Loss,
    MeanSquaredError,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from .mlp import mlp
from .normalization import BatchNorm, LayerNorm
from .sequential import Sequential
from .summary import summary

__all__ = [
    "GELU",
    "BatchNorm",
    "CustomLoss",
    "Dense",
    "Dropout",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Loss",
    "MeanSquaredError",
    "Parameter",
    "PoissonLoss",
    "ReLU",
    "Sequential",
    "summary",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Softplus",
    "Tanh",
    "functional",
    "mlp",
]
