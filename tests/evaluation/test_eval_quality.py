"""Quality metrics: WeatherBench2 RMSE and ACC, clustering scores, composite regime scores."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from faconvlstm.evaluation import (
    acc,
    ari_nmi_truth,
    cluster_quality,
    dayofyear_climatology,
    intra_inter_cluster_rmse,
    lat_weighted_rmse,
    spatial_correlation_matrix,
)

LAT = np.arange(-87.5, 90.0, 5.0)  # 36 rows, no pole rows
LON = np.arange(0.0, 360.0, 10.0)  # 36 columns


def _wb2_weights(lat):
    """Independent WeatherBench2 weights for an equally spaced global grid."""
    d = np.deg2rad(abs(lat[1] - lat[0]) / 2)
    w = np.sin(np.deg2rad(lat) + d) - np.sin(np.deg2rad(lat) - d)
    return w / w.mean()


def _field(values, time=None):
    t = values.shape[0]
    coords = {"lat": LAT, "lon": LON}
    coords["time"] = time if time is not None else np.arange(t)
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords=coords)


def test_rmse_of_a_constant_error_is_that_error():
    y = np.random.default_rng(0).normal(size=(5, 2, LAT.size, LON.size))
    out = lat_weighted_rmse(y + 0.7, y, lat=LAT)
    np.testing.assert_allclose(out.values, [0.7, 0.7], rtol=1e-6)
    assert out.dims == ("channel",)


def test_rmse_takes_the_square_root_after_the_time_mean():
    y = np.zeros((2, LAT.size, LON.size))
    err = np.stack([np.ones_like(y[0]), 3 * np.ones_like(y[0])])
    # √((1² + 3²)/2) = √5, not the mean of per-step RMSEs (2).
    assert float(lat_weighted_rmse(err, y, lat=LAT)) == pytest.approx(np.sqrt(5.0), rel=1e-6)


def test_rmse_weights_rows_by_cell_area():
    y = np.zeros((1, LAT.size, LON.size))
    err = np.zeros_like(y)
    err[0, -1] = 1.0  # only the northernmost row is wrong
    w = _wb2_weights(LAT)
    expected = np.sqrt(w[-1] / LAT.size)
    assert float(lat_weighted_rmse(_field(err), _field(y))) == pytest.approx(expected, rel=1e-5)


def test_rmse_ignores_missing_values():
    y = np.zeros((3, LAT.size, LON.size))
    y[:, :5, :7] = np.nan
    assert float(lat_weighted_rmse(y + 2.0, y, lat=LAT)) == pytest.approx(2.0, rel=1e-6)


def test_acc_is_one_for_perfect_and_scaled_anomalies_and_minus_one_for_reversed():
    rng = np.random.default_rng(0)
    clim = rng.normal(size=(4, LAT.size, LON.size))
    y = clim + rng.normal(size=clim.shape)
    assert float(acc(y, y, clim, lat=LAT)) == pytest.approx(1.0)
    assert float(acc(clim + 3 * (y - clim), y, clim, lat=LAT)) == pytest.approx(1.0)
    assert float(acc(clim - (y - clim), y, clim, lat=LAT)) == pytest.approx(-1.0)


def test_acc_is_uncentred():
    clim = np.zeros((1, LAT.size, LON.size))
    # Spatially uniform anomalies of the same sign: the uncentred ACC is 1 (a centred
    # correlation would be undefined: no spatial variance).
    assert float(acc(clim + 2.0, clim + 0.5, clim, lat=LAT)) == pytest.approx(1.0)


def test_acc_selects_the_day_of_year_climatology():
    time = pd.date_range("2000-01-01", periods=3 * 365, freq="D")
    doy = time.day_of_year.values
    seasonal = np.cos(2 * np.pi * doy / 365.0)[:, None, None] * np.ones((LAT.size, LON.size))
    rng = np.random.default_rng(0)
    anomaly = rng.normal(size=seasonal.shape)
    y = _field(seasonal + anomaly, time)
    clim = dayofyear_climatology(_field(seasonal, time))
    assert clim.sizes["dayofyear"] == 366
    # The climatology must be matched by day of year: then a forecast with half the true
    # anomaly is perfectly correlated, and one with an independent anomaly is not.
    perfect = _field(seasonal + 0.5 * anomaly, time)
    assert float(acc(perfect, y, clim)) == pytest.approx(1.0)
    unrelated = _field(seasonal + rng.normal(size=seasonal.shape), time)
    assert abs(float(acc(unrelated, y, clim))) < 0.02


def test_dayofyear_climatology_smoothing_keeps_a_constant_constant():
    time = pd.date_range("2001-01-01", periods=365, freq="D")
    clim = dayofyear_climatology(
        _field(np.full((365, LAT.size, LON.size), 4.0), time), smooth_days=15
    )
    np.testing.assert_allclose(clim.values, 4.0)


def test_cluster_quality_matches_hand_computed_scores():
    z = np.array([[0.0], [1.0], [5.0], [6.0]])
    out = cluster_quality(z, [0, 0, 1, 1])
    # silhouette: (1 − 1/5.5 + 1 − 1/4.5)/2; DB: (0.5 + 0.5)/5; CH: (25/1)/(1/2)
    assert out["silhouette"] == pytest.approx((2 - 1 / 5.5 - 1 / 4.5) / 2)
    assert out["davies_bouldin"] == pytest.approx(0.2)
    assert out["calinski_harabasz"] == pytest.approx(50.0)
    assert np.isnan(cluster_quality(z, [0, 0, 0, 0])["silhouette"])


def test_ari_nmi_truth_is_one_for_permuted_labels_and_zero_for_random():
    truth = np.repeat([0, 1, 2], 50)
    permuted = np.array([2, 0, 1])[truth]
    assert ari_nmi_truth(permuted, truth) == {"ari": pytest.approx(1.0), "nmi": pytest.approx(1.0)}
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 5000)
    out = ari_nmi_truth(rng.integers(0, 4, 5000), truth)
    assert abs(out["ari"]) < 0.01
    assert out["nmi"] < 0.01


def test_intra_inter_cluster_rmse_of_planted_regimes():
    labels = np.array([0, 0, 1, 1, 1])
    comp = np.array([0.0, 2.0])[labels]
    fields = np.broadcast_to(comp[:, None, None, None], (5, 2, LAT.size, LON.size)).copy()
    # cluster 0: members 0 ± 1 everywhere (composite 0, intra 1); cluster 1: all exactly 2
    fields[0] += 1.0
    fields[1] -= 1.0
    out = intra_inter_cluster_rmse(fields, labels, lat=LAT)
    np.testing.assert_allclose(out["intra"], [1.0, 0.0])
    np.testing.assert_allclose(out["inter"], [[0.0, 2.0], [2.0, 0.0]])
    assert out["ratio"] == pytest.approx(0.5 / 2.0)


def test_spatial_correlation_of_opposite_and_orthogonal_composites():
    lon = np.deg2rad(LON)
    a = np.sin(lon)[None, :] * np.ones((LAT.size, 1))
    b = np.cos(lon)[None, :] * np.ones((LAT.size, 1))
    fields = np.stack([a, -a, b, a, -a, b])
    labels = np.array([0, 1, 2, 0, 1, 2])
    r = spatial_correlation_matrix(_field(fields), labels)
    np.testing.assert_allclose(np.diag(r), 1.0)
    assert float(r.sel(cluster=0, cluster_=1)) == pytest.approx(-1.0)
    assert float(r.sel(cluster=0, cluster_=2)) == pytest.approx(0.0, abs=1e-12)


def _wb2(values, time):
    """A WeatherBench2-named field: (time, prediction_timedelta, level, latitude, longitude)."""
    return xr.DataArray(
        values,
        dims=("time", "prediction_timedelta", "level", "latitude", "longitude"),
        coords={
            "time": time,
            "prediction_timedelta": np.array([1, 2], dtype="timedelta64[D]"),
            "level": [500, 850],
            "latitude": LAT,
            "longitude": LON,
        },
    )


def test_metrics_find_weatherbench2_dimension_names():
    time = pd.date_range("2000-01-01", periods=6, freq="D")
    rng = np.random.default_rng(0)
    y = _wb2(rng.normal(size=(6, 2, 2, LAT.size, LON.size)), time)
    p = y + _wb2(rng.normal(size=y.shape), time)
    short = {"latitude": "lat", "longitude": "lon"}
    rmse = lat_weighted_rmse(p, y)
    assert rmse.dims == ("prediction_timedelta", "level")
    # the same numbers as on the short names (the computation itself is pinned above)
    np.testing.assert_allclose(rmse, lat_weighted_rmse(p.rename(short), y.rename(short)))
    clim = dayofyear_climatology(y)
    skill = acc(p, y, clim)
    assert skill.dims == ("prediction_timedelta", "level")
    np.testing.assert_allclose(
        skill, acc(p.rename(short), y.rename(short), clim.rename(short)), rtol=1e-6
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    fields = y.isel(prediction_timedelta=0)
    np.testing.assert_allclose(
        intra_inter_cluster_rmse(fields, labels)["inter"],
        intra_inter_cluster_rmse(fields.rename(short), labels)["inter"],
    )
    np.testing.assert_allclose(
        spatial_correlation_matrix(fields, labels),
        spatial_correlation_matrix(fields.rename(short), labels),
    )


def test_explicit_dimension_names_win_and_unknown_ones_are_named():
    time = pd.date_range("2000-01-01", periods=3, freq="D")
    y = xr.DataArray(
        np.ones((3, LAT.size, LON.size)), dims=("time", "y", "x"), coords={"y": LAT, "time": time}
    )
    assert float(lat_weighted_rmse(y + 0.5, y, lat_dim="y", lon_dim="x")) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"lat / latitude.*\('time', 'y', 'x'\).*lat_dim="):
        lat_weighted_rmse(y, y)
    with pytest.raises(ValueError, match=r"lon_dim='lon' is not a dimension"):
        lat_weighted_rmse(y, y, lat_dim="y", lon_dim="lon")
