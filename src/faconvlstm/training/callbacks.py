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
* :class:`DeepClustering` initialises the centroids and refreshes the target
  distribution of joint deep clustering (DEC/IDEC, ``loss.clustering``).
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
        cpu = pl_module.device.type == "cpu"
        threads = f", {torch.get_num_threads()} CPU threads" if cpu else ""
        print(
            f"faconvlstm fit: {type(model).__name__}"
            f"{f' ({cell} cell)' if cell else ''}, {n_params:,} parameters, on {source}: "
            f"{int(trainer.estimated_stepping_batches)} optimiser steps "
            f"({trainer.num_training_batches} batches x {trainer.max_epochs} epochs"
            f"{f' x {trainer.world_size} processes' if trainer.world_size > 1 else ''})"
            f"{resumed}{threads} -> {self.out}",
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


class DeepClustering(L.Callback):
    r"""Centroid initialisation and target refresh of joint deep clustering (DEC/IDEC).

    Added by :class:`~faconvlstm.training.modules.AutoencoderTask` itself (through
    ``configure_callbacks``) when ``loss.clustering.weight > 0``, so a plain
    ``lightning.Trainer`` runs it too. The model must have a
    :class:`~faconvlstm.heads.ClusteringHead` (``model.n_clusters``).

    * The first ``warmup_epochs`` epochs train on reconstruction only.
    * At the first training batch after them, the embeddings ``z`` of every training
      window (eval mode, no gradient, in the data module's ``train_set`` order) are
      clustered by k-means (``KMeans(k, n_init, random_state=seed)``, seed of the data
      module) and the centroids set to its centres (rank 0's, broadcast under DDP).
    * Then, and every ``update_interval`` optimiser steps after (or at the first batch of
      every epoch for ``"epoch"``), the target ``P = target_distribution(Q)`` is recomputed
      from ``Q`` of all training windows together: ``(N_windows, T, k)``, looked up for a
      batch by its window start ``batch["index"]`` (:meth:`target_for`).

    State saved in every checkpoint (``checkpoint["callbacks"]``): the target, the window
    starts it belongs to, and the step / epoch of the last refresh, so a resumed run uses
    the same target and refreshes at the same steps as an uninterrupted one. Whether the
    centroids were initialised is the head's ``initialized`` buffer (in the model's
    ``state_dict``). The refresh draws no torch random numbers (eval mode; k-means has its
    own seeded generator).
    """

    def __init__(
        self,
        warmup_epochs: int = 2,
        update_interval: int | str = "epoch",
        n_init: int = 10,
        batch_size: int = 32,
    ) -> None:
        self.warmup_epochs = int(warmup_epochs)
        self.update_interval = update_interval
        self.n_init = int(n_init)
        self.batch_size = int(batch_size)
        self.target: torch.Tensor | None = None  # (N_windows, T, k)
        self.starts: torch.Tensor | None = None  # (N_windows,) sorted window starts
        self.refreshed_step = -1
        self.refreshed_epoch = -1

    # -- checkpointed state --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "starts": self.starts,
            "refreshed_step": self.refreshed_step,
            "refreshed_epoch": self.refreshed_epoch,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.target, self.starts = state_dict["target"], state_dict["starts"]
        self.refreshed_step = int(state_dict["refreshed_step"])
        self.refreshed_epoch = int(state_dict["refreshed_epoch"])

    # -- the target of one batch ---------------------------------------------------------
    def target_for(self, index: torch.Tensor) -> torch.Tensor | None:
        """The fixed target ``P`` ``(B, T, k)`` of the training windows starting at
        ``index`` ``(B,)``; ``None`` before the first refresh (warm-up)."""
        if self.target is None or self.starts is None:
            return None
        index = torch.as_tensor(index, dtype=self.starts.dtype).cpu()
        rows = torch.searchsorted(self.starts, index).clamp_max(self.starts.numel() - 1)
        if not torch.equal(self.starts[rows], index):
            raise RuntimeError(
                "a training batch holds a window start not in the clustering target (the "
                "training set changed since the last refresh)"
            )
        return self.target[rows]

    # -- hooks ---------------------------------------------------------------------------
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if trainer.current_epoch < self.warmup_epochs:
            return
        head = _clustering_head(pl_module)
        if not bool(head.initialized):
            due = True
        elif self.update_interval == "epoch":
            due = self.refreshed_epoch != trainer.current_epoch
        else:
            due = trainer.global_step - self.refreshed_step >= int(self.update_interval)
        if due and self.refreshed_step != trainer.global_step:  # not twice per step
            self.refresh(trainer, pl_module)

    @torch.no_grad()
    def refresh(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """(Initialise the centroids if needed and) recompute the target on the training set."""
        head = _clustering_head(pl_module)
        z, starts = self._embed_training_set(trainer, pl_module)
        if not bool(head.initialized):
            seed = int(getattr(trainer.datamodule, "seed", 0) or 0)
            head.init_centroids(z.reshape(-1, z.shape[-1]), seed=seed, n_init=self.n_init)
            if trainer.world_size > 1:  # every rank starts from rank 0's centroids
                head.centroids.copy_(trainer.strategy.broadcast(head.centroids.detach(), src=0))
        q = head.soft_assign(z.to(head.centroids.device)).cpu()
        self.target = head.target_distribution(q)
        self.starts = starts
        self.refreshed_step, self.refreshed_epoch = trainer.global_step, trainer.current_epoch

    def _embed_training_set(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``(N_windows, T, E)`` of every training window and their starts."""
        from torch.utils.data import DataLoader

        from faconvlstm.data import collate_windows

        dataset = getattr(getattr(trainer, "datamodule", None), "train_set", None)
        if dataset is None or not hasattr(dataset, "starts"):
            raise RuntimeError(
                "joint clustering (loss.clustering) needs the training windows: train with "
                "trainer.fit(task, datamodule=GriddedDataModule(...)) or faconvlstm fit"
            )
        model = pl_module.model
        was_training = model.training
        model.eval()
        parts = []
        try:
            loader = DataLoader(dataset, batch_size=self.batch_size, collate_fn=collate_windows)
            for batch in loader:
                out = model(
                    batch["x"].to(pl_module.device),
                    times=batch["phase"].to(pl_module.device),
                    mask=batch["mask"].to(pl_module.device),
                )
                parts.append(out["embeddings"].float().cpu())
        finally:
            model.train(was_training)
        starts = torch.as_tensor(dataset.starts, dtype=torch.long)
        return torch.cat(parts), starts


def _clustering_head(pl_module: L.LightningModule) -> Any:
    head = getattr(getattr(pl_module, "model", None), "clustering", None)
    if head is None:
        raise RuntimeError(
            "loss.clustering is on but the model has no clustering head: set model.n_clusters"
        )
    return head
