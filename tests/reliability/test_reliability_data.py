"""Input data that would silently train on nonsense is refused or flagged, with the remedy."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from faconvlstm.data import compute_stats, open_gridded

TIME = pd.date_range("2000-01-01", periods=10, freq="D")


def _field(ny, nx, seed=0):
    return np.random.default_rng(seed).normal(280.0, 5.0, size=(TIME.size, ny, nx))


def test_a_projected_grid_in_metres_is_refused_naming_the_coordinate():
    y = np.arange(8) * 25e3
    x = np.arange(12) * 25e3
    ds = xr.Dataset(
        {"t2m": (("time", "y", "x"), _field(8, 12))},
        coords={"time": TIME, "y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})},
    )
    with pytest.raises(ValueError, match=r"'y' has units 'm', not degrees.*regrid"):
        open_gridded(ds)


def test_metres_without_units_are_refused_by_their_range():
    ds = xr.Dataset(
        {"t2m": (("time", "y", "x"), _field(8, 12))},
        coords={"time": TIME, "y": np.arange(8) * 25e3, "x": np.arange(12) * 25e3},
    )
    with pytest.raises(ValueError, match=r"beyond ±90 degrees"):
        open_gridded(ds)


def test_a_curvilinear_nemo_grid_is_refused_naming_its_2d_coordinates():
    ny, nx = 6, 10
    nav_lat = np.linspace(-60, 60, ny)[:, None] + 0.1 * np.arange(nx)[None, :]
    nav_lon = np.linspace(0, 300, nx)[None, :] + 0.1 * np.arange(ny)[:, None]
    ds = xr.Dataset(
        {"tos": (("time_counter", "y", "x"), _field(ny, nx))},
        coords={
            "time_counter": TIME,
            "nav_lat": (("y", "x"), nav_lat, {"units": "degrees_north"}),
            "nav_lon": (("y", "x"), nav_lon, {"units": "degrees_east"}),
        },
    )
    with pytest.raises(ValueError, match=r"no coordinate values.*\['nav_lat', 'nav_lon'\]"):
        open_gridded(ds)


@pytest.mark.parametrize("units", ["degrees_north", "degree_N", "degreesN", "degrees", ""])
def test_latitude_in_any_cf_spelling_of_degrees_is_accepted(units):
    attrs = {"units": units} if units else {}
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), _field(4, 8))},
        coords={
            "time": TIME,
            "lat": ("lat", np.linspace(-60, 60, 4), attrs),
            "lon": np.arange(8) * 45.0,
        },
    )
    assert open_gridded(ds).sizes["lat"] == 4


def test_odd_dimension_names_point_to_the_config_key():
    ds = xr.Dataset({"t2m": (("time", "j", "i"), _field(4, 8))}, coords={"time": TIME})
    with pytest.raises(ValueError, match=r"data\.dims: \{lat: <name>\}.*dims=\{'lat'"):
        open_gridded(ds)


def _gridded(values):
    return xr.DataArray(
        values[:, None],
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": TIME,
            "channel": ["t2m"],
            "lat": np.linspace(-60, 60, values.shape[1]),
            "lon": np.arange(values.shape[2]) * 45.0,
        },
    )


def test_a_lone_huge_value_warns_naming_channel_value_and_time():
    values = _field(8, 8)  # 640 values: Samuelson bound √639 ≈ 25 > the floor 20
    values[3, 2, 5] = 1e18
    with pytest.warns(UserWarning, match=r"'t2m': the value 1e\+18 at time 2000-01-04.*Mask it"):
        compute_stats(_gridded(values))


def test_ordinary_heavy_tails_do_not_warn():
    # Gamma(0.3) is more skewed than daily precipitation; 64 000 values.
    rng = np.random.default_rng(1)
    values = rng.gamma(0.3, 4.0, size=(TIME.size, 80, 80))
    da = xr.DataArray(
        values[:, None],
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": TIME,
            "channel": ["tp"],
            "lat": np.linspace(-80, 80, 80),
            "lon": np.arange(80) * 4.5,
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_stats(da)


def test_a_constant_channel_is_named_with_the_remedy():
    with pytest.warns(UserWarning, match=r"\['t2m'\] are constant.*std 0.*drop them"):
        stats = compute_stats(_gridded(np.full((TIME.size, 4, 8), 273.15)))
    assert stats.std.tolist() == [1.0]
