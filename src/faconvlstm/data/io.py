"""Write results (embeddings, cluster labels, reconstructions, forecasts) as NetCDF / Zarr.

Every writer builds an :class:`xarray.Dataset` carrying the input's time stamps and grid
coordinates with CF attributes, then hands it to :func:`save_dataset`, which writes
atomically: to a temporary file beside the target, then ``os.replace``. A reader never sees
a half-written file, and an interrupted run leaves the previous result intact. The format
follows the suffix: ``.nc`` → NetCDF-4, ``.zarr`` → Zarr.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import re
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.callbacks import Callback

from faconvlstm.data.time import as_time_array
from faconvlstm.files import atomic_output

__all__ = [
    "CF_VARIABLES",
    "SPLIT_FLAGS",
    "cf_name",
    "embeddings_dataset",
    "features_dataset",
    "fields_dataset",
    "forecast_dataset",
    "global_attrs",
    "labels_dataset",
    "save_dataset",
    "save_datasets",
    "write_embeddings",
    "write_fields",
    "write_labels",
]

#: CF standard names and canonical units for common ERA5 / WeatherBench2 / CMIP short names.
CF_VARIABLES: dict[str, tuple[str, str]] = {
    "t2m": ("air_temperature", "K"),
    "2m_temperature": ("air_temperature", "K"),
    "tas": ("air_temperature", "K"),
    "t": ("air_temperature", "K"),
    "ta": ("air_temperature", "K"),
    "temperature": ("air_temperature", "K"),
    "sst": ("sea_surface_temperature", "K"),
    "tos": ("sea_surface_temperature", "degC"),
    "sea_surface_temperature": ("sea_surface_temperature", "K"),
    "z": ("geopotential", "m2 s-2"),
    "geopotential": ("geopotential", "m2 s-2"),
    "z500": ("geopotential_height", "m"),
    "zg": ("geopotential_height", "m"),
    "u": ("eastward_wind", "m s-1"),
    "u10": ("eastward_wind", "m s-1"),
    "ua": ("eastward_wind", "m s-1"),
    "v": ("northward_wind", "m s-1"),
    "v10": ("northward_wind", "m s-1"),
    "va": ("northward_wind", "m s-1"),
    "q": ("specific_humidity", "kg kg-1"),
    "hus": ("specific_humidity", "kg kg-1"),
    "msl": ("air_pressure_at_mean_sea_level", "Pa"),
    "psl": ("air_pressure_at_mean_sea_level", "Pa"),
    "tp": ("lwe_precipitation_rate", "mm day-1"),
    "pr": ("precipitation_flux", "kg m-2 s-1"),
    "total_precipitation": ("precipitation_amount", "m"),
}


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` atomically; ``.nc`` → NetCDF-4, ``.zarr`` → Zarr (directory).

    The data go to a temporary sibling first and are moved into place with ``os.replace``
    (:func:`faconvlstm.files.atomic_output`; permissions follow the umask). A reader sees the
    previous complete file or the new one; an error, a Ctrl-C or a SIGTERM removes the
    temporary file and keeps the previous one.

    Parameters
    ----------
    ds : xarray.Dataset
    path : str or PathLike
        Target, ending in ``.nc`` or ``.zarr``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        Unknown suffix.
    OSError
        The file could not be written (full disk, read-only directory …); the message names
        the file and the cause, and nothing is left behind.
    """
    return save_datasets([(ds, path)])[0]


def save_datasets(items: Sequence[tuple[xr.Dataset, str | os.PathLike]]) -> list[Path]:
    """Write several datasets as one set: all to temporaries first, then all renamed.

    If any write fails (or is interrupted) no target is replaced. The renames happen after
    every file is complete, the *first* target last, so once the first file is new the whole
    set is; give every file a shared attribute (e.g. a run id) to let a reader check that
    files found together belong together.

    Returns
    -------
    list of pathlib.Path
        The paths written, in the order given.
    """
    paths = [_check_suffix(Path(path)) for _, path in items]
    try:
        with contextlib.ExitStack() as stack:
            # ExitStack unwinds in reverse: the first path is renamed last.
            temps = [
                stack.enter_context(atomic_output(path, directory=path.suffix.lower() == ".zarr"))
                for path in paths
            ]
            with _signals_between_chunks():
                for (ds, _), path, tmp in zip(items, paths, temps):
                    _write_one(ds, path, tmp)
    except _DefaultSignal as stop:
        signal.raise_signal(stop.args[0])  # temporaries are gone: now terminate as asked
        raise
    return paths


