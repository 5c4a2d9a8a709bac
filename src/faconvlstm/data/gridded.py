"""Open gridded NetCDF / Zarr data as one lazy ``(time, channel, lat, lon)`` array.

Users bring ERA5, WeatherBench2, CMIP or their own files. Whatever the dimension names
(``latitude``/``longitude``, ``lat``/``lon``, ``y``/``x``, ``valid_time``, ``plev`` …),
:func:`open_gridded` maps them to ``(time, lat, lon)``, stacks variables and pressure levels
into a ``channel`` dimension whose labels stay readable (``"temperature@850"``), makes
latitude ascending, honours missing-value conventions and records whether longitude wraps
around the globe (``attrs["periodic_lon"]``) so a model can use a periodic boundary.

Everything stays lazy (dask): nothing is read until a window is requested.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from faconvlstm.data.time import check_time_axis
from faconvlstm.losses import latitude_weights_numpy

__all__ = [
    "DIM_ALIASES",
    "detect_periodic_lon",
    "latitude_weights",
    "open_gridded",
    "split_by_years",
]

#: Recognised names (lower case) for each role; ERA5, WeatherBench2, CMIP and NEMO names.
DIM_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "valid_time", "t", "date", "datetime", "times", "time_counter"),
    "lat": ("lat", "latitude", "y", "nav_lat", "rlat", "lats", "grid_yt"),
    "lon": ("lon", "longitude", "x", "nav_lon", "rlon", "lons", "grid_xt"),
    "level": (
        "level",
        "pressure_level",
        "plev",
        "pressure",
        "isobaricinhpa",
        "lev",
        "levels",
        "air_pressure",
    ),
}
_STANDARD_NAMES = {
    "time": ("time",),
    "lat": ("latitude", "grid_latitude"),
    "lon": ("longitude", "grid_longitude"),
    "level": ("air_pressure",),
}
_AXIS_ATTR = {"T": "time", "Y": "lat", "X": "lon", "Z": "level"}
_UNITS_ATTR = {
    "degrees_north": "lat",
    "degree_north": "lat",
    "degrees_east": "lon",
    "degree_east": "lon",
}
#: Bytes of one dask chunk (per variable) aimed at when ``chunks=None``. Small on purpose:
#: dask reads a whole chunk to serve any slice of it, so a window of a few steps should not
#: sit in a chunk of thousands (measured: 8 steps from 1024-step chunks cost 15x more than
#: from 32-step chunks).
_TARGET_CHUNK_BYTES = 2 * 2**20


# --------------------------------------------------------------------------------------
# Opening sources
# --------------------------------------------------------------------------------------
def _is_url(path: str) -> bool:
    return "://" in path


def _looks_like_zarr(path: str) -> bool:
    stripped = path.rstrip("/")
    if stripped.endswith(".zarr") or ".zarr/" in path:
        return True
    if not _is_url(path) and os.path.isdir(path):
        return any(
            os.path.exists(os.path.join(path, marker))
            for marker in ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")
        )
    return False


def _open_one(path: str, engine: str | None, storage_options: Mapping | None) -> xr.Dataset:
    """Open one store without dask (lazy backend arrays); chunking is decided later."""
    if engine == "zarr" or (engine is None and _looks_like_zarr(path)):
        return xr.open_dataset(
            path, engine="zarr", chunks=None, storage_options=storage_options or None
        )
    if _is_url(path) and not path.startswith("file://"):
        import fsspec

        fobj = fsspec.open(path, mode="rb", **(storage_options or {})).open()
        return xr.open_dataset(fobj, engine=engine or "h5netcdf", chunks=None)
    path = path.removeprefix("file://")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or Zarr store: {path!r}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(
            f"{path!r} is empty (0 bytes): an interrupted download or copy? Fetch the file again"
        )
    try:
        return xr.open_dataset(path, engine=engine, chunks=None)
    except ValueError as err:
        if engine is not None or "did not find a match" not in str(err):
            raise
        with open(path, "rb") as fh:
            head = fh.read(8)
        raise ValueError(
            f"{path!r} is not a NetCDF (classic or NetCDF-4/HDF5) file or Zarr store (it "
            f"starts with {head!r}); check the path, or convert the file to NetCDF"
        ) from None


def _expand_source(source: Any) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not _is_url(text) and any(ch in text for ch in "*?["):
            paths = sorted(glob.glob(text))
            if not paths:
                raise FileNotFoundError(f"glob pattern {text!r} matched no files")
            return paths
        return [text]
    if isinstance(source, Sequence):
        paths = [os.fspath(p) for p in source]
        if not paths:
            raise ValueError("source is an empty list of paths; give at least one file")
        return paths
    raise TypeError(
        f"source must be a path, glob, list of paths, Zarr/fsspec URL or xarray.Dataset, "
        f"got {type(source).__name__}"
    )


def _zarr_origin(origin: str) -> bool:
    return not origin.startswith("<") and _looks_like_zarr(origin.split(" (+")[0])


def _open_source(
    source: Any, engine: str | None, storage_options: Mapping | None
) -> tuple[xr.Dataset, str]:
    if isinstance(source, xr.DataArray):
        return source.to_dataset(name=source.name or "data"), "<DataArray>"
    if isinstance(source, xr.Dataset):
        return source, "<Dataset>"
    paths = _expand_source(source)
    parts = [_open_one(p, engine, storage_options) for p in paths]
    if len(parts) == 1:
        return parts[0], paths[0]
    time_dim = _classify_dims(parts[0])
    time_name = next((d for d, role in time_dim.items() if role == "time"), None)
    if time_name is None:
        raise ValueError(
            f"cannot combine {len(paths)} files: no time dimension found in "
            f"{paths[0]!r} (dims {list(parts[0].sizes)})"
        )
    try:
        combined = xr.combine_by_coords(
            parts,
            join="exact",
            combine_attrs="drop_conflicts",
            data_vars="all",
            coords="minimal",
            compat="override",
        )
    except ValueError as err:
        raise ValueError(
            f"cannot combine {len(paths)} files along {time_name!r}: {err}. Files must share "
            f"one grid (same lat/lon values) and differ only in time or variables; regrid "
            f"them to a common grid first."
        ) from err
    return combined, f"{paths[0]} (+{len(paths) - 1} more)"


# --------------------------------------------------------------------------------------
# Dimension roles
# --------------------------------------------------------------------------------------
def _role_of(ds: xr.Dataset, dim: str) -> str | None:
    attrs = ds[dim].attrs if dim in ds.variables else {}
    std = str(attrs.get("standard_name", "")).lower()
    for role, names in _STANDARD_NAMES.items():
        if std in names:
            return role
    axis = str(attrs.get("axis", "")).upper()
    if axis in _AXIS_ATTR:
        return _AXIS_ATTR[axis]
    units = str(attrs.get("units", "")).lower()
    if units in _UNITS_ATTR:
        return _UNITS_ATTR[units]
    for role, names in DIM_ALIASES.items():
        if dim.lower() in names:
            return role
    if dim in ds.variables and np.issubdtype(ds[dim].dtype, np.datetime64):
        return "time"
    return None


def _classify_dims(ds: xr.Dataset, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map each dimension name of ``ds`` to a role (time, lat, lon, level, channel)."""
    roles = {}
    override_by_dim = {dim: role for role, dim in (overrides or {}).items()}
    for dim in ds.dims:
        role = override_by_dim.get(dim) or ("channel" if dim == "channel" else _role_of(ds, dim))
        if role is not None:
            roles[dim] = role
    for role, dim in (overrides or {}).items():
        if dim not in ds.dims:
            raise ValueError(
                f"dims override {role}={dim!r} (data.dims in the run configuration), but the "
                f"data has dimensions {list(ds.dims)}; name one of those"
            )
    return roles


