"""LightningModules: the two training tasks around the models of :mod:`faconvlstm.models`.

* :class:`AutoencoderTask` — representation learning: reconstruct the input window,
  ``loss = wMSE(recon, x) + λ · model.regularization_loss()`` (``+ γ · KL(P‖Q)`` with
  joint deep clustering, ``loss.clustering``; :func:`clustering_loss`; ``+ w · L_fc``
  with the forecasting pretext, ``loss.forecast``; ``+ w · L_con`` with the
  window-contrastive term, ``loss.contrastive``); with
  ``loss.masking`` a share of the (t, lat, lon) cells is hidden from the input during
  training and the wMSE is taken on the hidden cells (:func:`draw_hidden`,
  :func:`masked_batch`).
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
import numpy as np
import torch
from torch import nn

from faconvlstm import models
from faconvlstm.losses import latitude_weights, weighted_mse, window_contrastive_loss
from faconvlstm.training.checkpoint import META_KEY, make_metadata
from faconvlstm.training.config import LossConfig, MaskingConfig, OptimConfig
from faconvlstm.training.schedules import CosineSchedule

__all__ = [
    "TASKS",
    "AutoencoderTask",
    "ForecastTask",
    "NonFiniteLossError",
    "clustering_loss",
    "draw_hidden",
    "masked_batch",
    "masking_rng",
]


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

    With ``loss.masking.fraction > 0`` training hides cells of the input and scores the
    reconstruction there (see :class:`~faconvlstm.training.config.MaskingConfig`); the
    validation loss stays the plain reconstruction, and ``val/masked_mse`` is the masked
    loss of masks fixed by (seed, batch index), the same every epoch.

    With ``loss.clustering.weight = γ > 0`` (and ``model.n_clusters``) the loss gains the
    joint deep clustering term ``γ · KL(P‖Q)`` after the warm-up (:func:`clustering_loss`;
    the centroid initialisation and target refresh are the
    :class:`~faconvlstm.training.callbacks.DeepClustering` callback, which the task adds to
    its trainer itself).

    With ``loss.forecast.weight = w > 0`` (the model built with ``forecast_leads``) the
    training loss gains ``w · L_fc``, the forecasting pretext of
    :class:`~faconvlstm.training.config.ForecastPretextConfig` (logged as
    ``train/forecast_mse`` and ``val/forecast_mse``; ``val/loss`` stays the
    reconstruction).

    With ``loss.contrastive.weight = w > 0`` the training loss gains ``w · L_con``, the
    window-contrastive InfoNCE term of
    :class:`~faconvlstm.training.config.ContrastiveConfig` on the pass's embeddings
    (logged as ``train/contrastive`` and ``val/contrastive``; ``val/loss`` stays the
    reconstruction).
    """

    model_class_name = "SequenceAutoencoder"
    task_name = "autoencoder"

    def _predict(self, batch: dict, train: bool):
        hidden = self._training_hidden(batch) if train else None
        return self._reconstruct(batch, hidden)

    def _reconstruct(self, batch: dict, hidden: torch.Tensor | None):
        if hidden is None:
            out = self.model(batch["x"], times=batch["phase"], mask=batch.get("mask"))
            self._outputs = out  # the clustering term reads this pass's cluster_probs
            return out["recon"], batch["x"], batch.get("mask")
        model_mask, loss_mask = masked_batch(batch, hidden, self.loss_cfg.masking.loss_on)
        out = self.model(batch["x"], times=batch["phase"], mask=model_mask)
        self._outputs = out
        return out["recon"], batch["x"], loss_mask

    # -- masked objective ------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self._mask_batch_idx = batch_idx  # keys the mask generator (micro-batch)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        m = self.loss_cfg.masking
        if m.fraction <= 0:
            return
        rng = masking_rng(1, self._run_seed(), m.seed, batch_idx, self.global_rank)
        hidden = draw_hidden(_grid_shape(batch["x"]), m, rng).to(batch["x"].device)
        pred, target, mask = self._reconstruct(batch, hidden)
        weights = self.lat_weights if self.lat_weights.numel() else None
        self.log(
            "val/masked_mse",
            weighted_mse(pred, target, weights, mask),
            sync_dist=True,
            batch_size=batch["x"].shape[0],
        )

    def _training_hidden(self, batch: dict) -> torch.Tensor | None:
        """Hidden cells ``(B, T, 1, H, W)`` of this training batch, or None (masking off).

        Drawn from a generator keyed by (run seed, ``loss.masking.seed``, global step,
        micro-batch within gradient accumulation, rank): never the global RNG, so dropout
        and shuffling draw what they would without masking and a resumed run (which
        restores the global step) draws the same masks.
        """
        m = self.loss_cfg.masking
        if m.fraction <= 0:
            return None
        accumulate = getattr(self._trainer, "accumulate_grad_batches", 1) if self._trainer else 1
        micro = getattr(self, "_mask_batch_idx", 0) % max(int(accumulate), 1)
        rng = masking_rng(0, self._run_seed(), m.seed, self.global_step, micro, self.global_rank)
        return draw_hidden(_grid_shape(batch["x"]), m, rng).to(batch["x"].device)

    def _run_seed(self) -> int:
        """The run's ``seed`` (from the checkpoint metadata, else the datamodule, else 0)."""
        seed = (self.metadata.get("config") or {}).get("seed")
        if seed is None and self._trainer is not None:
            seed = getattr(getattr(self._trainer, "datamodule", None), "seed", None)
        return int(seed or 0)

    def _loss(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        loss, mse = super()._loss(batch, train)
        terms = (
            ("forecast_mse", self._forecast_loss(batch), self.loss_cfg.forecast.weight),
            ("contrastive", self._contrastive_loss(batch), self.loss_cfg.contrastive.weight),
            # validation logs the KL against its own batch's target
            (
                "kl",
                clustering_loss(self, self._outputs, batch, train),
                self.loss_cfg.clustering.weight,
            ),
        )
        self._outputs = None
        stage = "train" if train else "val"
        for name, value, weight in terms:
            if value is None:
                continue
            self.log(f"{stage}/{name}", value, batch_size=batch["x"].shape[0], sync_dist=not train)
            # val/loss stays the reconstruction objective (comparable across a warm-up)
            if train:
                loss = loss + weight * value
        return loss, mse

    def _contrastive_loss(self, batch: dict) -> torch.Tensor | None:
        """The window-contrastive term ``L_con`` of this pass, or None (off).

        A step takes part when any of its cells is valid (the batch's ``"mask"``; all
        steps without one). See :class:`~faconvlstm.training.config.ContrastiveConfig`.
        """
        c = self.loss_cfg.contrastive
        if not c.enabled:
            return None
        z = self._outputs["embeddings"]
        valid = batch.get("mask")
        steps = None
        if valid is not None and valid.dim() == 5 and valid.shape[:2] == z.shape[:2]:
            steps = valid.flatten(2).any(-1)
        return window_contrastive_loss(z, c.temperature, steps)

    def _forecast_loss(self, batch: dict) -> torch.Tensor | None:
        """The forecasting pretext ``L_fc`` of this pass, or None (``loss.forecast`` off).

        The mean over leads ℓ of the wMSE of ``forecast[:, t, ℓ-1]`` against ``x[:, t+ℓ]``
        for ``t < T-ℓ`` (the batch's validity mask of the target steps; hidden cells of the
        masked objective are still targets: they are hidden from the input only). See
        :class:`~faconvlstm.training.config.ForecastPretextConfig`.
        """
        if not self.loss_cfg.forecast.enabled:
            return None
        pred = self._outputs.get("forecast")
        if pred is None:
            raise ValueError(
                "loss.forecast.weight > 0 but the model returns no 'forecast': build it "
                "with forecast_leads = loss.forecast.leads (faconvlstm.training.fit does)"
            )
        x, valid = batch["x"], batch.get("mask")
        t, leads = x.shape[1], pred.shape[2]
        if not 1 <= leads < t:
            raise ValueError(f"forecast_leads = {leads} leaves no target in a window of {t}")
        weights = self.lat_weights if self.lat_weights.numel() else None
        terms = [
            weighted_mse(
                pred[:, : t - lead, lead - 1],
                x[:, lead:],
                weights,
                # a (B, T, ...) mask follows its steps; a broadcast one (H, W) applies as is
                valid
                if valid is None or valid.dim() < 5 or valid.shape[1] == 1
                else valid[:, lead:],
            )
            for lead in range(1, leads + 1)
        ]
        return torch.stack(terms).mean()

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


def masking_rng(*keys: int) -> np.random.Generator:
    """A private generator for masks, keyed by integers (stream, seeds, step, ...).

    Keys are reduced modulo 2**32 (a negative seed is fine); equal keys give equal draws.
    """
    return np.random.default_rng(np.random.SeedSequence([int(k) % 2**32 for k in keys]))


def _grid_shape(x: torch.Tensor) -> tuple[int, int, int, int]:
    b, t, _, h, w = x.shape
    return b, t, h, w


def draw_hidden(
    shape: tuple[int, int, int, int], masking: MaskingConfig, rng: np.random.Generator
) -> torch.Tensor:
    """Cells hidden from the input: bool ``(B, T, 1, H, W)``, True = hidden (all channels).

    * ``kind="random"``: at each (b, t) exactly ``k = max(1, round(f·H·W))`` grid cells,
      drawn uniformly without replacement (share ``k/(H·W) ≈ f``);
    * ``kind="block"``: at each (b, t), rectangles of ``h × w`` grid cells with top-left
      corners uniform over the grid (inside it), added until at least ``f·H·W`` cells are
      hidden (blocks may overlap; the share lies in ``[f, f + h·w/(H·W))``).

    Args:
        shape: ``(B, T, H, W)``.
        masking: the ``loss.masking`` section (``fraction`` > 0).
        rng: e.g. :func:`masking_rng`.

    Raises:
        ValueError: a block larger than the grid (names ``loss.masking.block``).
    """
    b, t, h, w = shape
    f = float(masking.fraction)
    if masking.kind == "random":
        k = max(1, round(f * h * w))
        order = np.argsort(rng.random((b, t, h * w)), axis=-1)[..., :k]
        hidden = np.zeros((b, t, h * w), dtype=bool)
        np.put_along_axis(hidden, order, True, axis=-1)
        hidden = hidden.reshape(b, t, h, w)
    else:
        bh, bw = (int(v) for v in masking.block)
        if bh > h or bw > w:
            raise ValueError(
                f"config key 'loss.masking.block': a {bh}×{bw} block does not fit the "
                f"{h}×{w} grid; use a smaller block"
            )
        target = f * h * w
        hidden = np.zeros((b, t, h, w), dtype=bool)
        for cell in hidden.reshape(b * t, h, w):
            while cell.sum() < target:
                i = int(rng.integers(0, h - bh + 1))
                j = int(rng.integers(0, w - bw + 1))
                cell[i : i + bh, j : j + bw] = True
    return torch.from_numpy(hidden)[:, :, None]


def masked_batch(
    batch: dict, hidden: torch.Tensor, loss_on: str = "hidden"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(model input mask, loss mask) for hidden cells ``(B, T, 1, H, W)``.

    The model mask is the batch's validity mask with the hidden cells set invalid (the
    model zeroes invalid input cells, :func:`~faconvlstm.models.encoder.prepare_input`);
    the loss mask is valid ∧ hidden (``loss_on="hidden"``) or the validity mask
    (``"all"``), both ``(B, T, C, H, W)``.
    """
    x = batch["x"]
    valid = batch.get("mask")
    valid = (
        torch.ones_like(x, dtype=torch.bool)
        if valid is None
        else valid.to(device=x.device, dtype=torch.bool).expand_as(x)
    )
    hidden = hidden.to(device=x.device, dtype=torch.bool)
    model_mask = valid & ~hidden
    loss_mask = valid & hidden if loss_on == "hidden" else valid
    return model_mask, loss_mask


def _first_time(batch: dict) -> Any:
    times = batch.get("time")
    try:
        return times[0][0]
    except (TypeError, IndexError, KeyError):
        return "unknown"


TASKS: dict[str, type[_Task]] = {"autoencoder": AutoencoderTask, "forecast": ForecastTask}
