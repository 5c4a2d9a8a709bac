"""Callbacks that make an interrupted run resumable to the same weights.

* :class:`RNGStateCallback` stores the torch RNG state in every checkpoint and restores it
  right before the first batch of a resumed run, so dropout / scheduled sampling draw the
  same numbers as an uninterrupted run would. (The data loaders draw from their own
  generator, so loading never moves the global RNG.)
* :class:`LastCheckpoint` owns ``last.ckpt``: it writes it every ``every_n_train_steps``
  optimiser steps, at the end of every epoch, at the end of training (so the final weights
  are always on disk, whatever the step count) and at the end of the batch during which
  SIGTERM arrived (cluster pre-emption, ``kill``, SLURM time limit); Lightning then stops
  the run with ``SIGTERMException``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch


class RNGStateCallback(L.Callback):
    """Save the global torch RNG state with each checkpoint; restore it on resume."""

    def __init__(self) -> None:
        self._loaded: torch.Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict["torch"]

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        # at the first batch, after everything the restart itself may have drawn
        if self._loaded is not None:
            torch.set_rng_state(self._loaded)
            self._loaded = None


class LastCheckpoint(L.Callback):
    """Keep ``path`` (``last.ckpt``) at most ``every_n_train_steps`` steps behind, and exact
    at every epoch end, at the end of training and after a SIGTERM.

    ``trainer.save_checkpoint`` is called on every rank (the strategy decides who writes:
    rank 0 under DDP); a step already saved is not written twice.
    """

    def __init__(self, path: str | Path, every_n_train_steps: int | None = None) -> None:
        self.path = str(path)
        self.every = every_n_train_steps or 0
        self._saved_step = -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.global_step == self._saved_step:
            return
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.received_sigterm or (self.every and trainer.global_step % self.every == 0):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._save(trainer)
