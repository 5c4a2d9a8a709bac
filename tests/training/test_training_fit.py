"""``fit`` in process: outputs, self-contained checkpoints, refusals, NaN guard, determinism."""

import shutil
from copy import deepcopy

import lightning as L
import numpy as np
import pytest
import torch
import xarray as xr

from faconvlstm.data import open_gridded, synthetic
from faconvlstm.training import embed, fit, load_checkpoint, predict
from faconvlstm.training.checkpoint import CheckpointError
from faconvlstm.training.config import ConfigError, load_config
from faconvlstm.training.datamodule import open_source
from faconvlstm.training.modules import NonFiniteLossError


def test_fit_writes_checkpoints_logs_and_config(trained_run):
    _, out = trained_run
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert (out / "config.yaml").is_file()
    assert (out / "csv" / "version_0" / "metrics.csv").is_file()
    assert any((out / "tensorboard" / "version_0").glob("events.out.tfevents*"))
    assert not list((out / "checkpoints").glob(".*tmp"))  # no temp files left behind


def test_checkpoint_alone_describes_model_data_and_run(trained_run):
    tiny_config, out = trained_run
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    meta = ckpt["faconvlstm"]
    assert meta["task"] == "autoencoder" and meta["model_class"] == "SequenceAutoencoder"
    assert meta["model_config"]["cell"] == "fa"
    assert meta["model_config"]["boundary"] == "periodic_lon"  # the synthetic grid wraps
    assert meta["data"]["channels"] == meta["stats"]["channels"]
    assert len(meta["data"]["lat"]) == 8 and len(meta["data"]["lon"]) == 16
    assert len(meta["stats"]["mean"]) == len(meta["data"]["channels"])
    assert meta["config"]["data"]["window"] == tiny_config["data"]["window"]
    assert ckpt["global_step"] == 6  # 2 epochs x 3 batches


def test_fresh_fit_refuses_to_overwrite_a_run(trained_run):
    cfg, out = trained_run
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        fit(deepcopy(cfg), out=out)
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before


def test_resume_without_checkpoint_is_refused(tmp_path, tiny_config):
    with pytest.raises(CheckpointError, match="does not exist"):
        fit(tiny_config, out=tmp_path / "run", resume=True)


def test_resume_from_corrupt_checkpoint_is_refused_before_training(tmp_path, tiny_config):
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        fit(tiny_config, out=tmp_path / "run", resume=True)
    assert not (tmp_path / "run" / "csv").exists()


def test_resume_with_a_different_model_is_refused(trained_run):
    cfg, out = trained_run
    cfg = deepcopy(cfg)
    cfg["model"]["cell"] = "convlstm"
    with pytest.raises(ConfigError, match="model"):
        fit(cfg, out=out, resume=True)


def test_resume_with_more_epochs_continues_training(tmp_path, trained_run):
    cfg, out = trained_run
    shutil.copytree(out, tmp_path / "run")
    cfg = deepcopy(cfg)
    cfg["trainer"]["max_epochs"] = 3
    last = fit(cfg, out=tmp_path / "run", resume=True)
    assert load_checkpoint(last)["global_step"] == 9
    assert (tmp_path / "run" / "csv" / "version_1" / "metrics.csv").is_file()


