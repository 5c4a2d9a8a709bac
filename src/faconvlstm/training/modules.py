"""LightningModules: the two training tasks around the models of :mod:`faconvlstm.models`.

* :class:`AutoencoderTask` — representation learning: reconstruct the input window,
  ``loss = wMSE(recon, x) + λ · model.regularization_loss()`` (``+ γ · KL(P‖Q)`` with
  joint deep clustering, ``loss.clustering``; :func:`clustering_loss`).
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

The tasks are ordinary LightningModules: ``lightning.Trainer().fit(task, datamodule)``
works without :func:`faconvlstm.training.fit`, its checkpoints carry the
``checkpoint["faconvlstm"]`` metadata that ``faconvlstm embed`` / ``predict`` need (built
from the :class:`~faconvlstm.training.datamodule.GriddedDataModule` being trained on), and
``AutoencoderTask.load_from_checkpoint(path)`` rebuilds the task: the hyperparameters are
plain data (the model configuration, the latitudes, the ``optim`` / ``loss`` sections), so
every checkpoint still loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
import torch
from torch import nn

from faconvlstm import models
from faconvlstm.losses import latitude_weights, weighted_mse
from faconvlstm.training.checkpoint import META_KEY, make_metadata
from faconvlstm.training.config import LossConfig, OptimConfig
from faconvlstm.training.schedules import CosineSchedule

__all__ = ["TASKS", "AutoencoderTask", "ForecastTask", "NonFiniteLossError", "clustering_loss"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class _Task(L.LightningModule):
    """Shared mechanics: loss weights, optimiser, NaN guard and checkpoint metadata.

    Args:
        model: the network (built by :func:`faconvlstm.training.fit.build_model`), or
            ``None`` to build it from ``model_config``.
        lat: latitudes of the grid rows in degrees ``(H,)`` (for the loss weights).
        optim, loss: the ``optim`` / ``loss`` sections of the run configuration
            (dataclasses or plain mappings).
        metadata: the self-describing entry written into every checkpoint under
            ``checkpoint["faconvlstm"]`` (see :mod:`faconvlstm.training.checkpoint`);
            ``None``: built at save time from the trainer's
            :class:`~faconvlstm.training.datamodule.GriddedDataModule`.
        model_config: ``model.get_config()`` of the network, used when ``model`` is None
            (this is what ``load_from_checkpoint`` passes).

    Hyperparameters saved in checkpoints (``checkpoint["hyper_parameters"]``, plain data):
    ``model_config``, ``lat``, ``optim``, ``loss``.
    """

    #: Name of the model class in :mod:`faconvlstm.models` this task trains.
    model_class_name = ""
    #: The ``task`` value of the run configuration.
    task_name = ""

    def __init__(
        self,
        model: nn.Module | None = None,
        lat: Any = None,
        optim: OptimConfig | dict | None = None,
        loss: LossConfig | dict | None = None,
        metadata: dict | None = None,
        model_config: dict | None = None,
    ) -> None:
        super().__init__()
        if model is None:
            if model_config is None:
                raise ValueError(
                    f"{type(self).__name__} needs a model or a model_config "
                    f"({self.model_class_name}.get_config())"
                )
            model = getattr(models, self.model_class_name).from_config(model_config)
        self.model = model
        self.optim_cfg = OptimConfig(**optim) if isinstance(optim, dict) else optim or OptimConfig()
        self.loss_cfg = LossConfig(**loss) if isinstance(loss, dict) else loss or LossConfig()
        self.metadata = metadata or {}
        lat = None if lat is None else [float(v) for v in torch.as_tensor(lat).flatten()]
        # plain data only: checkpoints must keep loading with weights_only=True
        self.save_hyperparameters(
            {
                "model_config": model.get_config(),
                "lat": lat,
                "optim": dataclasses.asdict(self.optim_cfg),
                "loss": dataclasses.asdict(self.loss_cfg),
            },
            logger=False,
        )
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
        checkpoint[META_KEY] = self.metadata or self._metadata_from_datamodule()

    def _metadata_from_datamodule(self) -> dict:
        """The checkpoint metadata of a run driven by a plain ``lightning.Trainer``."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer else None
        if data is None or getattr(data, "stats", None) is None:
            raise ValueError(
                f"{type(self).__name__} cannot describe its checkpoint: train it with "
                "trainer.fit(task, datamodule=GriddedDataModule(...)) or pass metadata= "
                "(faconvlstm.training.fit builds it for you)"
            )
        config = {
            "seed": data.seed,
            "task": self.task_name,
            "out": None,
            "threads": None,
            "data": dataclasses.asdict(data.cfg),
            "model": {},
            "optim": dataclasses.asdict(self.optim_cfg),
            "loss": dataclasses.asdict(self.loss_cfg),
        }
        return make_metadata(self.task_name, self.model, data.stats, data.describe(), config)


