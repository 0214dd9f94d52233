"""Training: ``fit``, ``evaluate`` and ``predict``, and all that hooks into the loop.

:mod:`.loop` owns the loop; :mod:`.inputs` checks what it is given; :mod:`.protocol` is the
History, the TrainingRun and the Callback protocol, :mod:`.callbacks` the callbacks shipped,
:mod:`.progress` the terminal display, :mod:`.tensorboard` TensorBoard's event files and
:mod:`.ray_tune` the reports to Ray Tune's schedulers;
:mod:`.rollback` is what happens after a blow-up, :mod:`.resume` the exact resume from a
checkpoint; :mod:`.compiled_epoch` (with its kernel, :mod:`.epoch_kernel`) runs a whole epoch
compiled; :mod:`.metrics` and :mod:`.scoring` are the numbers reported; :mod:`.pipeline` builds
a model for a data set, as the command line and the playground do.
"""

from .callbacks import (
    CSVLogger,
    Diagnostics,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .evaluation import evaluate, predict
from .loop import fit
from .progress import EpochLogger, ProgressBar
from .protocol import Callback, History, TrainingRun
from .ray_tune import TuneReport
from .tensorboard import TensorBoard

__all__ = [
    "CSVLogger",
    "Callback",
    "Diagnostics",
    "EarlyStopping",
    "EpochLogger",
    "History",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
    "TrainingRun",
    "TuneReport",
    "evaluate",
    "fit",
    "predict",
]
