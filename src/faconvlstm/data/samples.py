"""Real observed sample data that needs no download: the files the ``eofs`` package ships.

=========  ==================================================================================
name       contents
=========  ==================================================================================
``"sst"``  NDJFM-mean sea-surface temperature anomalies (K), tropical & North Pacific,
           1963/64–2011/12 (50 winters), 5° grid 18 × 30 (22.5°S–62.5°N, 117.5°E–97.5°W);
           land is missing (``missing_value=1e20`` → NaN). The leading EOF is ENSO.
``"z500"`` DJF-mean 500 hPa geopotential height (m), North Atlantic–Europe, 1948/49–2011/12
           (65 winters), 2.5° grid 29 × 49 (20°N–90°N, 80°W–40°E). The leading EOF is the
           North Atlantic Oscillation.
=========  ==================================================================================

Both have one field per year (seasonal means), so use short windows (e.g. 4 years).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import xarray as xr

__all__ = ["SAMPLES", "sample", "sample_path"]

#: Sample name → (file in ``eofs/examples/example_data``, description).
SAMPLES: dict[str, tuple[str, str]] = {
    "sst": ("sst_ndjfm_anom.nc", "NDJFM-mean Pacific SST anomalies 1963-2012 (ENSO)"),
    "z500": ("hgt_djf.nc", "DJF-mean 500 hPa geopotential height, North Atlantic (NAO)"),
}


def sample_path(name: str) -> Path:
    """Path of the NetCDF file behind sample ``name`` (inside the installed ``eofs``)."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    try:
        import eofs
    except ImportError as err:  # pragma: no cover - eofs is a core dependency
        raise ImportError("sample data come from the 'eofs' package: pip install eofs") from err
    path = Path(os.path.dirname(eofs.__file__)) / "examples" / "example_data" / SAMPLES[name][0]
    if not path.exists():
        raise FileNotFoundError(f"the installed eofs package lacks its example file {path}")
    return path


def sample(name: str) -> xr.Dataset:
    """Load a sample data set by name (``"sst"`` or ``"z500"``), fully in memory.

    Missing values are decoded to NaN, latitude is made ascending, cell-bound variables are
    dropped, and units are attached (K for ``sst``, m for ``z``). Pass the result to
    :func:`~faconvlstm.data.open_gridded` for the ``(time, channel, lat, lon)`` view.

    Returns
    -------
    xarray.Dataset
        ``sst``: variable ``sst(time, latitude, longitude)``;
        ``z500``: variable ``z(time, pressure, latitude, longitude)`` (one level, 500 hPa).
    """
    path = sample_path(name)
    with warnings.catch_warnings():
        # hgt_djf.nc's reference date "1-1-1" is ambiguous to xarray but decodes correctly.
        warnings.filterwarnings("ignore", message="Ambiguous reference date")
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    ds = ds.drop_vars([v for v in ds.variables if str(v).startswith("bounds_")])
    for coord in ("latitude", "longitude", "time"):
        ds[coord].attrs.pop("bounds", None)
    ds = ds.sortby("latitude")
    var = "sst" if name == "sst" else "z"
    ds[var].attrs["units"] = "K" if name == "sst" else "m"
    ds.attrs["title"] = SAMPLES[name][1]
    ds.attrs["source"] = f"eofs package example data ({path.name})"
    return ds
