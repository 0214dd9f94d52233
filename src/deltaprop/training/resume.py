"""Where ``fit`` starts: from scratch, or exactly where a checkpoint left off."""

from __future__ import annotations

import os
from typing import Any

from ..files.checkpoints import load_checkpoint
from .protocol import Callback, History, TrainingRun


def resume(run: TrainingRun, checkpoint: str | os.PathLike[str] | None) -> None:
    """Offer the run's generator to the model's layers; from a ``checkpoint``, first restore the
    weights, the optimizer, the History, the epoch, the validation rows and the callbacks, and
    then the generators' states, so training continues exactly where it stopped."""
    if checkpoint is None:
        run.model.offer_rng(run.rng)  # for layers that draw random numbers in training
        return
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
    run.model.offer_rng(run.rng)
    # the generators layers were given themselves, not fit's
    own = [g for g in run.model.generators() if g is not run.rng]
    for generator, saved in zip(own, state.generator_states, strict=False):
        generator.bit_generator.state = saved


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
