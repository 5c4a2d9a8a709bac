"""Small gridded datasets with known values, shared by the data tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr


def make_era5_like(
    n_time: int = 20,
    levels: tuple[int, ...] = (500, 850),
    nlat: int = 6,
    nlon: int = 8,
    seed: int = 0,
    freq: str = "D",
    start: str = "2000-01-01",
) -> xr.Dataset:
    """ERA5-style names: valid_time, pressure_level, latitude (descending), longitude.

    Values encode their position so a test can check where each number ended up:
    ``temperature = 200 + level/10 + lat/100 + lon/1000 + noise``.
    """
    rng = np.random.default_rng(seed)
    lat = np.linspace(90, -90, nlat)  # descending, as ERA5 stores it
    lon = np.arange(nlon) * 360.0 / nlon
    time = pd.date_range(start, periods=n_time, freq=freq)
    lev = np.asarray(levels, dtype="int64")
    base = (
        200.0
        + lev[None, :, None, None] / 10.0
        + lat[None, None, :, None] / 100.0
        + lon[None, None, None, :] / 1000.0
    )
    shape = (n_time, lev.size, nlat, nlon)
    t = base + rng.normal(size=shape)
    z = 9.81 * (5000 + 10 * base) + rng.normal(size=shape)
    return xr.Dataset(
        {
            "temperature": (
                ("valid_time", "pressure_level", "latitude", "longitude"),
                t,
                {"units": "K"},
            ),
            "geopotential": (
                ("valid_time", "pressure_level", "latitude", "longitude"),
                z,
                {"units": "m2 s-2"},
            ),
        },
        coords={
            "valid_time": time,
            "pressure_level": ("pressure_level", lev, {"units": "hPa"}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )


def make_simple(
    n_time: int = 40,
    nlat: int = 4,
    nlon: int = 8,
    n_var: int = 2,
    seed: int = 0,
    start: str = "2000-01-01",
    freq: str = "D",
) -> xr.Dataset:
    """(time, lat, lon) variables v0, v1, … of standard-normal noise plus 10·index."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=n_time, freq=freq)
    data = {
        f"v{i}": (("time", "lat", "lon"), 10.0 * i + rng.normal(size=(n_time, nlat, nlon)))
        for i in range(n_var)
    }
    return xr.Dataset(
        data,
        coords={
            "time": time,
            "lat": np.linspace(-60, 60, nlat),
            "lon": np.arange(nlon) * 360.0 / nlon,
        },
    )


@pytest.fixture
def era5_like() -> xr.Dataset:
    return make_era5_like()


@pytest.fixture
def simple() -> xr.Dataset:
    return make_simple()


@pytest.fixture
def make_dataset():
    """Factory fixture: ``make_dataset(kind="simple"|"era5", **kwargs)``."""

    def factory(kind: str = "simple", **kwargs) -> xr.Dataset:
        return make_era5_like(**kwargs) if kind == "era5" else make_simple(**kwargs)

    return factory
