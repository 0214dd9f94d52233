"""Where ``fit`` starts: from scratch, or exactly where a checkpoint left off."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelFileError
from ..files.checkpoints import load_checkpoint
from .protocol import Callback, History, TrainingRun


def resume(run: TrainingRun, checkpoint: str | os.PathLike[str] | None) -> None:
    """Offer the run's generator to the model's layers; from a ``checkpoint``, first restore the
    weights, the optimizer, the History, the epoch, the validation rows and the callbacks, and
    then the generators' states, so training continues exactly where it stopped.

    Raises:
        ModelFileError: for a checkpoint that does not fit this run, or whose training state is
            malformed; then the model, the optimizer, the generators and the callbacks are as
            they were before (a refused resume changes nothing).
    """
    if checkpoint is None:
        run.model.offer_rng(run.rng)  # for layers that draw random numbers in training
        return
    before = _Before(run)
    try:
        _restore(run, checkpoint)
    except ModelFileError:
        before.put_back(run)
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as error:
        before.put_back(run)
        raise ModelFileError(
            f"cannot resume from {os.fspath(checkpoint)!r}: its training state is malformed "
            f"({type(error).__name__}: {error})"
        ) from None


def _restore(run: TrainingRun, checkpoint: str | os.PathLike[str]) -> None:
    state = load_checkpoint(
        checkpoint,
        run.model,
        run.optimizer,
        loss=run.loss,
        data=run.data_fingerprint(),
    )
    run.rng.bit_generator.state = state.rng_state
    run.history = History(state.history)
    run.epoch = state.epoch
    run.val_index = state.val_index
    _restore_callbacks(run.callbacks, state.callbacks)
    for callback in run.callbacks:
        callback.check_state(run)
    run.model.offer_rng(run.rng)
    # the generators layers were given themselves, not fit's
    own = [g for g in run.model.generators() if g is not run.rng]
    for generator, saved in zip(own, state.generator_states, strict=False):
        generator.bit_generator.state = saved


class _Before:
    """What a resume changes, kept so that a refused one can put it back."""

    def __init__(self, run: TrainingRun) -> None:
        self.model = run.model.snapshot()
        self.optimizer = (
            {key: array.copy() for key, array in run.optimizer.state.items()},
            run.optimizer.step_count,
            run.optimizer.lr_scale,
        )
        self.generators = [(g, g.bit_generator.state) for g in [run.rng, *run.model.generators()]]
        self.callbacks = [(c, dict(vars(c))) for c in run.callbacks]

    def put_back(self, run: TrainingRun) -> None:
        run.model.restore(self.model)
        state, run.optimizer.step_count, run.optimizer.lr_scale = self.optimizer
        for key, array in state.items():
            run.optimizer.state[key][...] = array
        for generator, saved in self.generators:
            generator.bit_generator.state = saved
        for callback, attributes in self.callbacks:
            vars(callback).clear()
            vars(callback).update(attributes)


def _restore_callbacks(callbacks: list[Callback], saved: list[tuple[str, dict[str, Any]]]) -> None:
    """Give each callback the state saved for the callback of the same class, in order."""
    remaining = list(saved)
    for callback in callbacks:
        name = type(callback).__name__
        for i, (saved_name, state) in enumerate(remaining):
            if saved_name == name:
                if state:
                    callback.load_state_dict(state)
                del remaining[i]
                break
