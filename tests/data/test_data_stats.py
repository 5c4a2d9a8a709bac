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