class AutoencoderTask(_Task):
    """Reconstruct the input window (representation learning).

    With ``loss.clustering.weight = γ > 0`` (and ``model.n_clusters``) the loss gains the
    joint deep clustering term ``γ · KL(P‖Q)`` after the warm-up (:func:`clustering_loss`;
    the centroid initialisation and target refresh are the
    :class:`~faconvlstm.training.callbacks.DeepClustering` callback, which the task adds to
    its trainer itself).
    """

    model_class_name = "SequenceAutoencoder"
    task_name = "autoencoder"

    def _predict(self, batch: dict, train: bool):
        out = self.model(batch["x"], times=batch["phase"], mask=batch.get("mask"))
        self._outputs = out  # the clustering term reads this pass's cluster_probs
        return out["recon"], batch["x"], batch.get("mask")

    def _loss(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        loss, mse = super()._loss(batch, train)
        kl = clustering_loss(self, self._outputs, batch, train)
        self._outputs = None
        if kl is None:
            return loss, mse
        stage = "train" if train else "val"
        self.log(f"{stage}/kl", kl, batch_size=batch["x"].shape[0], sync_dist=not train)
        # validation logs the KL against its own batch's target but keeps val/loss the
        # reconstruction objective, comparable across the end of the warm-up
        return (loss + self.loss_cfg.clustering.weight * kl if train else loss), mse

    def configure_callbacks(self) -> list[L.Callback]:
        c = self.loss_cfg.clustering
        if not c.enabled:
            return []
        from faconvlstm.training.callbacks import DeepClustering

        self._clustering = DeepClustering(c.warmup_epochs, c.update_interval, c.n_init)
        return [self._clustering]


def clustering_loss(
    task: AutoencoderTask, out: dict, batch: dict, train: bool
) -> torch.Tensor | None:
    r"""The DEC/IDEC term ``KL(P‖Q)`` of one batch, or ``None`` when it does not apply
    (clustering off, or the centroids not initialised yet: the warm-up).

    ``Q`` is ``out["cluster_probs"]`` ``(B, T, k)`` of this forward pass. Training uses the
    target ``P`` of the batch's windows held fixed since the last refresh
    (:meth:`~faconvlstm.training.callbacks.DeepClustering.target_for`); validation, whose
    windows have no stored target, the target of the batch's own ``Q``.
    """
    if not task.loss_cfg.clustering.enabled or "cluster_probs" not in out:
        return None
    head = task.model.clustering
    if not bool(head.initialized):
        return None
    q = out["cluster_probs"]
    callback = getattr(task, "_clustering", None)
    p = callback.target_for(batch["index"]) if train and callback is not None else None
    if train and p is None:
        return None  # centroids restored but no target yet (refreshed at the next batch)
    if p is None:
        p = head.target_distribution(q)
    return head.kl_loss(q, p.to(q.device, q.dtype))


class ForecastTask(_Task):
    """Forecast the ``horizon`` steps after the window (scheduled sampling while training).

    The targets are the model's ``target_channels`` of ``y`` (all channels by default).
    """

    model_class_name = "Forecaster"
    task_name = "forecast"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets = target_channels(self.model)

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
