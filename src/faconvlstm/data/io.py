"""Write results (embeddings, cluster labels, reconstructions, forecasts) as NetCDF / Zarr.

Every writer builds an :class:`xarray.Dataset` carrying the input's time stamps and grid
coordinates with CF attributes, then hands it to :func:`save_dataset`, which writes
atomically: to a temporary file beside the target, then ``os.replace``. A reader never sees
a half-written file, and an interrupted run leaves the previous result intact. The format
follows the suffix: ``.nc`` → NetCDF-4, ``.zarr`` → Zarr.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr
from dask.callbacks import Callback

from faconvlstm.data.time import as_time_array
from faconvlstm.files import atomic_output

__all__ = [
    "CF_VARIABLES",
    "embeddings_dataset",
    "fields_dataset",
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
    """Write ``ds`` to the temporary ``tmp`` (format of ``path``), in chunks of ≈16 MiB."""
    ds = _chunked(ds)
    try:
        if path.suffix.lower() == ".zarr":
            with warnings.catch_warnings():
                # Zarr 3 notes that consolidated metadata is not in its spec; xarray still
                # reads it and it spares remote readers one listing per array.
                warnings.filterwarnings("ignore", message="Consolidated metadata")
                ds.to_zarr(tmp, mode="w")
        else:
            ds.to_netcdf(tmp)
    except (OSError, RuntimeError) as err:
        raise _write_error(path, err, ds.nbytes) from err


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


def _grid_coords(lat: Any, lon: Any) -> dict[str, xr.DataArray]:
    return {
        "lat": xr.DataArray(
            np.asarray(lat, dtype="float64"),
            dims="lat",
            attrs={
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
            },
        ),
        "lon": xr.DataArray(
            np.asarray(lon, dtype="float64"),
            dims="lon",
            attrs={
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
            },
        ),
    }


def _global_attrs(attrs: Mapping[str, Any] | None, title: str) -> dict[str, Any]:
    out = {"Conventions": "CF-1.8", "title": title, "source": "faconvlstm"}
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


def write_embeddings(
    emb: Any, times: Any, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write :func:`embeddings_dataset` to ``path`` (``*.nc`` or ``*.zarr``) atomically."""
    return save_dataset(embeddings_dataset(emb, times, attrs), path)


def embeddings_dataset(
    emb: Any, times: Any, attrs: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """Per-time-step embeddings as variable ``embedding(time, embedding_dim)``.

    Parameters
    ----------
    emb : array-like or torch.Tensor, shape (N_time, E)
    times : array-like of datetime64 / cftime, shape (N_time,)
    attrs : mapping, optional
        Global attributes (model name, checkpoint, seed …).
    """
    emb = _to_numpy(emb)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be (N_time, E), got shape {emb.shape}")
    return xr.Dataset(
        {
            "embedding": (
                ("time", "embedding_dim"),
                emb.astype("float32"),
                {"long_name": "learned representation of each time step", "units": "1"},
            )
        },
        coords={"time": _time_coord(times, emb.shape[0]), "embedding_dim": np.arange(emb.shape[1])},
        attrs=_global_attrs(attrs, "faconvlstm embeddings"),
    )


def write_labels(
    labels: Any, times: Any, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write cluster labels as integer variable ``label(time)`` (CF ``flag_values``)."""
    return save_dataset(labels_dataset(labels, times, attrs), path)


def labels_dataset(labels: Any, times: Any, attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Cluster labels as integer variable ``label(time)`` (CF ``flag_values``)."""
    labels = _to_numpy(labels).astype("int32").reshape(-1)
    return xr.Dataset(
        {
            "label": (
                "time",
                labels,
                {"long_name": "cluster label", "flag_values": np.unique(labels).astype("int32")},
            )
        },
        coords={"time": _time_coord(times, labels.size)},
        attrs=_global_attrs(attrs, "faconvlstm cluster labels"),
    )


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
    name: str = "forecast",
    attrs: Mapping[str, Any] | None = None,
    units: Sequence[str] | None = None,
) -> xr.Dataset:
    """Gridded fields (reconstructions, forecasts) as ``name(time, channel, lat, lon)``.

    The file reopens with :func:`~faconvlstm.data.open_gridded`, which reads the ``channel``
    coordinate back as channel names.

    Parameters
    ----------
    arr : array-like or torch.Tensor, shape (N_time, C, H, W)
        Fields in physical units (denormalise first, see ``NormStats.denormalize_array``).
    times : array-like, shape (N_time,)
        Valid time of each field.
    channels : list of str, length C
    lat, lon : array-like, shapes (H,), (W,)
        Degrees north / east, as in the input.
    name : str
        Variable name (``"forecast"``, ``"reconstruction"`` …).
    attrs : mapping, optional
        Global attributes.
    units : list of str, optional
        Units per channel; default from :data:`CF_VARIABLES` where the variable is known.
        Standard names per channel are written as channel coordinates
        ``channel_standard_name`` and ``channel_units`` (CF allows one standard name per
        variable, and channels differ).
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
    known = [CF_VARIABLES.get(ch.split("@")[0]) for ch in channels]
    std_names = [k[0] if k else "" for k in known]
    units = list(units) if units is not None else [k[1] if k else "" for k in known]
    var_attrs = {"long_name": f"{name} of {', '.join(channels)}"}
    if len(set(units)) == 1 and units[0]:
        var_attrs["units"] = units[0]
    if len(set(std_names)) == 1 and std_names[0]:
        var_attrs["standard_name"] = std_names[0]
    return xr.Dataset(
        {name: (("time", "channel", "lat", "lon"), arr.astype("float32"), var_attrs)},
        coords={
            "time": _time_coord(times, n),
            "channel": xr.DataArray(
                np.array(channels, dtype=object),
                dims="channel",
                attrs={"long_name": "variable@pressure_level (hPa)"},
            ),
            "channel_standard_name": ("channel", np.array(std_names, dtype=object)),
            "channel_units": ("channel", np.array(units, dtype=object)),
            **coords,
        },
        attrs=_global_attrs(attrs, f"faconvlstm {name}"),
    )


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