def test_invalid_model_argument_fails_before_any_output(tmp_path, tiny_config):
    tiny_config["model"]["filterz"] = [4]
    with pytest.raises(ConfigError, match=r"model\.filterz"):
        fit(tiny_config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


class _PoisonWeights(L.Callback):
    """Turn the weights into NaN right before the given global step."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def test_nan_loss_stops_naming_step_and_batch_and_keeps_last_checkpoint(tmp_path, tiny_config):
    with pytest.raises(NonFiniteLossError, match=r"global step 2 \(epoch 0, batch 2"):
        fit(tiny_config, out=tmp_path / "run", callbacks=[_PoisonWeights(2)])
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_same_config_and_seed_give_identical_embeddings(tmp_path, trained_run):
    cfg, out = trained_run
    again = fit(deepcopy(cfg), out=tmp_path / "again")
    paths = [
        embed(last, tmp_path / f"{i}.nc")[0]
        for i, last in enumerate([out / "checkpoints" / "last.ckpt", again])
    ]
    a, b = (xr.open_dataset(p)["embedding"].values for p in paths)
    np.testing.assert_array_equal(a, b)


def test_embeddings_cover_every_input_time_step(tmp_path, trained_run):
    last = trained_run[1] / "checkpoints" / "last.ckpt"
    written = embed(last, tmp_path / "emb.zarr", years=[2001, 2001], hidden=True, attention=True)
    emb = xr.open_zarr(written[0])
    assert emb.sizes["time"] == 365 and str(emb.time.values[0])[:10] == "2001-01-01"
    assert emb["embedding"].shape == (365, 8)
    assert np.isfinite(emb["embedding"].values).all()
    hidden = xr.open_zarr(written[1])["hidden"]
    assert hidden.shape == (365, 4, 8, 16)
    att = xr.open_zarr(written[2])
    np.testing.assert_allclose(att["temporal_attention"].sum("key_step"), 1, rtol=1e-5)
    np.testing.assert_allclose(att["row_attention"].sum("lon_key"), 1, rtol=1e-5)


def test_predict_writes_reconstructions_in_physical_units(tmp_path, trained_run):
    tiny_config, out = trained_run
    last = out / "checkpoints" / "last.ckpt"
    path = predict(last, tmp_path / "recon.nc", years=[2001, 2001])
    recon = open_gridded(path).load()  # one variable per field, read back as channels
    data = open_source(load_config(tiny_config).data).sel(time="2001")
    np.testing.assert_array_equal(recon.isnull().values, data.isnull().values)
    assert recon.isnull().any()  # missing inputs stay missing
    assert recon.shape == (365, 3, 8, 16)
    assert list(recon["channel"].values) == list(data["channel"].values)
    units = dict(zip(recon["channel"].values, recon["units"].values))
    assert units["t2m"] == "K"
    # de-normalised: near the data's own scale, not the unit-variance scale
    truth = load_checkpoint(last)["faconvlstm"]["stats"]
    t2m = recon.sel(channel="t2m").mean().item()
    assert abs(t2m - truth["mean"][0]) < 3 * truth["std"][0]


def test_foreign_checkpoint_is_refused_by_embed(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}}, path)
    with pytest.raises(CheckpointError, match="not a faconvlstm checkpoint"):
        embed(path, tmp_path / "emb.nc")


def _forecast_config(cfg):
    cfg["task"] = "forecast"
    cfg["data"]["horizon"] = 2
    cfg["model"]["target_channels"] = [0, 2]
    cfg["loss"] = {"teacher_forcing": 0.5}
    cfg["trainer"].update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    return cfg


def test_forecaster_trains_embeds_and_predicts_its_target_channels(tmp_path, tiny_config):
    last = fit(_forecast_config(tiny_config), out=tmp_path / "run")
    meta = load_checkpoint(last)["faconvlstm"]
    assert meta["model_class"] == "Forecaster" and meta["model_config"]["horizon"] == 2
    path = predict(last, tmp_path / "fc.nc", years=[2001, 2001], stride=30)
    fc = xr.open_dataset(path)  # WeatherBench2 layout, one variable per target field
    assert sorted(fc.data_vars) == ["t2m", "tp"]
    assert fc["t2m"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    assert [fc[v].attrs["units"] for v in ("t2m", "tp")] == ["K", "mm day-1"]
    assert fc.sizes["prediction_timedelta"] == 2 and fc.sizes["time"] == 12
    # valid times follow the initialisation by one and two days
    lead1 = (fc["valid_time"].isel(prediction_timedelta=0) - fc["time"]).values
    assert (lead1 == np.timedelta64(1, "D")).all()
    assert (fc["prediction_timedelta"].values == np.array([1, 2], "timedelta64[D]")).all()
    assert all(np.isfinite(fc[v].values).all() for v in fc.data_vars)
    emb = xr.open_dataset(embed(last, tmp_path / "emb.nc", years=[2001, 2001])[0])
    assert emb["embedding"].shape == (365, 8)


def test_embedding_a_netcdf_copy_of_the_training_data_matches_the_default(tmp_path, trained_run):
    cfg, out = trained_run
    last = out / "checkpoints" / "last.ckpt"
    ds, _ = synthetic(seed=cfg["seed"], **cfg["data"]["synthetic"])
    ds.to_netcdf(tmp_path / "copy.nc")
    default = embed(last, tmp_path / "a.nc", years=[2001, 2001])[0]
    from_file = embed(last, tmp_path / "b.nc", data=str(tmp_path / "copy.nc"), years=[2001, 2001])[
        0
    ]
    a, b = (xr.open_dataset(p)["embedding"] for p in (default, from_file))
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)
    assert (a.time.values == b.time.values).all()


def test_data_lacking_a_trained_variable_is_refused_and_extra_ones_ignored(tmp_path, trained_run):
    cfg, out = trained_run
    last = out / "checkpoints" / "last.ckpt"
    ds, _ = synthetic(seed=0, **cfg["data"]["synthetic"])
    ds.drop_vars("tp").to_netcdf(tmp_path / "two.nc")
    with pytest.raises(KeyError, match="tp"):
        embed(last, tmp_path / "e.nc", data=str(tmp_path / "two.nc"))
    ds.assign(extra=ds["t2m"] * 2).to_netcdf(tmp_path / "four.nc")
    assert embed(last, tmp_path / "e.nc", data=str(tmp_path / "four.nc"))[0].is_file()


def test_a_checkpoint_from_before_new_config_keys_still_resumes(tmp_path, trained_run):
    # a run saved before loss.masking / loss.clustering / data.detrend / data.standardize
    # existed: its saved config lacks them, which equals their defaults (was refused)
    cfg, out = trained_run
    shutil.copytree(out, tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=True)
    saved = ckpt["faconvlstm"]["config"]
    for section, key in (("loss", "masking"), ("loss", "clustering"), ("data", "detrend")):
        del saved[section][key]
    saved["data"].pop("standardize")
    torch.save(ckpt, path)
    cfg = deepcopy(cfg)
    cfg["trainer"]["max_epochs"] = 3
    assert load_checkpoint(fit(cfg, out=tmp_path / "run", resume=True))["global_step"] == 9
    # a real difference is still refused
    cfg["loss"] = {"masking": {"fraction": 0.3}}
    with pytest.raises(ConfigError, match="loss"):
        fit(cfg, out=tmp_path / "run", resume=True)


def test_a_forecaster_saved_before_lead_attention_resumes_and_loads_as_it_was_trained(
    tmp_path, tiny_config
):
    from faconvlstm.training import load_model

    cfg = _forecast_config(tiny_config)
    last = fit(deepcopy(cfg), out=tmp_path / "run")
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["faconvlstm"]["model_config"]["lead_attention"] == "schedule"
    for config in (ckpt["faconvlstm"]["model_config"], ckpt["hyper_parameters"]["model_config"]):
        del config["lead_attention"]  # as written before the option existed
    torch.save(ckpt, last)
    assert load_model(last)[0].lead_attention == "every"
    cfg["trainer"]["max_epochs"] = 2
    resumed = load_checkpoint(fit(deepcopy(cfg), out=tmp_path / "run", resume=True))
    assert resumed["faconvlstm"]["model_config"]["lead_attention"] == "every"