#: Units (lower case) that mean degrees; CF allows these spellings for latitude/longitude.
_DEGREES = {
    "lat": {
        "degrees_north",
        "degree_north",
        "degrees_n",
        "degree_n",
        "degreesn",
        "degreen",
        "degrees",
        "degree",
        "deg",
        "°n",
        "°",
    },
    "lon": {
        "degrees_east",
        "degree_east",
        "degrees_e",
        "degree_e",
        "degreese",
        "degreee",
        "degrees",
        "degree",
        "deg",
        "°e",
        "°",
    },
}
_REGRID = (
    "regrid to a regular latitude/longitude grid first (e.g. xESMF, or "
    "`cdo remapbil,r360x180 in.nc out.nc`)"
)


def _two_d_coords(ds: xr.Dataset) -> list[str]:
    """Names of 2-D latitude/longitude coordinates (curvilinear grids: NEMO, WRF …)."""
    names = []
    for name, var in ds.variables.items():
        std = str(var.attrs.get("standard_name", "")).lower()
        units = str(var.attrs.get("units", "")).lower()
        looks = (
            std in ("latitude", "longitude")
            or units in _UNITS_ATTR
            or str(name).lower()
            in (
                "nav_lat",
                "nav_lon",
                "lat",
                "lon",
                "latitude",
                "longitude",
                "xlat",
                "xlong",
                "glamt",
                "gphit",
            )
        )
        if var.ndim == 2 and looks:
            names.append(str(name))
    return names


