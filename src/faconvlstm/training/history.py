"""Per-epoch history of a training run: losses and the embeddings of fixed probe windows.

:class:`EpochRecorder` (a Lightning callback) writes one ``epoch_XXX.npz`` per training
epoch; :func:`read_history` reads them back. Because every epoch is its own file, written
atomically, the history survives an interruption and a resume simply adds the epochs still
to come. The comparison protocol measures embedding drift between epochs from the probe
embeddings (:func:`faconvlstm.evaluation.stability.embedding_drift`).

File ``epoch_XXX.npz`` (XXX = zero-based epoch)::

    embeddings  (P·T, E) float32   probe windows' embeddings after the epoch
    train_loss  ()       float64   mean training loss of the epoch's batches (NaN: none)
    val_loss    ()       float64   validation loss logged as ``val/loss`` (NaN: none)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from faconvlstm.files import atomic_savez, jsonable

__all__ = ["EpochRecorder", "History", "read_history"]


class EpochRecorder(L.Callback):
    """After each training epoch save the mean training loss, the validation loss and the
    embeddings of fixed probe windows to ``directory/epoch_XXX.npz``.

    Args:
        directory: where the epoch files go (created on the first write).
        probe_x: ``(P, T, C, H, W)`` probe windows, normalised like the training data.
        probe_phase: ``(P, T)`` their annual phases (the model's ``times``).
    """

    def __init__(self, directory: str | Path, probe_x: torch.Tensor, probe_phase: torch.Tensor):
        self.directory = Path(directory)
        self.probe_x, self.probe_phase = probe_x, probe_phase
        self._losses: list[float] = []

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._losses.append(float(loss.detach()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        val = trainer.callback_metrics.get("val/loss")
        was_training = pl_module.model.training
        with torch.no_grad():
            z = pl_module.model.eval()(self.probe_x, times=self.probe_phase)["embeddings"]
        pl_module.model.train(was_training)
        atomic_savez(
            self.directory / f"epoch_{trainer.current_epoch:03d}.npz",
            embeddings=z.reshape(-1, z.shape[-1]).numpy(),
            train_loss=np.float64(np.mean(self._losses) if self._losses else np.nan),
            val_loss=np.float64(float(val) if val is not None else np.nan),
        )
        self._losses = []


@dataclass
class History:
    """What :func:`read_history` found: per-epoch losses (``None`` where not logged, as in
    JSON) and the probe embeddings ``(P·T, E)`` of every epoch, in epoch order."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list, repr=False)

    def losses(self) -> dict[str, list]:
        """``{"epoch", "train_loss", "val_loss"}`` lists (the results' ``history``)."""
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss}


def read_history(directory: str | Path) -> History:
    """Read the ``epoch_*.npz`` files an :class:`EpochRecorder` wrote (none: empty);
    non-finite losses become ``None`` (:func:`faconvlstm.files.jsonable`)."""
    out = History()
    for path in sorted(Path(directory).glob("epoch_*.npz")):
        with np.load(path, allow_pickle=False) as d:
            out.epoch.append(int(path.stem.split("_")[1]))
            out.train_loss.append(jsonable(float(d["train_loss"])))
            out.val_loss.append(jsonable(float(d["val_loss"])))
            out.snapshots.append(d["embeddings"])
    return out
