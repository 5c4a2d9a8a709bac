"""LightningModules: the two training tasks around the models of :mod:`faconvlstm.models`.

* :class:`AutoencoderTask` — representation learning: reconstruct the input window,
  ``loss = wMSE(recon, x) + λ · model.regularization_loss()``.
* :class:`ForecastTask` — predict the next N steps from the window,
  ``loss = wMSE(forecast, y) + λ · model.regularization_loss()``.

wMSE is the latitude-weighted masked MSE of :func:`faconvlstm.losses.weighted_mse`
(missing values and land cells count zero). Batches are the dicts of
:func:`faconvlstm.data.collate_windows`: ``"x"`` (B,T,C,H,W) normalised, ``"mask"``
(B,T,C,H,W) bool, ``"phase"`` (B,T) annual phase; with a horizon also ``"y"``,
``"y_mask"`` (B,N,C,H,W) and ``"y_phase"`` (B,N). Only tensors reach the model (the
annual phase stands for the time stamps), so the tasks are safe under DDP and workers.

A non-finite loss stops training with :class:`NonFiniteLossError` naming the step, the
batch and its first time stamp, before the optimiser can write NaN into the weights.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from faconvlstm.losses import latitude_weights, weighted_mse
from faconvlstm.training.config import LossConfig, OptimConfig
from faconvlstm.training.schedules import CosineSchedule

__all__ = ["TASKS", "AutoencoderTask", "ForecastTask", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class _Task(L.LightningModule):
    """Shared mechanics: loss weights, optimiser, NaN guard and checkpoint metadata.

    Args:
        model: the network (built by :func:`faconvlstm.training.fit.build_model`).
        lat: latitudes of the grid rows in degrees ``(H,)`` (for the loss weights).
        optim, loss: the ``optim`` / ``loss`` sections of the run configuration.
        metadata: the self-describing entry written into every checkpoint under
            ``checkpoint["faconvlstm"]`` (see :mod:`faconvlstm.training.checkpoint`).
    """

    def __init__(
        self,
        model: nn.Module,
        lat: Any = None,
        optim: OptimConfig | None = None,
        loss: LossConfig | None = None,
        metadata: dict | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optim_cfg = optim or OptimConfig()
        self.loss_cfg = loss or LossConfig()
        self.metadata = metadata or {}
        weights = (
            latitude_weights(lat)
            if lat is not None and self.loss_cfg.latitude_weighted
            else torch.ones(0)
        )
        self.register_buffer("lat_weights", weights, persistent=False)

    # -- subclasses: one forward pass -> (prediction, target, target mask) --------------------
    def _predict(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(prediction, target, valid mask or None), all (B,T',C',H,W)."""
        raise NotImplementedError

    def _loss(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pred, target, mask = self._predict(batch, train)
        weights = self.lat_weights if self.lat_weights.numel() else None
        mse = weighted_mse(pred, target, weights, mask)
        reg = self.model.regularization_loss() if hasattr(self.model, "regularization_loss") else 0
        return mse + self.loss_cfg.regularization_weight * reg, mse

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, mse = self._loss(batch, train=True)
        # all ranks stop together (one rank raising alone would hang the others under DDP)
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)))
        if not finite:
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}, first time stamp "
                f"{_first_time(batch)}); weights were not updated, the last checkpoint is "
                "intact. Lower optim.lr, set trainer.gradient_clip_val or check the data."
            )
        bs = batch["x"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/mse", mse, batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, mse = self._loss(batch, train=False)
        bs = batch["x"].shape[0]
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=bs)
        self.log("val/mse", mse, sync_dist=True, batch_size=bs)

    def configure_optimizers(self) -> Any:
        cfg = self.optim_cfg
        opt = torch.optim.AdamW(
            self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas)
        )
        if cfg.scheduler == "none":
            return opt
        # the total number of steps is set in on_train_start: asking for it here would set
        # the training data up before a resumed run restores the loader's position
        sched = CosineSchedule(opt, min_lr=cfg.min_lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, CosineSchedule):
                config.scheduler.set_total(self.trainer.estimated_stepping_batches)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["faconvlstm"] = self.metadata


class AutoencoderTask(_Task):
    """Reconstruct the input window (representation learning)."""

    def _predict(self, batch: dict, train: bool):
        out = self.model(batch["x"], times=batch["phase"], mask=batch.get("mask"))
        return out["recon"], batch["x"], batch.get("mask")


class ForecastTask(_Task):
    """Forecast the ``horizon`` steps after the window (scheduled sampling while training).

    The targets are the model's ``target_channels`` of ``y`` (all channels by default).
    """

    def __init__(self, model: nn.Module, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, *args, **kwargs)
        self.targets = target_channels(model)

    def _predict(self, batch: dict, train: bool):
        tf = self.loss_cfg.teacher_forcing if train else 0.0
        y = batch["y"][:, :, self.targets]
        out = self.model(
            batch["x"],
            times=batch["phase"],
            future_times=batch["y_phase"],
            y=y if tf > 0 else None,
            teacher_forcing=tf,
            mask=batch.get("mask"),
        )
        mask = batch.get("y_mask")
        return out["forecast"], y, None if mask is None else mask[:, :, self.targets]


def target_channels(model: nn.Module) -> list[int]:
    """Indices of the input channels a forecaster predicts (its ``target_channels``, or all)."""
    cfg = model.get_config()
    if cfg.get("target_channels") is not None:
        return list(cfg["target_channels"])
    n_in, n_out = cfg["in_channels"], cfg.get("out_channels")
    if n_out not in (None, n_in):
        raise ValueError(
            f"the forecaster predicts {n_out} of {n_in} channels; say which with "
            "model.target_channels (indices of the input channels) in the config"
        )
    return list(range(n_in))


def _first_time(batch: dict) -> Any:
    times = batch.get("time")
    try:
        return times[0][0]
    except (TypeError, IndexError, KeyError):
        return "unknown"


TASKS: dict[str, type[_Task]] = {"autoencoder": AutoencoderTask, "forecast": ForecastTask}
