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
* :class:`RunSummary` prints what a run does: one line when training starts, one when it
  ends (best validation loss, checkpoint, the next command).
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
        # explicit: a resume checkpoint carries optimiser, loops and callbacks (and saying so
        # keeps Lightning from logging "`weights_only` was not set" at every save)
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.received_sigterm or (self.every and trainer.global_step % self.every == 0):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._save(trainer)


class RunSummary(L.Callback):
    """The console story of a run, on global rank 0: one line when training starts (what
    is trained, on what, for how many optimiser steps, into which folder) and one when
    ``fit`` ends (best validation loss, its checkpoint, the next command) — or, for a
    resumed run that had nothing left to train, what to change."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.start_step: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step
        if not trainer.is_global_zero or trainer.fit_loop.done:  # done: a finished run
            return
        model = getattr(pl_module, "model", pl_module)
        cell = getattr(model, "get_config", dict)().get("cell")
        n_params = sum(p.numel() for p in pl_module.parameters())
        data = trainer.datamodule
        source = getattr(getattr(data, "cfg", None), "source", "the data")
        resumed = f", resuming at step {trainer.global_step}" if trainer.global_step else ""
        print(
            f"faconvlstm fit: {type(model).__name__}"
            f"{f' ({cell} cell)' if cell else ''}, {n_params:,} parameters, on {source}: "
            f"{int(trainer.estimated_stepping_batches)} optimiser steps "
            f"({trainer.num_training_batches} batches x {trainer.max_epochs} epochs"
            f"{f' x {trainer.world_size} processes' if trainer.world_size > 1 else ''})"
            f"{resumed} -> {self.out}",
            flush=True,
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self.start_step is None or trainer.global_step == self.start_step:
            by_steps = trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps
            key, now = (
                ("max_steps", trainer.max_steps) if by_steps else ("max_epochs", trainer.max_epochs)
            )
            print(
                f"faconvlstm fit: nothing to train: the run in {self.out} already reached "
                f"trainer.{key}={now} (step {trainer.global_step}); to train longer: "
                f"--resume --set trainer.{key}=N with N > {now}",
                flush=True,
            )
            return
        best = trainer.checkpoint_callback
        score = getattr(best, "best_model_score", None)
        path = getattr(best, "best_model_path", "") or str(self.out / "checkpoints" / "last.ckpt")
        loss = f"best {best.monitor} {float(score):.4g}" if score is not None else "no validation"
        print(
            f"faconvlstm fit: done at step {trainer.global_step}, {loss} ({path}); next: "
            f"faconvlstm embed --ckpt {path} --out {self.out / 'embeddings.nc'}",
            flush=True,
        )
