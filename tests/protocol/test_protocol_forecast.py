"""`compare` for forecasters (issue 12): config, baselines, scores, WB2 files, report, resume."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tiny_compare import TINY

from faconvlstm.data import compute_stats
from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.forecast import (
    ForecastResults,
    forecast_targets,
    init_starts,
    score,
    training_climatology,
)
from faconvlstm.protocol.plan import Layout, make_plan
from faconvlstm.protocol.results import Results
from faconvlstm.protocol.runs import compare
from faconvlstm.training.config import ConfigError

HORIZON = 3
#: The tiny forecast comparison: 2 subjects + 1 variant × 2 seeds, 8×16 grid, 2 epochs of
#: 3 batches (about 15 s on one core), test year 2001.
TINY_FC = {
    "seeds": [0, 1],
    "threads": 1,
    "models": ["fa", "convlstm"],
    "variants": [{"name": "fa_no_attention", "model": {"layer_kwargs": {"attention_every": 0}}}],
    "train": {
        "task": "forecast",
        "data": {
            "source": "synthetic",
            "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
            "window": 4,
            "horizon": HORIZON,
            "stride": 4,
            "train_years": [2000, 2000],
            "test_years": [2001, 2001],
            "batch_size": 16,
        },
        "model": {"filters": [4], "embed_dim": 8},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "limit_train_batches": 3,
            "limit_val_batches": 2,
            "log_every_n_steps": 1,
        },
        "checkpoint": {"every_n_train_steps": None},
    },
    "evaluation": {"probe_windows": 4, "climatology_smooth_days": 31},
    "cost": {"enabled": False},
}


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """``(out, results.json as a dict)`` of the TINY_FC comparison."""
    out = tmp_path_factory.mktemp("forecast")
    path = compare(copy.deepcopy(TINY_FC), out, progress=False)
    return out, json.loads(path.read_text())


# ---------------------------------------------------------------------------------- config
def test_forecast_config_is_accepted_with_only_the_cell_differing():
    cfg = load_compare_config(TINY_FC)
    plan = make_plan(cfg, "unused")
    runs = {(s.model, s.seed): s.run for s in plan.specs}
    assert {r.task for r in runs.values()} == {"forecast"}
    fa, cl = runs[("fa", 0)].to_dict(), runs[("convlstm", 0)].to_dict()
    assert fa["model"].pop("cell") == "fa" and cl["model"].pop("cell") == "convlstm"
    assert fa == cl  # same data, budget and seed: only the cell differs
    assert runs[("fa", 1)].seed == 1


def test_eof_is_refused_for_forecasts_naming_models():
    with pytest.raises(ConfigError, match=r"compare config key 'models': 'eof' .* not forecast"):
        load_compare_config({**TINY_FC, "models": ["fa", "convlstm", "eof"]})


def test_forecast_needs_test_years_and_forecasting_variants():
    data = {k: v for k, v in TINY_FC["train"]["data"].items() if k != "test_years"}
    with pytest.raises(ConfigError, match=r"'train\.data\.test_years'"):
        load_compare_config({**TINY_FC, "train": {**TINY_FC["train"], "data": data}})
    # a variant switching back to autoencoding must drop the horizon too: refused either way
    bad = [{"name": "ae", "train": {"task": "autoencoder", "data": {"horizon": 0}}}]
    with pytest.raises(ConfigError, match=r"'variants\[0\]\.train\.task'"):
        load_compare_config({**TINY_FC, "variants": bad})


def test_autoencoder_compare_still_accepted_unchanged():
    cfg = load_compare_config(TINY)
    assert make_plan(cfg, "unused").reference.task == "autoencoder"


# ---------------------------------------------------------------------------------- baselines
def _field(values, start="2001-01-01", lat=(-45.0, 0.0, 45.0)):
    """A hand-made ``(time, channel, lat, lon)`` DataArray, daily from ``start``."""
    values = np.asarray(values, dtype="float32")
    times = pd.date_range(start, periods=values.shape[0], freq="D").values
    return xr.DataArray(
        values,
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": times,
            "channel": [f"v{i}" for i in range(values.shape[1])],
            "lat": np.asarray(lat),
            "lon": np.arange(values.shape[3]) * 90.0,
        },
    )


def test_initialisations_follow_predict_windows():
    # windows of T=4 inputs + L=3 leads every 3 steps in 20 steps: starts 0, 3, …, 12
    assert init_starts(20, 4, 3).tolist() == [0, 3, 6, 9, 12]
    with pytest.raises(ValueError, match="test_years"):
        init_starts(6, 4, 3)


def test_persistence_holds_the_last_input_frame_and_is_exact_on_a_constant_field():
    rng = np.random.default_rng(0)
    spatial = rng.normal(size=(1, 2, 3, 4))
    constant = _field(np.repeat(spatial, 30, axis=0))
    t = forecast_targets(constant, 4, HORIZON, lambda times: np.zeros((len(times), 2, 3, 4)))
    rmse, _ = score(t.persistence, t.truth, t.climatology, t.lat)
    assert rmse.shape == (HORIZON, 2)
    assert np.all(rmse == 0.0)  # exact: the same float32 values compared

    moving = _field(rng.normal(size=(30, 2, 3, 4)))
    t = forecast_targets(moving, 4, HORIZON, lambda times: np.zeros((len(times), 2, 3, 4)))
    init_idx = init_starts(30, 4, HORIZON) + 3
    for n in range(HORIZON):
        np.testing.assert_array_equal(t.persistence[:, n], moving.values[init_idx])
        np.testing.assert_array_equal(t.truth[:, n], moving.values[init_idx + 1 + n])
    assert (t.lead / np.timedelta64(1, "D")).tolist() == [1.0, 2.0, 3.0]
    assert t.init.tolist() == moving["time"].values[init_idx].tolist()


def _seasonal(start: str, days: int, offset: float = 0.0) -> xr.DataArray:
    """A field that is a function of the day of year only (plus a spatial pattern and a
    constant ``offset``)."""
    times = pd.date_range(start, periods=days, freq="D")
    cycle = 10.0 * np.sin(2 * np.pi * times.day_of_year.values / 365.0)
    pattern = np.arange(2 * 3 * 4, dtype=float).reshape(1, 2, 3, 4)
    return _field(cycle[:, None, None, None] + pattern + offset, start=start)


@pytest.mark.parametrize("anomalies", [False, True])
def test_climatology_baseline_is_the_training_climatology(anomalies):
    # two training years at ±1 around the cycle: their day-of-year mean is the cycle
    train = xr.concat(
        [_seasonal("2001-01-01", 365, 1.0), _seasonal("2002-01-01", 365, -1.0)], "time"
    )
    test = _seasonal("2003-01-01", 365)
    # window 1: no pooling over neighbouring days, which would damp the cycle
    stats = (
        compute_stats(train, climatology="dayofyear", climatology_window=1) if anomalies else None
    )
    clim, kind = training_climatology(train, stats, smooth_days=1)
    assert ("zero anomaly" in kind) == anomalies
    t = forecast_targets(test, 4, HORIZON, clim, climatology_kind=kind)
    # the same calendar (all years have 365 days): the baseline is the cycle at the valid
    # time's day of year; 1e-4 covers the float32 climatology tables of values up to ~35
    days = pd.DatetimeIndex(t.valid.ravel()).day_of_year.values
    expected = _seasonal("2001-01-01", 365).values[days - 1].reshape(t.climatology.shape)
    np.testing.assert_allclose(t.climatology, expected, atol=1e-4)
    if anomalies:  # zero anomaly in the normalisation's own terms
        z = stats.normalize_array(t.climatology.reshape(-1, 2, 3, 4), t.valid.ravel())
        np.testing.assert_allclose(z, 0.0, atol=1e-4)
    rmse, acc = score(t.climatology, t.truth, t.climatology, t.lat)
    np.testing.assert_allclose(rmse, 0.0, atol=1e-4)
    assert np.isnan(acc).all()  # no anomaly: ACC is undefined (0/0)


def test_scores_are_in_field_units_and_acc_is_one_for_the_truth():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(5, HORIZON, 2, 3, 4))
    clim = rng.normal(size=truth.shape)
    lat = np.array([-45.0, 0.0, 45.0])
    rmse, acc = score(truth + 2.5, truth, clim, lat)
    np.testing.assert_allclose(rmse, 2.5, rtol=1e-12)  # area weights have mean 1
    _, acc = score(truth, truth, clim, lat)
    np.testing.assert_allclose(acc, 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------------- end to end
def test_results_carry_per_lead_scores_for_models_and_baselines(forecast_run):
    out, results = forecast_run
    fc = results["forecast"]
    assert results["models"] == {} and fc["version"] == 1
    channels = results["data"]["channels"]
    assert fc["channels"] == channels and fc["units"] == ["K", "m", "mm day-1"]
    assert fc["lead_hours"] == [24.0, 48.0, 72.0]
    shape = (HORIZON, len(channels))
    assert set(fc["models"]) == {"fa", "convlstm", "fa_no_attention"}
    for model in fc["models"].values():
        assert [s["seed"] for s in model["seeds"]] == [0, 1]
        for s in model["seeds"]:
            assert np.shape(s["rmse"]) == shape and np.shape(s["acc"]) == shape
            assert s["train_seconds"] > 0 and s["model_params"] > 0
        assert np.shape(model["summary"]["rmse_sd"]) == shape
        rmse = np.array([s["rmse"] for s in model["seeds"]])
        np.testing.assert_allclose(model["summary"]["rmse"], rmse.mean(0))
    assert set(fc["baselines"]) == {"persistence", "climatology"}
    assert np.shape(fc["baselines"]["persistence"]["rmse"]) == shape
    assert all(v is None for row in fc["baselines"]["climatology"]["acc"] for v in row)
    # the same initialisations: every seed's RMSE is of the same order as persistence's
    # (the residual forecaster starts as persistence; 2 epochs move it little)
    pers = np.array(fc["baselines"]["persistence"]["rmse"])
    fa0 = np.array(fc["models"]["fa"]["seeds"][0]["rmse"])
    assert np.all((fa0 > 0.5 * pers) & (fa0 < 2.0 * pers))
    assert Results.from_dict(results).to_dict() == results


def test_forecast_files_are_weatherbench2_layout_in_physical_units(forecast_run):
    out, results = forecast_run
    fc = results["forecast"]
    for name, model in fc["models"].items():
        for s in model["seeds"]:
            assert s["forecast_file"] == f"forecasts/{name}_seed{s['seed']}.nc"
            assert (out / s["forecast_file"]).exists()
    with xr.open_dataset(out / "forecasts" / "fa_seed0.nc") as ds:
        assert ds["prediction_timedelta"].dtype.kind == "m"
        assert (ds["prediction_timedelta"].values / np.timedelta64(1, "h")).tolist() == [
            24.0,
            48.0,
            72.0,
        ]
        assert set(ds.data_vars) == {"t2m", "z500", "tp"}
        for var, unit in zip(("t2m", "z500", "tp"), fc["units"]):
            assert ds[var].dims == ("time", "prediction_timedelta", "latitude", "longitude")
            assert ds[var].attrs["units"] == unit
        assert ds["time"].size == fc["n_init"]
        assert ds["valid_time"].dims == ("time", "prediction_timedelta")
        # denormalised: temperatures in kelvin, not standardised units
        assert 200.0 < float(ds["t2m"].mean()) < 330.0


def test_report_has_the_tables_and_the_scorecard(forecast_run):
    out, _ = forecast_run
    layout = Layout(out)
    report = layout.report.read_text()
    link = layout.figure_link("forecast_scorecard")
    assert f"]({link})" in report and "% change of latitude-weighted RMSE vs persistence" in report
    assert layout.figure("forecast_scorecard").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### t2m (K)" in report and "| RMSE +1 d |" in report and "| ACC +3 d |" in report
    for row in ("| FAConvLSTM |", "| ConvLSTM |", "| fa_no_attention |", "| persistence |"):
        assert row in report


def test_rerun_resumes_without_training_or_forecasting(forecast_run, monkeypatch):
    out, first = forecast_run
    import faconvlstm.protocol.forecast_runs as fr

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained or forecast again")

    monkeypatch.setattr(fr, "fit", refuse)
    monkeypatch.setattr(fr, "predict", refuse)
    again = json.loads(compare(copy.deepcopy(TINY_FC), out, progress=False).read_text())
    assert again["forecast"] == first["forecast"]


def test_best_checkpoint_forecasts_again_from_best_ckpt_without_training(
    forecast_run, tmp_path, monkeypatch
):
    src, first = forecast_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    import faconvlstm.protocol.forecast_runs as fr

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    forecast_from = []
    real_predict = fr.predict

    def predict(ckpt, *args, **kwargs):
        forecast_from.append(Path(ckpt).name)
        return real_predict(ckpt, *args, **kwargs)

    monkeypatch.setattr(fr, "fit", refuse)
    monkeypatch.setattr(fr, "predict", predict)
    cfg = copy.deepcopy(TINY_FC)
    cfg["evaluation"]["checkpoint"] = "best"
    again = json.loads(compare(cfg, out, progress=False).read_text())
    assert forecast_from == ["best.ckpt"] * 6  # 3 subjects × 2 seeds, each forecast again
    for name, model in again["forecast"]["models"].items():
        for s, before in zip(model["seeds"], first["forecast"]["models"][name]["seeds"]):
            assert before["checkpoint"] == "last" and s["checkpoint"] == "best"
            assert s["checkpoint_epoch"] == int(np.argmin(s["history"]["val_loss"])) + 1
    assert "`best.ckpt` (the epoch of lowest validation loss" in (out / "report.md").read_text()


def test_forecast_section_round_trips_and_is_absent_from_autoencoder_results(forecast_run):
    _, results = forecast_run
    section = ForecastResults.from_dict(results["forecast"])
    assert section.to_dict() == results["forecast"]
    with pytest.raises(ValueError, match="forecast results version 2"):
        ForecastResults.from_dict({**results["forecast"], "version": 2})
    autoencoder = Results.from_dict({**results, "forecast": None})
    assert "forecast" not in autoencoder.to_dict()


def test_shipped_forecast_config_loads():
    cfg = load_compare_config("compare_forecast")
    plan = make_plan(cfg, "unused")
    assert plan.reference.task == "forecast" and plan.reference.data.horizon == 4
    assert cfg.models == ["fa", "convlstm"] and plan.reference.data.test_years == [2004, 2004]