def _check_geographic(ds: xr.Dataset, roles: Mapping[str, str], origin: str) -> None:
    """Refuse grids whose lat/lon dimensions are not 1-D coordinates in degrees.

    The latitude weights ``cos φ`` and the periodic-longitude test need latitude and
    longitude in degrees, one value per row/column. A projected grid (``y``/``x`` in
    metres) or a curvilinear one (2-D ``nav_lat``/``nav_lon``) would otherwise be weighted
    by metres or by the row index; it has to be regridded first.
    """
    curvilinear = _two_d_coords(ds)
    also = (
        f"; its 2-D coordinates {curvilinear} describe a curvilinear grid, which "
        f"faconvlstm does not model"
        if curvilinear
        else ""
    )
    for dim, role in roles.items():
        if role not in ("lat", "lon"):
            continue
        name = "latitude" if role == "lat" else "longitude"
        if dim not in ds.variables:
            raise ValueError(
                f"{origin}: the {name} dimension {dim!r} has no coordinate values (only an "
                f"index){also}; latitude weights cannot come from an index: {_REGRID}, or "
                f"add a 1-D {name} coordinate in degrees"
            )
        coord = ds[dim]
        units = str(coord.attrs.get("units", "")).strip()
        if units and units.lower() not in _DEGREES[role]:
            raise ValueError(
                f"{origin}: the {name} dimension {dim!r} has units {units!r}, not degrees: "
                f"a projected grid (e.g. Lambert conformal){also}. faconvlstm needs "
                f"latitude/longitude in degrees for its area weights: {_REGRID}"
            )
        values = np.asarray(coord.values, dtype=float)
        if role == "lat" and values.size and np.nanmax(np.abs(values)) > 90:
            raise ValueError(
                f"{origin}: the latitude dimension {dim!r} has values up to "
                f"{np.nanmax(np.abs(values)):g}, beyond ±90 degrees: not latitudes (a "
                f"projected grid in metres?){also}. {_REGRID[0].upper()}{_REGRID[1:]}, or "
                f"map the right dimension with data.dims (dims= for open_gridded)"
            )


def _level_in_hpa(level: xr.DataArray) -> xr.DataArray:
    units = str(level.attrs.get("units", "")).lower()
    if units in ("pa", "pascal", "pascals"):
        out = level / 100.0
        out.attrs = {**level.attrs, "units": "hPa"}
        return out
    return level


def _format_level(value: float) -> str:
    return f"{float(value):g}"


# --------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------
def detect_periodic_lon(lon: Any) -> bool:
    """Whether a longitude axis covers the whole globe with a regular step.

    A grid of ``n`` points with step ``Δ`` (degrees, modulo 360) wraps around when
    ``|n·Δ − 360| < Δ/2``: the last column is one step west of the first.

    Parameters
    ----------
    lon : array-like, shape (W,)
        Longitudes in degrees east (any origin, e.g. 0…360 or −180…180).
    """
    lon = np.asarray(lon, dtype=float)
    if lon.size < 3:
        return False
    step = np.mod(np.diff(lon), 360.0)
    if step[0] <= 0 or not np.allclose(step, step[0], rtol=1e-3, atol=1e-6):
        return False
    return bool(abs(lon.size * step[0] - 360.0) < 0.5 * step[0])


def latitude_weights(lat: Any) -> np.ndarray:
    """WeatherBench2 cell-area latitude weights (mean 1), float64 ``(H,)``.

    See :func:`faconvlstm.losses.latitude_weights_numpy`, the one implementation.
    """
    return latitude_weights_numpy(lat)