def _check_suffix(path: Path) -> Path:
    if path.suffix.lower() not in (".nc", ".nc4", ".zarr"):
        raise ValueError(
            f"cannot infer the format of {str(path)!r}: use a '.nc' (NetCDF) or "
            f"'.zarr' (Zarr) suffix"
        )
    return path


def _write_one(ds: xr.Dataset, path: Path, tmp: Path) -> None:
    """Write ``ds`` to the temporary ``tmp`` (format of ``path``), in chunks of ≈16 MiB.

    Coordinates get no ``_FillValue`` (CF: coordinate values are never missing); NetCDF
    files get CF-1.8 data types (:func:`_cf18_dtypes`)."""
    ds = _chunked(ds).copy()
    for name in ds.coords:
        ds[name].encoding["_FillValue"] = None
    try:
        if path.suffix.lower() == ".zarr":
            with warnings.catch_warnings():
                # Zarr 3 notes that consolidated metadata is not in its spec; xarray still
                # reads it and it spares remote readers one listing per array.
                warnings.filterwarnings("ignore", message="Consolidated metadata")
                ds.to_zarr(tmp, mode="w")
        else:
            _cf18_dtypes(ds)
            ds.to_netcdf(tmp)
    except (OSError, RuntimeError) as err:
        raise _write_error(path, err, ds.nbytes) from err


_INT32 = np.iinfo("int32")


def _cf18_dtypes(ds: xr.Dataset) -> None:
    """Encode ``ds``'s 64-bit integers in the types CF-1.8 allows (§2.2: no ``int64``).

    xarray writes times (``datetime64``, cftime) and leads (``timedelta64``) as ``int64``
    counts of the coarsest exact unit (``days since …``), and ``np.arange`` indices as
    ``int64``. Times and leads are encoded as ``float64`` instead, exact for counts below
    2**53 (``int32`` silently wraps: seconds since 1900 overflow it by 1968); 64-bit
    integers whose values all fit in ``int32`` are encoded as ``int32``, larger ones are
    left as they are. Packed variables (``scale_factor``/``add_offset``) and encodings
    that are not 64-bit are kept. Changes ``encoding`` in place; values are unchanged.
    """
    for var in ds.variables.values():
        enc = var.encoding
        if "scale_factor" in enc or "add_offset" in enc:
            continue
        target = np.dtype(enc.get("dtype", var.dtype))
        if var.dtype.kind in "mM" or (var.dtype == object and _holds_cftime(var)):
            if "dtype" not in enc or (target.kind in "iu" and target.itemsize == 8):
                enc["dtype"] = "float64"
        elif target.kind in "iu" and target.itemsize == 8 and var.dtype.kind in "iu":
            if var.size == 0 or (
                int(var.min().values) >= _INT32.min and int(var.max().values) <= _INT32.max
            ):
                enc["dtype"] = "int32"


def _holds_cftime(var: xr.Variable) -> bool:
    import cftime

    first = np.ravel(var.values)[:1]
    return first.size == 1 and isinstance(first[0], cftime.datetime)


def _write_error(path: Path, err: Exception, nbytes: int) -> OSError:
    """An ``OSError`` naming the file and the cause: the netCDF library reports a full disk
    as a bare "NetCDF: HDF error", so the free space is checked too."""
    code = getattr(err, "errno", None)
    if code is None:
        try:
            if shutil.disk_usage(path.parent).free < nbytes:
                code = errno.ENOSPC
        except OSError:
            pass
    reason = os.strerror(code).lower() if code else str(err)
    hint = {
        errno.ENOSPC: "free some space or write elsewhere (--out)",
        errno.EACCES: "choose a writable directory (--out)",
        errno.EROFS: "choose a writable directory (--out)",
    }.get(code, "check the path and the disk")
    return OSError(code, f"could not write {path}: {reason}; {hint}")


#: Bytes per dask chunk when writing: the write is interruptible between chunks.
_WRITE_CHUNK_BYTES = 16 * 2**20


