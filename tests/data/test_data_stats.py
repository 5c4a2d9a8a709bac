"""NormStats: training-period statistics, climatology, JSON round trip."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from faconvlstm.data import NormStats, compute_climatology, compute_stats, open_gridded
from faconvlstm.data.stats import climatology_keys, subtract_climatology


def _two_period_data() -> xr.DataArray:
    """2000–2001 ~ N(0, 1); 2002 shifted by +100 — it must not leak into training stats."""
    rng = np.random.default_rng(1)
    time = pd.date_range("2000-01-01", "2002-12-31", freq="D")
    x = rng.normal(size=(time.size, 2, 3, 4))
    x[:, 1] = 5 + 3 * x[:, 1]
    x[time.year == 2002] += 100
    x[10, 0, 0, 0] = np.nan
    return xr.DataArray(
        x,
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": time,
            "channel": ["a", "b"],
            "lat": [-30.0, 0.0, 30.0],
            "lon": [0.0, 90.0, 180.0, 270.0],
        },
    ).chunk({"time": 100})


def test_stats_use_training_years_only_and_ignore_nan():
    da = _two_period_data()
    stats = compute_stats(da, (2000, 2001))
    train = da.sel(time=slice("2000", "2001")).values
    np.testing.assert_allclose(stats.mean, np.nanmean(train, axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(stats.std, np.nanstd(train, axis=(0, 2, 3)), rtol=1e-10)
    assert stats.channels == ["a", "b"]
    assert abs(stats.mean[0]) < 0.1 and stats.mean[1] == pytest.approx(5, abs=0.2)
    # A time-label slice gives the same numbers.
    by_slice = compute_stats(da, slice("2000-01-01", "2001-12-31"))
    np.testing.assert_allclose(by_slice.mean, stats.mean)


def test_all_nan_channel_is_an_error_naming_it():
    da = _two_period_data().load()
    da[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"channel\(s\) \['b'\] have no valid"):
        compute_stats(da)


def test_constant_channel_warns_and_gets_unit_std():
    da = _two_period_data().load()
    da[:, 1] = 7.0
    with pytest.warns(UserWarning, match="constant"):
        stats = compute_stats(da)
    assert stats.std[1] == 1.0 and stats.mean[1] == 7.0


def test_empty_training_period_is_an_error():
    with pytest.raises(ValueError, match="selects no time steps"):
        compute_stats(_two_period_data(), (1990, 1995))


def test_normalize_then_denormalize_is_identity_and_standardises():
    da = _two_period_data()
    stats = compute_stats(da, (2000, 2001))
    block = da.isel(time=slice(0, 50)).values
    z = stats.normalize_array(block)
    np.testing.assert_allclose(stats.denormalize_array(z), block, rtol=1e-5, atol=1e-4)
    z_train = stats.normalize(da.sel(time=slice("2000", "2001"))).values
    np.testing.assert_allclose(np.nanmean(z_train, axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(np.nanstd(z_train, axis=(0, 2, 3)), 1, atol=1e-6)


def test_save_load_round_trip_json_is_atomic(tmp_path):
    stats = compute_stats(_two_period_data(), (2000, 2001))
    path = stats.save(tmp_path / "ckpt" / "stats.json")
    assert json.loads(path.read_text())["channels"] == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]  # no temp files left
    back = NormStats.load(path)
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)
    assert NormStats.from_dict(stats.to_dict()).channels == ["a", "b"]


def test_channel_mismatch_is_explained():
    stats = compute_stats(_two_period_data())
    with pytest.raises(ValueError, match=r"computed for channels \['a', 'b'\].*\['b', 'a'\]"):
        stats.check_channels(["b", "a"])


def _seasonal_data(noise: float = 0.0, years=("2000", "2003")) -> xr.DataArray:
    time = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")
    doy = time.day_of_year.values
    signal = 10 * np.cos(2 * np.pi * (doy - 200) / 366)
    rng = np.random.default_rng(0)
    x = signal[:, None, None, None] + noise * rng.normal(size=(time.size, 1, 2, 2))
    return xr.DataArray(
        x,
        dims=("time", "channel", "lat", "lon"),
        coords={"time": time, "channel": ["t"], "lat": [0.0, 10.0], "lon": [0.0, 180.0]},
    )


def test_dayofyear_climatology_pools_a_61_day_circular_window():
    da = _seasonal_data(noise=1.0)
    clim = compute_climatology(da, "dayofyear", window=61)
    x = da.values[:, 0, 0, 0]
    doy = da["time"].dt.dayofyear.values
    for k in (1, 100, 366):  # day 1 pools late December; 366 pools early January
        dist = np.minimum(np.abs(doy - k), 366 - np.abs(doy - k))
        expected = x[dist <= 30].mean()
        assert clim.sel(key=k).values[0, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_climatology_anomalies_remove_the_seasonal_cycle():
    da = _seasonal_data(noise=0.5)
    stats = compute_stats(da, climatology=True, climatology_window=15)
    assert stats.climatology_kind == "dayofyear"
    z = stats.normalize(da).values
    # Raw std ≈ 7 (cycle); anomaly std is the noise 0.5 plus the smoothing bias of a
    # 15-day window on a 366-day cosine (< 1 %): normalised anomalies have std ≈ 1 and no
    # remaining correlation with the cycle.
    cycle = np.cos(2 * np.pi * (da["time"].dt.dayofyear.values - 200) / 366)
    assert abs(np.corrcoef(z[:, 0, 0, 0], cycle)[0, 1]) < 0.05
    assert np.std(da.values) > 6 and stats.std[0] < 0.6


def test_lazy_climatology_subtraction_equals_eager():
    da = _seasonal_data(noise=1.0)
    clim = compute_climatology(da, "dayofyear")
    eager = subtract_climatology(da, clim).values
    lazy = subtract_climatology(da.chunk({"time": 97, "lat": 1}), clim)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, eager, rtol=1e-6)


def test_monthly_data_get_a_month_climatology_and_it_round_trips(tmp_path):
    time = pd.date_range("2000-01-01", periods=48, freq="MS")
    x = np.arange(48)[:, None, None, None] % 12 + np.zeros((48, 1, 2, 2))
    da = xr.DataArray(
        x.astype(float),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": time, "channel": ["m"], "lat": [0.0, 1.0], "lon": [0.0, 1.0]},
    )
    da = da + np.random.default_rng(0).normal(scale=0.1, size=da.shape)
    stats = compute_stats(da, climatology=True)
    assert stats.climatology_kind == "month"
    np.testing.assert_allclose(
        stats.climatology_values.values[:, 0, 0, 0], np.arange(12), atol=0.15
    )
    path = stats.save(tmp_path / "s.json")
    assert (tmp_path / "s.climatology.nc").exists()
    back = NormStats.load(path)
    z0, z1 = stats.normalize_array(da.values, time), back.normalize_array(da.values, time)
    np.testing.assert_allclose(z0, z1, rtol=1e-6)
    np.testing.assert_array_equal(climatology_keys(time[:3], "month"), [1, 2, 3])
    # Batched denormalisation, as after collate_windows: z (B, T, C, H, W), times (B, T).
    batch_times = np.stack([time.values[:12], time.values[12:24]])
    z_batch = np.stack([z0[:12], z0[12:24]])
    np.testing.assert_allclose(
        stats.denormalize_array(z_batch, batch_times),
        np.stack([da.values[:12], da.values[12:24]]),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="pass the time stamps"):
        stats.normalize_array(da.values)


def test_stats_on_real_sample_with_land_mask():
    from faconvlstm.data import sample

    da = open_gridded(sample("sst"))
    stats = compute_stats(da, (1963, 1999))
    values = da.sel(time=slice("1963", "1999")).values
    assert stats.std[0] == pytest.approx(np.nanstd(values), rel=1e-10)


# ---------------------------------------------------------------- detrend / season std


def _trend_data(
    calendar: str | None = None, years=("2000", "2005"), seed: int = 3, cycle: float = 2.0
):
    """Daily data 2000–2005 with a planted per-grid-point linear trend (units per day),
    a seasonal cycle of amplitude ``cycle`` and noise whose std is 3 in DJF and 1 in the
    other seasons."""
    if calendar is None:
        time = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")
    else:
        time = xr.date_range(
            f"{years[0]}-01-01",
            f"{years[1]}-12-31",
            freq="D",
            calendar=calendar,
            use_cftime=True,
        )
    tt = xr.DataArray(np.asarray(time), dims="time")
    month = tt.dt.month.values
    doy = tt.dt.dayofyear.values
    days = np.arange(time.size, dtype=float) - 730.0  # 0 mid-2000…2003: equal point means
    slope = np.array([[[1e-3, -2e-3], [0.0, 5e-3]], [[4e-3, 1e-3], [-1e-3, 0.0]]])  # (C,H,W)
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(time.size, 2, 2, 2))
    noise[np.isin(month, (12, 1, 2))] *= 3.0
    x = (
        10.0
        + cycle * np.cos(2 * np.pi * doy / 365.0)[:, None, None, None]
        + days[:, None, None, None] * slope
        + noise
    )
    da = xr.DataArray(
        x,
        dims=("time", "channel", "lat", "lon"),
        coords={"time": time, "channel": ["a", "b"], "lat": [-10.0, 10.0], "lon": [0.0, 90.0]},
    )
    return da, slope


def _slope_per_day(z: np.ndarray, tau: np.ndarray) -> np.ndarray:
    t = tau - tau.mean()
    return np.tensordot(t, z - z.mean(0), axes=(0, 0)) / (t @ t)


@pytest.mark.parametrize("calendar", [None, "noleap"])
@pytest.mark.parametrize(
    ("climatology", "detrend", "standardize"),
    [(False, True, "global"), (False, False, "season"), (True, True, "season")],
)
def test_detrend_and_season_std_round_trip_exactly(calendar, climatology, detrend, standardize):
    from faconvlstm.data.stats import days_since_epoch

    da, _ = _trend_data(calendar)
    stats = compute_stats(
        da, (2000, 2003), climatology=climatology, detrend=detrend, standardize=standardize
    )
    assert stats.detrend is detrend and stats.standardize == standardize
    times = da["time"].values
    x = da.values.astype("float32")
    z = stats.normalize_array(x, times)
    # float32 arithmetic on values ~10-20: relative error a few 1e-7 per operation
    np.testing.assert_allclose(stats.denormalize_array(z, times), x, rtol=1e-5, atol=1e-5)
    # the lazy DataArray path gives the same numbers
    np.testing.assert_allclose(stats.normalize(da).values, z, rtol=1e-5, atol=1e-5)
    # batched (B, T) stamps, as after collate_windows
    zb = np.stack([z[:30], z[400:430]])
    tb = np.stack([times[:30], times[400:430]])
    np.testing.assert_allclose(
        stats.denormalize_array(zb, tb), np.stack([x[:30], x[400:430]]), rtol=1e-5, atol=1e-5
    )
    # days since 1970-01-01 in the data's calendar: 30 years of 365 days (+ 7 leap days
    # in the Gregorian calendar) before 2000-01-01, then one per daily step
    tau = days_since_epoch(times)
    assert tau[0] == (10950.0 if calendar == "noleap" else 10957.0)
    assert np.all(np.diff(tau) == 1.0)


def test_detrend_removes_a_planted_trend_fitted_on_training_years_only():
    from faconvlstm.data.stats import days_since_epoch

    da, slope = _trend_data()
    stats = compute_stats(da, (2000, 2003), detrend=True)
    # fitted slope ≈ planted: its standard error is σ/√(Σ(t−t̄)²) ≈ 2/√(1461³/12) ≈ 5e-5
    # per day for the noise here (std 1–3), so 5e-4 is ten standard errors
    np.testing.assert_allclose(stats.trend_slope, slope, atol=5e-4)
    train = da.sel(time=slice("2000", "2003"))
    tau = days_since_epoch(train["time"].values)
    assert np.abs(_slope_per_day(train.values, tau)).max() > 1e-3  # the raw data trend
    z = stats.normalize_array(train.values, train["time"].values)
    # least squares leaves exactly no linear trend on the fitting period (float32 rounding)
    np.testing.assert_allclose(_slope_per_day(z, tau), 0.0, atol=1e-7)
    # each grid point keeps its training mean (only the slope is removed)
    raw_mean = (train.values.mean(0) - stats.mean[:, None, None]) / stats.std[:, None, None]
    np.testing.assert_allclose(z.mean(0), raw_mean, atol=1e-5)
    # changing the held-out years (2004-2005) leaves every statistic unchanged
    other = da.copy(data=da.values.copy())
    held = other["time"].dt.year.values >= 2004
    other.values[held] = 1000.0 + 50 * np.random.default_rng(9).normal(
        size=other.values[held].shape
    )
    again = compute_stats(other, (2000, 2003), detrend=True, standardize="season")
    base = compute_stats(da, (2000, 2003), detrend=True, standardize="season")
    for name in ("mean", "std", "trend_slope", "season_std"):
        np.testing.assert_array_equal(getattr(again, name), getattr(base, name))
    assert again.trend_center == base.trend_center


def test_season_std_follows_the_planted_seasonal_variance():
    da, _ = _trend_data(cycle=0.0)
    stats = compute_stats(da, (2000, 2003), detrend=True, standardize="season")
    # noise std 3 in DJF and 1 otherwise; each σ pools n ≈ 4 years × 90 days × 4 points
    # ≈ 1440 values, relative standard error 1/√(2n) ≈ 2 %: 8 % is four standard errors
    np.testing.assert_allclose(stats.season_std[:, 0], [3.0, 1.0, 1.0, 1.0], rtol=0.08)
    times = da["time"].values
    z = stats.normalize_array(da.values, times)
    month = da["time"].dt.month.values
    for months in ((12, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)):
        train = np.isin(month, months) & (da["time"].dt.year.values <= 2003)
        assert np.std(z[train]) == pytest.approx(1.0, abs=0.08)  # as above, both channels


def test_season_missing_from_training_falls_back_to_global_std():
    da, _ = _trend_data()
    with pytest.warns(UserWarning, match=r"season\(s\) \['SON'\]"):
        stats = compute_stats(da.sel(time=slice("2000-01", "2000-08")), standardize="season")
    np.testing.assert_array_equal(stats.season_std[3], stats.std)


def test_new_options_round_trip_through_json_and_checkpoint_and_old_files_load(tmp_path):
    from faconvlstm.training.checkpoint import stats_from_meta, stats_to_meta

    da, _ = _trend_data("noleap")
    stats = compute_stats(da, (2000, 2003), climatology=True, detrend=True, standardize="season")
    times = da["time"].values[:40]
    x = da.values[:40]
    z = stats.normalize_array(x, times)
    back = NormStats.load(stats.save(tmp_path / "s.json"))
    meta = stats_from_meta(stats_to_meta(stats))
    for other in (back, meta, NormStats.from_dict(stats.to_dict(), stats.climatology_values)):
        assert other.detrend and other.standardize == "season"
        np.testing.assert_array_equal(other.trend_slope, stats.trend_slope)
        np.testing.assert_array_equal(other.season_std, stats.season_std)
        np.testing.assert_allclose(other.normalize_array(x, times), z, rtol=1e-6)
    # statistics written before the options existed load as global, no trend
    plain = compute_stats(da, (2000, 2003))
    old = {k: v for k, v in plain.to_dict().items() if k in OLD_KEYS}
    loaded = NormStats.from_dict(old)
    assert not loaded.detrend and loaded.standardize == "global"
    np.testing.assert_array_equal(loaded.normalize_array(x), plain.normalize_array(x))


OLD_KEYS = ("channels", "mean", "std", "climatology", "climatology_kind")
OLD_KEYS += ("climatology_window", "period")


def test_detrend_and_season_need_time_stamps_and_valid_values():
    da, _ = _trend_data()
    with pytest.raises(ValueError, match="remove a linear trend: pass the time stamps"):
        compute_stats(da, detrend=True).normalize_array(da.values[:5])
    with pytest.raises(ValueError, match="standardise per season: pass the time stamps"):
        compute_stats(da, standardize="season").denormalize_array(da.values[:5])
    with pytest.raises(ValueError, match="standardize must be one of global, season"):
        compute_stats(da, standardize="monthly")


def test_data_config_options_reach_the_training_statistics():
    from faconvlstm.training import GriddedDataModule
    from faconvlstm.training.config import ConfigError, load_config

    raw = {
        "data": {
            "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
            "window": 6,
            "train_years": [2000, 2000],
            "val_years": [2001, 2001],
            "detrend": True,
            "standardize": "season",
        }
    }
    cfg = load_config(raw)
    data = GriddedDataModule(cfg.data, seed=0)
    data.setup("fit")
    assert data.stats.detrend and data.stats.standardize == "season"
    assert data.stats.trend_slope.shape == (len(data.stats.channels), 8, 16)
    item = data.train_set[0]
    z = data.stats.normalize_array(data.train_set.da.values[:6], data.train_set.times[:6])
    np.testing.assert_allclose(item["x"], z, rtol=1e-6)  # the windows use these statistics
    assert not load_config({}).data.detrend and load_config({}).data.standardize == "global"
    for key, value, match in (
        ("standardize", "monthly", r"'data\.standardize': expected 'global' \| 'season'"),
        ("detrend", "yes", r"'data\.detrend': expected bool"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config({"data": {key: value}})
