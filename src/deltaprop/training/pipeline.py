"""From a data set to a model ready to train: the steps the command line and the playground
share."""

from __future__ import annotations

from ..nn.losses import Loss, MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy


def default_loss(task: str, n_classes: int) -> Loss:
    """The fused loss for a task: sigmoid + BCE for two classes, softmax cross-entropy above,
    half mean squared error for regression."""
    if task == "regression":
        return MeanSquaredError()
    return SigmoidBinaryCrossEntropy() if n_classes == 2 else SoftmaxCrossEntropy()


def output_width(loss: Loss, task: str, n_classes: int) -> int:
    """Outputs of the last layer: one for a binary sigmoid or a regression, else one per class."""
    if task == "regression" or (n_classes == 2 and isinstance(loss, SigmoidBinaryCrossEntropy)):
        return 1
    return n_classes