def _auto_chunks(var: xr.DataArray, time_dim: str) -> dict[str, int]:
    """Whole spatial fields, enough time steps for ≈2 MiB, aligned to native chunks."""
    step_bytes = var.dtype.itemsize * int(
        np.prod([var.sizes[d] for d in var.dims if d != time_dim])
    )
    n = max(1, _TARGET_CHUNK_BYTES // max(step_bytes, 1))
    native = var.encoding.get("preferred_chunks", {}).get(time_dim)
    if native is None and var.encoding.get("chunks") and time_dim in var.dims:
        native = var.encoding["chunks"][var.dims.index(time_dim)]
    if native:
        n = max(native, (n // native) * native)
    return {d: (min(n, var.sizes[d]) if d == time_dim else -1) for d in var.dims}


def _mask_missing(var: xr.DataArray, extreme_as_missing: float | None) -> xr.DataArray:
    """NaN where the value is a declared or conventional missing value."""
    if not np.issubdtype(var.dtype, np.floating):
        var = var.astype("float32")
    for key in ("_FillValue", "missing_value"):
        # Present in attrs only when decoding was skipped (e.g. a user-built Dataset).
        if key in var.attrs:
            fill = np.atleast_1d(var.attrs[key])
            var = var.where(~var.isin(fill))
    if extreme_as_missing is not None:
        var = var.where(np.abs(var) < extreme_as_missing)
    return var


def open_gridded(
    source: Any,
    variables: str | Sequence[str] | None = None,
    levels: float | Sequence[float] | None = None,
    *,
    dims: Mapping[str, str] | None = None,
    chunks: Mapping[str, int] | None = None,
    engine: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    extreme_as_missing: float | None = 1e19,
    check_time: bool = True,
) -> xr.DataArray:
    """Open gridded data lazily as one ``(time, channel, lat, lon)`` DataArray.

    Parameters
    ----------
    source : str, PathLike, list of paths, glob, Zarr/fsspec URL, xarray.Dataset or DataArray
        NetCDF file(s) (several files are combined along time and/or variables by their
        coordinates), a Zarr store (``*.zarr`` directory or ``s3://…/x.zarr``), or data
        already opened with xarray.
    variables : str or list of str, optional
        Data variables to keep, in channel order. Default: every variable that has time,
        latitude and longitude dimensions (bounds variables are skipped), in the order the
        source lists them — alphabetical for Zarr stores, whose array order is undefined.
    levels : float or list of float, optional
        Pressure levels (hPa) to keep for variables that have a level dimension. Levels in Pa
        (CMIP ``plev``) are converted to hPa first.
    dims : mapping, optional
        Explicit roles for unusual dimension names, e.g. ``{"lat": "j", "lon": "i"}``. By
        default roles come from CF attributes (``standard_name``, ``axis``, ``units``) and
        then from :data:`DIM_ALIASES`.
    chunks : mapping, optional
        Dask chunks per *source* dimension name. Default: the chunks of a dask-backed
        Dataset given as ``source``; otherwise whole spatial fields and as many
        time steps as fit in ≈2 MiB per variable (at least the store's native time chunk).
        Dask reads a whole chunk to serve a window, so keep time chunks near the window
        length when streaming.
    engine : str, optional
        xarray backend (``"netcdf4"``, ``"h5netcdf"``, ``"zarr"``); inferred by default.
    storage_options : mapping, optional
        fsspec options for remote stores (credentials, anonymous access …).
    extreme_as_missing : float or None
        Values with ``|x| ≥`` this are missing (CMIP's 1e20, netCDF's default fill
        9.97e36). ``_FillValue`` / ``missing_value`` attributes are honoured in any case.
        ``None`` disables the threshold.
    check_time : bool
        Raise if the time axis is not strictly increasing with a constant step.

    Returns
    -------
    xarray.DataArray, dims ``("time", "channel", "lat", "lon")``
        Lazy (dask), float. Coordinates: ``time``; ``channel`` (str: ``"t2m"``,
        ``"temperature@850"``) with auxiliary ``variable``, ``level`` (hPa, NaN without a
        level) and ``units`` on the channel dimension; ``lat`` ascending; ``lon`` as stored.
        ``attrs["periodic_lon"]`` is True when longitude wraps around the globe.

    Raises
    ------
    KeyError
        A requested variable or level does not exist (the message lists what does).
    ValueError
        No time/lat/lon dimension, variables on different grids, an unsupported extra
        dimension, or (``check_time``) a bad time axis.
    """
    ds, origin = _open_source(source, engine, storage_options)
    roles = _classify_dims(ds, dims)
    for required in ("time", "lat", "lon"):
        if required not in roles.values():
            raise ValueError(
                f"no {required} dimension found in {origin} (dimensions {dict(ds.sizes)}). "
                f"Recognised names: {DIM_ALIASES[required]}. Say which dimension it is: "
                f"data.dims: {{{required}: <name>}} in the run configuration, or "
                f"dims={{'{required}': '<name>'}} for open_gridded."
            )

    _check_geographic(ds, roles, origin)

    def spatial_ok(name: str) -> bool:
        var_roles = [roles.get(d) for d in ds[name].dims]
        return all(r in var_roles for r in ("time", "lat", "lon"))

    gridded_vars = [name for name in ds.data_vars if spatial_ok(str(name))]
    if _zarr_origin(origin):
        # A Zarr group does not define the order of its arrays (listing order varies between
        # stores and runs); sort so channel order, and with it saved statistics, are stable.
        gridded_vars = sorted(gridded_vars, key=str)
    if variables is None:
        selected = gridded_vars
        if not selected:
            raise ValueError(
                f"{origin} has no variable with time, lat and lon dimensions; "
                f"variables: {list(ds.data_vars)}"
            )
    else:
        selected = [variables] if isinstance(variables, str) else list(variables)
        missing = [v for v in selected if v not in ds.data_vars]
        if missing:
            raise KeyError(
                f"variable(s) {missing} not found in {origin}; available: "
                f"{sorted(map(str, ds.data_vars))}"
            )
        not_gridded = [v for v in selected if v not in gridded_vars]
        if not_gridded:
            raise ValueError(
                f"variable(s) {not_gridded} lack a time, lat or lon dimension "
                f"(dims: {[ds[v].dims for v in not_gridded]})"
            )

    wanted_levels = None if levels is None else np.atleast_1d(np.asarray(levels, dtype=float))
    pieces: list[xr.DataArray] = []
    reference: xr.DataArray | None = None
    for name in selected:
        var = ds[name]
        rename = {d: roles[d] for d in var.dims if d in roles}
        if len(set(rename.values())) != len(rename):
            raise ValueError(f"variable {name!r} has two dimensions of one role: {rename}")
        extra = [d for d in var.dims if d not in roles]
        for d in extra:
            if var.sizes[d] != 1:
                raise ValueError(
                    f"variable {name!r} has an extra dimension {d!r} (size {var.sizes[d]}) "
                    f"that is neither time, lat, lon, level nor channel; select one entry "
                    f"first, e.g. ds.isel({d}=0), or map the dimensions with data.dims in the "
                    f"run configuration (dims={{...}} for open_gridded)"
                )
        var = var.squeeze(extra, drop=True)
        if chunks is None:
            if var.chunks is None:  # keep the chunks of data the user already opened with dask
                time_dim = next(d for d in var.dims if roles[d] == "time")
                var = var.chunk(_auto_chunks(var, time_dim))
        else:
            var = var.chunk({d: c for d, c in chunks.items() if d in var.dims})
        var = var.rename(rename)
        channel_units = None
        for coord in ("units", "channel_units"):  # our own (time, channel, …) arrays/files
            if coord in var.coords and var.coords[coord].dims == ("channel",):
                channel_units = [str(u) for u in var.coords[coord].values]
        var = var.reset_coords(drop=True) if var.coords else var
        if reference is None:
            reference = var
        else:
            _check_same_grid(reference, var, str(name))
            var = var.assign_coords(lat=reference["lat"], lon=reference["lon"])
        units = str(var.attrs.get("units", ""))
        var = _mask_missing(var, extreme_as_missing)
        if "level" in var.dims:
            level_dim = next(d for d, role in rename.items() if role == "level")
            levels_hpa = (
                _level_in_hpa(ds[level_dim]).values.astype(float)
                if level_dim in ds.variables
                else np.arange(var.sizes["level"], dtype=float)
            )
            var = _select_levels(var.assign_coords(level=levels_hpa), wanted_levels, str(name))
            for i, lv in enumerate(var["level"].values):
                label = f"{name}@{_format_level(lv)}"
                pieces.append(
                    _as_channel(var.isel(level=i, drop=True), label, str(name), float(lv), units)
                )
        elif "channel" in var.dims:
            for i, label in enumerate(var["channel"].values):
                unit = channel_units[i] if channel_units else units
                piece = var.isel(channel=i, drop=True)
                pieces.append(_as_channel(piece, str(label), str(name), np.nan, unit))
        else:
            pieces.append(_as_channel(var, str(name), str(name), np.nan, units))

    out = xr.concat(
        pieces,
        dim="channel",
        join="exact",
        coords="minimal",
        compat="override",
        combine_attrs="drop",
    )
    out = out.transpose("time", "channel", "lat", "lon")
    lat = out["lat"].values
    if lat.size > 1 and not np.all(np.diff(lat) > 0):
        if np.all(np.diff(lat) < 0):
            out = out.isel(lat=slice(None, None, -1))
        elif np.unique(lat).size != lat.size:
            raise ValueError(f"latitude has duplicated values in {origin}; fix the grid")
        else:
            out = out.sortby("lat")
    if check_time:
        check_time_axis(out["time"].values)
    out.name = selected[0] if len(selected) == 1 else "data"
    out.attrs = {
        "periodic_lon": detect_periodic_lon(out["lon"].values),
        "source": origin,
    }
    return out


def _check_same_grid(reference: xr.DataArray, var: xr.DataArray, name: str) -> None:
    for axis in ("lat", "lon"):
        a, b = reference[axis].values, var[axis].values
        if a.shape != b.shape or not np.allclose(a, b):
            raise ValueError(
                f"variables {reference.name!r} and {name!r} are on different grids: "
                f"{axis} has {a.size} points [{a.min():g}, {a.max():g}] vs {b.size} "
                f"points [{b.min():g}, {b.max():g}]; regrid them to one grid (e.g. "
                f"ds[{name!r}].interp_like(ds[{reference.name!r}])) or open them separately"
            )


def _select_levels(var: xr.DataArray, wanted: np.ndarray | None, name: str) -> xr.DataArray:
    if wanted is None:
        return var
    have = var["level"].values
    absent = [lv for lv in wanted if not np.isclose(have, lv).any()]
    if absent:
        raise KeyError(
            f"level(s) {[_format_level(lv) for lv in absent]} not found for {name!r}; "
            f"available levels (hPa): {[_format_level(lv) for lv in have]}"
        )
    return var.isel(level=[int(np.flatnonzero(np.isclose(have, lv))[0]) for lv in wanted])


def _as_channel(
    var: xr.DataArray, label: str, variable: str, level: float, units: str
) -> xr.DataArray:
    var = var.transpose("time", "lat", "lon").expand_dims(channel=[label], axis=1)
    return var.assign_coords(
        variable=("channel", [variable]),
        level=("channel", [level]),
        units=("channel", [units]),
    )


def split_by_years(
    da: xr.DataArray,
    train: tuple[int, int] | int | None = None,
    val: tuple[int, int] | int | None = None,
    test: tuple[int, int] | int | None = None,
) -> dict[str, xr.DataArray]:
    """Split along time by inclusive year ranges (no leakage between splits).

    Parameters
    ----------
    da : xarray.DataArray with a ``time`` dimension
    train, val, test : (first_year, last_year) or int, optional
        Inclusive year ranges; ``None`` leaves a split out.

    Returns
    -------
    dict
        ``{"train": da_train, "val": …, "test": …}`` for the splits given (lazy selections).

    Raises
    ------
    ValueError
        Overlapping ranges, a reversed range, or a range with no data.
    """
    years = da["time"].dt.year.values
    ranges: dict[str, tuple[int, int]] = {}
    for name, rng in (("train", train), ("val", val), ("test", test)):
        if rng is None:
            continue
        first, last = (rng, rng) if isinstance(rng, (int, np.integer)) else tuple(rng)
        if first > last:
            raise ValueError(f"{name} range ({first}, {last}) is reversed; give (first, last)")
        ranges[name] = (int(first), int(last))
    names = list(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (a0, a1), (b0, b1) = ranges[a], ranges[b]
            if a0 <= b1 and b0 <= a1:
                raise ValueError(
                    f"{a} years {ranges[a]} overlap {b} years {ranges[b]}; "
                    f"splits must be disjoint to avoid leakage"
                )
    out = {}
    for name, (first, last) in ranges.items():
        keep = (years >= first) & (years <= last)
        if not keep.any():
            raise ValueError(
                f"{name} years ({first}, {last}) select no time steps; the data covers "
                f"{years.min()}–{years.max()}"
            )
        out[name] = da.isel(time=np.flatnonzero(keep))
    return out
