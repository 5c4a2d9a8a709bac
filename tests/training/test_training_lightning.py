"""The tasks as plain LightningModules: ``load_from_checkpoint`` and a bare ``L.Trainer``."""

import copy

import lightning as L
import pytest
import torch

from faconvlstm.models import SequenceAutoencoder
from faconvlstm.training import (
    AutoencoderTask,
    ForecastTask,
    GriddedDataModule,
    embed,
    fit,
    load_checkpoint,
)
from faconvlstm.training.config import load_config


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("task", ["autoencoder", "forecast"])
def test_load_from_checkpoint_rebuilds_either_task(tmp_path, tiny_config, task):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    cfg["optim"]["scheduler"] = "cosine"
    if task == "forecast":
        cfg.update(task="forecast")
        cfg["data"]["horizon"] = 2
    last = fit(cfg, out=tmp_path / "run")
    cls = AutoencoderTask if task == "autoencoder" else ForecastTask
    restored = cls.load_from_checkpoint(last, map_location="cpu")
    assert type(restored) is cls and restored.optim_cfg.scheduler == "cosine"
    saved = load_checkpoint(last)  # weights_only=True: the hyperparameters are plain data
    assert set(saved["hyper_parameters"]) == {"model_config", "lat", "optim", "loss"}
    _same(restored.state_dict(), saved["state_dict"])


def test_a_plain_lightning_trainer_checkpoint_is_accepted_by_embed(tmp_path, tiny_config):
    """No faconvlstm.fit: the task describes its checkpoint from the datamodule."""
    cfg = load_config(copy.deepcopy(tiny_config))
    data = GriddedDataModule(cfg.data, seed=cfg.seed)
    data.setup("fit")
    desc = data.describe()
    model = SequenceAutoencoder(len(desc["channels"]), filters=(4,), embed_dim=8)
    task = AutoencoderTask(model, lat=desc["lat"])
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(task, datamodule=data)
    ckpt = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    paths = embed(ckpt, tmp_path / "emb.nc")
    import xarray as xr

    with xr.open_dataset(paths[0]) as ds:
        assert ds["embedding"].sizes["embedding_dim"] == 8
        assert bool(ds["embedding"].notnull().all())


def test_a_task_without_model_or_config_says_what_it_needs():
    with pytest.raises(ValueError, match="needs a model or a model_config"):
        AutoencoderTask()
