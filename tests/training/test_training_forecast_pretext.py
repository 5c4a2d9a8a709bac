"""The forecasting pretext of the autoencoder task (``loss.forecast``, issue 14)."""

import copy
import csv

import numpy as np
import pytest
import torch

from faconvlstm.losses import latitude_weights, weighted_mse
from faconvlstm.models import SequenceAutoencoder
from faconvlstm.training import AutoencoderTask, fit
from faconvlstm.training.config import (
    ConfigError,
    ForecastPretextConfig,
    LossConfig,
    load_config,
)
from faconvlstm.training.fit import build_model

B, T, C, H, W = 2, 6, 2, 8, 16
LAT = np.linspace(-70, 70, H)


def _batch(seed: int = 0) -> dict:
    """A normalised batch with a land column (never valid) and one NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, H, W, generator=g)
    mask = torch.ones(B, T, C, H, W, dtype=torch.bool)
    mask[..., 3] = False
    x[0, 4, 1, 2, 5] = float("nan")
    return {"x": x, "mask": mask, "phase": torch.linspace(0, 0.5, T).repeat(B, 1)}


def _model(cell: str = "fa", leads: int = 2, seed: int = 0, **head) -> SequenceAutoencoder:
    torch.manual_seed(seed)
    return SequenceAutoencoder(
        C,
        filters=(4,),
        embed_dim=8,
        cell=cell,
        forecast_leads=leads,
        head_kwargs={"causal": True, **head},
    )


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_forecast_has_one_map_per_step_and_lead(cell):
    out = _model(cell, leads=3).eval()(_batch()["x"])
    assert out["forecast"].shape == (B, T, 3, C, H, W)
    assert out["recon"].shape == (B, T, C, H, W)


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_the_forecast_from_step_t_never_sees_a_later_step(cell):
    # the whole point of the pretext: x[t+1:] must not reach forecast[:, :t+1]
    model = _model(cell, leads=2, norm="layer").eval()
    x = _batch()["x"].nan_to_num()
    later = x.clone()
    later[:, 3:] += 3.0 * torch.randn_like(later[:, 3:])
    a, b = model(x)["forecast"], model(later)["forecast"]
    assert torch.equal(a[:, :3], b[:, :3])
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-3  # and the change does reach step 3


def test_a_bidirectional_head_is_refused():
    with pytest.raises(ValueError, match=r"causal subspace head"):
        SequenceAutoencoder(C, filters=(4,), embed_dim=8, forecast_leads=1)
    with pytest.raises(ValueError, match=r"forecast_leads must be >= 0"):
        _model(leads=-1)
    with pytest.raises(TypeError, match=r"forecast_leads must be an int"):
        _model(leads=1.5)


def test_leads_zero_is_todays_model_and_the_head_is_drawn_last():
    plain = _model(leads=0)
    assert "forecast_leads" not in plain.get_config()  # old checkpoints and configs
    assert "forecast" not in plain.eval()(_batch()["x"])
    with_head = _model(leads=2)
    assert with_head.get_config()["forecast_leads"] == 2
    a, b = plain.state_dict(), with_head.state_dict()
    assert set(b) - set(a) == {"forecast_out.weight", "forecast_out.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    rebuilt = SequenceAutoencoder.from_config(with_head.get_config())
    rebuilt.load_state_dict(b)  # strict: same keys and shapes


def test_the_loss_is_reconstruction_plus_weight_times_the_mean_lead_error():
    batch = _batch()
    model = _model(leads=2)
    task = AutoencoderTask(
        model, lat=LAT, loss=LossConfig(forecast=ForecastPretextConfig(weight=0.5, leads=2))
    )
    out = model(batch["x"], times=batch["phase"], mask=batch["mask"])
    w, x, m = latitude_weights(LAT), batch["x"], batch["mask"]
    recon = weighted_mse(out["recon"], x, w, m) + model.regularization_loss()
    # written out by hand: lead 1 scores steps 0..4 against 1..5, lead 2 steps 0..3 vs 2..5
    lead1 = weighted_mse(out["forecast"][:, :5, 0], x[:, 1:], w, m[:, 1:])
    lead2 = weighted_mse(out["forecast"][:, :4, 1], x[:, 2:], w, m[:, 2:])
    loss, mse = task._loss(batch, train=True)
    torch.testing.assert_close(loss, recon + 0.5 * (lead1 + lead2) / 2)
    torch.testing.assert_close(mse, weighted_mse(out["recon"], x, w, m))
    assert torch.isfinite(loss)  # the NaN target cell is ignored, not propagated
    val_loss, _ = task._loss(batch, train=False)  # validation: the reconstruction only
    torch.testing.assert_close(val_loss, recon)


def test_a_broadcast_mask_still_masks_the_forecast_targets():
    # an ocean mask (H, W) must count exactly as the same mask given per step
    batch = _batch()
    task = AutoencoderTask(
        _model(leads=2), lat=LAT, loss=LossConfig(forecast={"weight": 1.0, "leads": 2})
    )
    task._outputs = task.model(batch["x"], times=batch["phase"], mask=batch["mask"])
    per_step = task._forecast_loss(batch)
    broadcast = task._forecast_loss({**batch, "mask": batch["mask"][0, 0, 0]})
    unmasked = task._forecast_loss({**batch, "mask": None})
    torch.testing.assert_close(broadcast, per_step)
    assert not torch.isclose(unmasked, per_step)  # the land column does count without it


def test_weight_zero_is_todays_objective_bit_for_bit():
    batch = _batch()
    model = _model(leads=0)
    plain = AutoencoderTask(model, lat=LAT)
    off = AutoencoderTask(model, lat=LAT, loss=LossConfig(forecast={"weight": 0.0, "leads": 3}))
    assert torch.equal(plain._loss(batch, True)[0], off._loss(batch, True)[0])


def test_the_pretext_trains_the_forecast_below_persistence_of_the_mean():
    # a travelling wave is predictable one step ahead; a few hundred steps of the pretext
    # must forecast it better than predicting zero (the normalised mean), which the
    # untrained head does (its error is that of zero plus noise)
    torch.manual_seed(0)
    t = torch.arange(T + 40, dtype=torch.float32)
    lon = torch.linspace(0, 2 * np.pi, W)
    wave = torch.sin(lon[None, :] - 0.6 * t[:, None])  # (time, W)
    series = wave[:, None, None, :].expand(-1, C, H, W)
    x = torch.stack([series[s : s + T] for s in range(0, 40, 5)])
    batch = {"x": x, "mask": None, "phase": torch.zeros(x.shape[:2])}
    model = _model(leads=1, norm="layer")
    task = AutoencoderTask(model, loss=LossConfig(forecast={"weight": 1.0, "leads": 1}))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        task._loss(batch, train=True)[0].backward()
        opt.step()
    with torch.no_grad():
        task._outputs = model(x, times=batch["phase"])
        err = float(task._forecast_loss(batch))
    zero = float(x[:, 1:].square().mean())
    assert err < 0.5 * zero, (err, zero)


@pytest.mark.parametrize(
    ("loss", "model", "match"),
    [
        ({"weight": -1.0}, {}, r"'loss\.forecast\.weight': must be >= 0"),
        ({"weight": 1.0, "leads": 0}, {}, r"'loss\.forecast\.leads'.*\[1, 5\]"),
        ({"weight": 1.0, "leads": 6}, {}, r"'loss\.forecast\.leads'.*\[1, 5\]"),
        ({"weight": 1.0}, {"head_kwargs": {"causal": False}}, r"'model\.head_kwargs\.causal'"),
        ({}, {"forecast_leads": 2}, r"'model\.forecast_leads': set by the forecasting"),
        ({"wieght": 1.0}, {}, r"unknown config key 'loss\.forecast\.wieght'"),
    ],
)
def test_bad_pretext_settings_name_the_dotted_key(tiny_config, loss, model, match):
    cfg = copy.deepcopy(tiny_config)
    cfg["loss"] = {"forecast": loss}
    cfg["model"].update(model)
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)


def test_the_pretext_is_refused_for_the_forecast_task(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg.update(task="forecast", loss={"forecast": {"weight": 1.0}})
    cfg["data"]["horizon"] = 2
    with pytest.raises(ConfigError, match=r"'loss\.forecast\.weight': .*autoencoder task"):
        load_config(cfg)


def test_one_switch_builds_the_leads_and_a_causal_head(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["model"]["head_kwargs"] = {"norm": "batch"}
    cfg["loss"] = {"forecast": {"weight": 1.0, "leads": 2}}
    model = build_model(load_config(cfg), n_channels=3, periodic_lon=False)
    assert model.forecast_leads == 2 and model.encoder.head.causal
    assert model.encoder.head.norm_kind == "batch"  # the user's head settings are kept
    cfg["loss"] = {}
    plain = build_model(load_config(cfg), n_channels=3, periodic_lon=False)
    assert plain.forecast_out is None and not plain.encoder.head.causal


def test_a_pretext_run_trains_logs_both_forecast_mses_and_reloads(tmp_path, tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    cfg["loss"] = {"forecast": {"weight": 0.5, "leads": 2}}
    last = fit(cfg, out=tmp_path / "run", summary=False)
    with open(tmp_path / "run" / "csv" / "version_0" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    for key in ("train/forecast_mse", "val/forecast_mse"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and all(np.isfinite(values)), key
    restored = AutoencoderTask.load_from_checkpoint(last, map_location="cpu")
    assert restored.loss_cfg.forecast == ForecastPretextConfig(weight=0.5, leads=2)
    assert restored.model.forecast_leads == 2 and restored.model.encoder.head.causal
