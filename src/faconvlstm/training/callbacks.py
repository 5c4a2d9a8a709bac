"""Callbacks that make an interrupted run resumable to the same weights.

* :class:`RNGStateCallback` stores the torch RNG state in every checkpoint and restores it
  right before the first batch of a resumed run, so dropout / scheduled sampling draw the
  same numbers as an uninterrupted run would. (The data loaders draw from their own
  generator, so loading never moves the global RNG.)
* :class:`SigtermCheckpoint` writes ``last.ckpt`` at the end of the batch during which
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


class SigtermCheckpoint(L.Callback):
    """On SIGTERM, save ``path`` after the current batch so ``--resume`` loses nothing."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.received_sigterm:
            trainer.save_checkpoint(self.path)