def _chunked(ds: xr.Dataset) -> xr.Dataset:
    """Split large in-memory variables into ≈16 MiB blocks along their first dimension, so
    the writer works block by block and a signal can stop it between blocks."""
    chunks = {}
    for name, var in ds.data_vars.items():
        if var.chunks is not None or var.ndim == 0 or var.nbytes <= _WRITE_CHUNK_BYTES:
            continue
        per_row = max(var.nbytes // var.shape[0], 1)
        chunks[name] = {var.dims[0]: max(1, _WRITE_CHUNK_BYTES // per_row)}
    if not chunks:
        return ds
    return ds.assign({name: ds[name].chunk(c) for name, c in chunks.items()})


@contextlib.contextmanager
def _signals_between_chunks() -> Iterator[None]:
    """Deliver SIGINT/SIGTERM only between write blocks, never inside the netCDF library.

    A ``KeyboardInterrupt`` raised while xarray holds its HDF5 lock deadlocks xarray's own
    error path (``close`` waits for the lock forever). Here the signals are recorded, the
    blocks are written one at a time (dask's synchronous scheduler) and the signal's
    previous handler runs before the next block or at the end; its exception unwinds
    through :func:`~faconvlstm.files.atomic_output`, which removes the temporary files. A
    signal whose previous disposition was the default (terminate) is raised again once the
    temporaries are gone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed (and only run) in the main thread
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def record(signum: int, frame: Any) -> None:
        pending.append(signum)

    def deliver() -> None:
        while pending:
            signum = pending.pop(0)
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)  # e.g. the default SIGINT handler: KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                raise _DefaultSignal(signum)

    class _Boundary(Callback):
        def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
            deliver()

    for sig in previous:
        signal.signal(sig, record)
    try:
        with _Boundary(), dask.config.set(scheduler="synchronous"):
            yield
            deliver()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _DefaultSignal(BaseException):
    """A deferred signal whose disposition is the default; raised again, after cleanup, by
    :func:`save_datasets`."""


def _time_coord(times: Any, n: int) -> xr.DataArray:
    arr = as_time_array(times)
    if arr.size != n:
        raise ValueError(f"got {arr.size} time stamps for {n} rows; pass one stamp per row")
    return xr.DataArray(arr, dims="time", attrs={"standard_name": "time", "axis": "T"})


def _grid_coords(
    lat: Any, lon: Any, names: tuple[str, str] = ("lat", "lon")
) -> dict[str, xr.DataArray]:
    """CF latitude/longitude coordinates named ``names`` (WeatherBench2: latitude,
    longitude)."""
    return {
        names[0]: xr.DataArray(
            np.asarray(lat, dtype="float64"),
            dims=names[0],
            attrs={
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
            },
        ),
        names[1]: xr.DataArray(
            np.asarray(lon, dtype="float64"),
            dims=names[1],
            attrs={
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
            },
        ),
    }


def global_attrs(attrs: Mapping[str, Any] | None, title: str) -> dict[str, Any]:
    """CF global attributes: ``Conventions``, ``title``, ``source``, ``history`` and
    ``date_created`` (ISO 8601, UTC), then the caller's ``attrs``."""
    from faconvlstm import __version__

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    out = {
        "Conventions": "CF-1.8",
        "title": title,
        "source": "faconvlstm",
        "history": f"{now} written by faconvlstm {__version__}",
        "date_created": now,
    }
    out.update({k: v for k, v in (attrs or {}).items() if v is not None})

    # NetCDF attributes hold numbers, strings and flat arrays only: booleans become ints,
    # nested structures (run configurations) JSON text.
    def encode(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (dict, list, tuple)) and not _flat_numeric(value):
            return json.dumps(value, default=str)
        return value

    return {k: encode(v) for k, v in out.items()}


def _flat_numeric(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value
    )


#: Values of the ``split`` flag variable on embeddings (CF ``flag_values``/``flag_meanings``).
SPLIT_FLAGS = {"train": 0, "val": 1, "test": 2, "unused": 3}


def _split_variable(times: np.ndarray, splits: Mapping[str, Any]) -> xr.DataArray:
    """``split(time)``: 0 train, 1 val, 2 test, 3 outside every configured year range."""
    years = xr.DataArray(times, dims="time").dt.year.values
    flag = np.full(years.shape, SPLIT_FLAGS["unused"], dtype="int8")
    for name, rng in splits.items():
        if rng is None:
            continue
        first, last = (rng, rng) if isinstance(rng, (int, np.integer)) else tuple(rng)
        flag[(years >= int(first)) & (years <= int(last))] = SPLIT_FLAGS[name]
    return xr.DataArray(
        flag,
        dims="time",
        attrs={
            "long_name": "data split of the time step in the model's training configuration",
            "flag_values": np.array(list(SPLIT_FLAGS.values()), dtype="int8"),
            "flag_meanings": " ".join(SPLIT_FLAGS),
        },
    )


def write_embeddings(
    emb: Any,
    times: Any,
    path: str | os.PathLike,
    attrs: Mapping[str, Any] | None = None,
    splits: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`embeddings_dataset` to ``path`` (``*.nc`` or ``*.zarr``) atomically."""
    return save_dataset(embeddings_dataset(emb, times, attrs, splits), path)


def embeddings_dataset(
    emb: Any,
    times: Any,
    attrs: Mapping[str, Any] | None = None,
    splits: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Per-time-step embeddings as variable ``embedding(time, embedding_dim)``.

    Parameters
    ----------
    emb : array-like or torch.Tensor, shape (N_time, E)
    times : array-like of datetime64 / cftime, shape (N_time,)
        Any CF calendar; cftime stamps keep theirs (``noleap``, ``360_day`` …).
    attrs : mapping, optional
        Global attributes (model name, checkpoint, seed …).
    splits : mapping, optional
        ``{"train": (first, last), "val": …, "test": …}`` inclusive years; adds the flag
        variable ``split(time)`` (:data:`SPLIT_FLAGS`) so a user can tell time steps the
        model was fitted on from held-out ones.
    """
    emb = _to_numpy(emb)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N_time, E), got shape {emb.shape}")
    time = _time_coord(times, emb.shape[0])
    variables = {
        "embedding": (
            ("time", "embedding_dim"),
            emb.astype("float32"),
            {"long_name": "learned representation of each time step", "units": "1"},
        )
    }
    if splits is not None:
        variables["split"] = _split_variable(time.values, splits)
    return xr.Dataset(
        variables,
        coords={
            "time": time,
            "embedding_dim": (
                "embedding_dim",
                np.arange(emb.shape[1]),
                {"long_name": "embedding component"},
            ),
        },
        attrs=global_attrs(attrs, "faconvlstm embeddings"),
    )


def write_labels(
    labels: Any, times: Any, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write cluster labels as integer variable ``label(time)`` (CF ``flag_values``)."""
    return save_dataset(labels_dataset(labels, times, attrs), path)


def labels_dataset(labels: Any, times: Any, attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Cluster labels as integer variable ``label(time)`` (CF ``flag_values`` and
    ``flag_meanings`` ``cluster_0 cluster_1 …``)."""
    labels = _to_numpy(labels).astype("int32").reshape(-1)
    values = np.unique(labels).astype("int32")
    return xr.Dataset(
        {
            "label": (
                "time",
                labels,
                {
                    "long_name": "cluster label",
                    "flag_values": values,
                    "flag_meanings": " ".join(f"cluster_{v}" for v in values),
                },
            )
        },
        coords={"time": _time_coord(times, labels.size)},
        attrs=global_attrs(attrs, "faconvlstm cluster labels"),
    )


def cf_name(name: str) -> str:
    """A netCDF/CF-safe variable name: letters, digits and ``_``, starting with a letter
    (``"2m_temperature"`` → ``"v_2m_temperature"``, ``"t-2m"`` → ``"t_2m"``)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return safe if safe[:1].isalpha() else f"v_{safe}"


def _field_variables(
    arr: np.ndarray,
    lead_dims: tuple[str, ...],
    channels: Sequence[str],
    units: Sequence[str] | None,
    what: str,
    grid_dims: tuple[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One variable per field from ``arr`` of shape ``lead + (C, H, W)``.

    Channels ``"var@level"`` of one variable become ``var(*lead, level, lat, lon)`` with a
    ``level`` coordinate in hPa (``level_<var>`` when variables have different levels);
    the others ``var(*lead, lat, lon)``. Units and standard names come from ``units`` or
    :data:`CF_VARIABLES`. Returns ``(data_vars, coords)``.
    """
    groups: dict[str, list[tuple[int, float | None]]] = {}
    for i, ch in enumerate(channels):
        var, _, level = ch.partition("@")
        groups.setdefault(var, []).append((i, float(level) if level else None))
    level_sets = {
        tuple(lv for _, lv in members) for members in groups.values() if members[0][1] is not None
    }
    data_vars, coords = {}, {}
    for var, members in groups.items():
        index = [i for i, _ in members]
        known = CF_VARIABLES.get(var)
        unit = str(units[index[0]]) if units is not None else (known[1] if known else "")
        attrs = {"long_name": f"{what} of {var}"}
        if known:
            attrs["standard_name"] = known[0]
        if unit:
            attrs["units"] = unit
        levels = [lv for _, lv in members]
        name = cf_name(var)
        if levels[0] is None:
            if len(members) != 1:
                raise ValueError(f"channel {var!r} appears {len(members)} times")
            data_vars[name] = ((*lead_dims, *grid_dims), arr[..., index[0], :, :], attrs)
            continue
        if None in levels:
            raise ValueError(f"variable {var!r} has channels with and without a level")
        dim = "level" if len(level_sets) == 1 else f"level_{name}"
        coords[dim] = (
            dim,
            np.asarray(levels),
            {
                "standard_name": "air_pressure",
                "long_name": "pressure level",
                "units": "hPa",
                "axis": "Z",
                "positive": "down",
            },
        )
        data_vars[name] = ((*lead_dims, dim, *grid_dims), arr[..., index, :, :], attrs)
    return data_vars, coords


def write_fields(
    arr: Any,
    times: Any,
    channels: Sequence[str],
    lat: Any,
    lon: Any,
    path: str | os.PathLike,
    name: str = "forecast",
    attrs: Mapping[str, Any] | None = None,
    units: Sequence[str] | None = None,
) -> Path:
    """Write :func:`fields_dataset` to ``path`` (``*.nc`` or ``*.zarr``) atomically."""
    return save_dataset(fields_dataset(arr, times, channels, lat, lon, name, attrs, units), path)


def fields_dataset(
    arr: Any,
    times: Any,
    channels: Sequence[str],
    lat: Any,
    lon: Any,
    name: str = "reconstruction",
    attrs: Mapping[str, Any] | None = None,
    units: Sequence[str] | None = None,
) -> xr.Dataset:
    """Gridded fields (e.g. reconstructions), one CF variable per field.

    ``t2m(time, lat, lon)`` for a surface channel ``"t2m"``; ``temperature(time, level,
    lat, lon)`` for channels ``"temperature@500"``, ``"temperature@850"`` (``level`` in
    hPa). Each variable has ``units`` and, where :data:`CF_VARIABLES` knows the name,
    ``standard_name``; names are made CF-safe (:func:`cf_name`). The file reopens with
    :func:`~faconvlstm.data.open_gridded` with the same channel names.

    Parameters
    ----------
    arr : array-like or torch.Tensor, shape (N_time, C, H, W)
        Fields in physical units (denormalise first, see ``NormStats.denormalize_array``).
    times : array-like, shape (N_time,)
        Valid time of each field.
    channels : list of str, length C
        ``"variable"`` or ``"variable@level"`` (hPa), as :func:`open_gridded` names them.
    lat, lon : array-like, shapes (H,), (W,)
        Degrees north / east, as in the input.
    name : str
        What the fields are (``"reconstruction"`` …): the title and ``long_name``.
    attrs : mapping, optional
        Global attributes.
    units : list of str, optional
        Units per channel; default from :data:`CF_VARIABLES` where the variable is known.
    """
    arr = _to_numpy(arr)
    if arr.ndim != 4:
        raise ValueError(f"fields must be (N_time, C, H, W), got shape {arr.shape}")
    channels = [str(c) for c in channels]
    n, c, h, w = arr.shape
    if len(channels) != c:
        raise ValueError(f"got {len(channels)} channel names for {c} channels")
    coords = _grid_coords(lat, lon)
    if coords["lat"].size != h or coords["lon"].size != w:
        raise ValueError(
            f"grid ({coords['lat'].size}, {coords['lon'].size}) does not match "
            f"fields of shape (H, W) = ({h}, {w})"
        )
    data_vars, level_coords = _field_variables(
        arr.astype("float32"), ("time",), channels, units, name, ("lat", "lon")
    )
    return xr.Dataset(
        data_vars,
        coords={"time": _time_coord(times, n), **level_coords, **coords},
        attrs=global_attrs(attrs, f"faconvlstm {name}"),
    )


def forecast_dataset(
    fc: Any,
    init: Any,
    valid: Any,
    channels: Sequence[str],
    lat: Any,
    lon: Any,
    attrs: Mapping[str, Any] | None = None,
    units: Sequence[str] | None = None,
) -> xr.Dataset:
    """Forecasts in the WeatherBench2 layout, one CF variable per field.

    ``t2m(time, prediction_timedelta, latitude, longitude)`` (and ``temperature(time,
    prediction_timedelta, level, latitude, longitude)`` for channels with pressure levels):
    ``time`` is the initialisation (the last input step), ``prediction_timedelta`` the lead
    time (``timedelta64``), and ``valid_time(time, prediction_timedelta)`` = time + lead.

    Parameters
    ----------
    fc : array-like, shape (N_init, N_lead, C, H, W)
        Forecasts in physical units.
    init : array-like, shape (N_init,)
        Initialisation times.
    valid : array-like, shape (N_init, N_lead)
        Valid times; the leads ``valid − init`` must be the same for every initialisation.
    channels, units : as for :func:`fields_dataset`
    lat, lon : array-like, shapes (H,), (W,)
    attrs : mapping, optional
        Global attributes.
    """
    fc = _to_numpy(fc)
    if fc.ndim != 5:
        raise ValueError(f"forecasts must be (N_init, N_lead, C, H, W), got shape {fc.shape}")
    time = _time_coord(init, fc.shape[0])
    valid = np.stack([as_time_array(v) for v in valid])
    lead = pd.to_timedelta((valid - time.values[:, None]).ravel()).values.reshape(valid.shape)
    if not (lead == lead[:1]).all():
        raise ValueError(
            "forecast leads differ between initialisations; the time axis must have a constant step"
        )
    data_vars, level_coords = _field_variables(
        fc.astype("float32"),
        ("time", "prediction_timedelta"),
        [str(c) for c in channels],
        units,
        "forecast",
        ("latitude", "longitude"),
    )
    return xr.Dataset(
        data_vars,
        coords={
            "time": time.assign_attrs(long_name="initialisation time (last input step)"),
            "prediction_timedelta": (
                "prediction_timedelta",
                lead[0],
                {"long_name": "lead time", "standard_name": "forecast_period"},
            ),
            "valid_time": (
                ("time", "prediction_timedelta"),
                valid,
                {"long_name": "valid time", "standard_name": "time"},
            ),
            **level_coords,
            **_grid_coords(lat, lon, ("latitude", "longitude")),
        },
        attrs=global_attrs(attrs, "faconvlstm forecast"),
    )


def features_dataset(
    arr: Any,
    times: Any,
    lat: Any,
    lon: Any,
    name: str = "hidden",
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Learned feature maps (e.g. hidden states) as ``name(time, feature, lat, lon)``.

    Parameters
    ----------
    arr : array-like, shape (N_time, F, H, W)
        Dimensionless features; ``lat``/``lon`` (H,), (W,) in degrees (cell centres of a
        possibly pooled grid).
    """
    arr = _to_numpy(arr)
    if arr.ndim != 4:
        raise ValueError(f"features must be (N_time, F, H, W), got shape {arr.shape}")
    return xr.Dataset(
        {
            name: (
                ("time", "feature", "lat", "lon"),
                arr.astype("float32"),
                {"long_name": f"{name} state of the last recurrent layer", "units": "1"},
            )
        },
        coords={
            "time": _time_coord(times, arr.shape[0]),
            "feature": ("feature", np.arange(arr.shape[1]), {"long_name": "channel index"}),
            **_grid_coords(lat, lon),
        },
        attrs=global_attrs(attrs, f"faconvlstm {name} states"),
    )


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
