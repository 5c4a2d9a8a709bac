"""Normalisation statistics and day-of-year climatology, computed on training years only.

Per channel ``c`` the model sees

.. math::

    z_c(t) = \\frac{x_c(t) - \\bar x_c(k(t)) - \\mu_c}{\\sigma_c}

where ``x̄_c(k)`` is the (optional) climatology for the calendar key ``k(t)`` of time ``t``
(day of year, or month for monthly/coarser data) and ``μ_c``, ``σ_c`` are the NaN-aware
mean and standard deviation of ``x − x̄`` over the training period, all grid points pooled.
Without a climatology ``x̄ = 0``.

The day-of-year climatology follows WeatherBench2: for each day of year ``k`` the mean pools
every training sample whose day of year lies within ±``window``/2 days of ``k`` (circularly,
so late December and early January share samples):

.. math::

    \\bar x(k) = \\frac{\\sum_{|j - k| \\le w/2} S(j)}{\\sum_{|j - k| \\le w/2} N(j)},

with ``S(j)`` the sum and ``N(j)`` the count of valid (non-NaN) values on day of year ``j``.
The default ``w = 61`` days is WeatherBench2's.

Statistics travel with checkpoints as JSON (:meth:`NormStats.save`); a climatology, being a
gridded field, is written beside it as NetCDF.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter1d

from faconvlstm.data.time import as_time_array, day_of_year, month_of_year, time_step_days
from faconvlstm.files import atomic_write_json

__all__ = [
    "NormStats",
    "climatology_keys",
    "compute_climatology",
    "compute_stats",
    "subtract_climatology",
]

_CLIM_LENGTH = {"dayofyear": 366, "month": 12}


def climatology_keys(times: Any, kind: str) -> np.ndarray:
    """Calendar key of each time stamp: day of year (1…366) or month (1…12).

    Returns
    -------
    numpy.ndarray of int, shape (T,)
    """
    if kind == "dayofyear":
        return day_of_year(times)
    if kind == "month":
        return month_of_year(times)
    raise ValueError(f"climatology kind must be 'dayofyear' or 'month', got {kind!r}")


def _select_period(da: xr.DataArray, period: Any) -> xr.DataArray:
    if period is None:
        return da
    if isinstance(period, slice):
        return da.sel(time=period)
    if isinstance(period, (int, np.integer)):
        period = (int(period), int(period))
    if isinstance(period, str):
        return da.sel(time=period)
    first, last = period
    years = da["time"].dt.year.values
    return da.isel(time=np.flatnonzero((years >= first) & (years <= last)))


def compute_climatology(
    da: xr.DataArray, kind: str = "dayofyear", window: int = 61
) -> xr.DataArray:
    """Mean seasonal cycle of ``da`` per calendar key, smoothed circularly (see module doc).

    Parameters
    ----------
    da : xarray.DataArray, dims (time, channel, lat, lon)
        Any other non-time dimensions (``level``, none of ``channel``…) are kept as well.
    kind : {"dayofyear", "month"}
    window : int
        Smoothing window in days (``"dayofyear"`` only; 1 disables smoothing).

    Returns
    -------
    xarray.DataArray, dims (key, channel, lat, lon), float32, in memory
        ``key`` = 1…366 (day of year) or 1…12 (month). Keys never seen (e.g. day 366 with
        no leap year in the period) are filled by the circular smoothing, or NaN. The
        non-time dimensions follow the order channel, lat, lon, then any others.
    """
    keys = climatology_keys(da["time"].values, kind)
    n = _CLIM_LENGTH[kind]
    full = np.arange(1, n + 1)
    # the evaluation metrics pass fields without a channel or with extra dims (level)
    da = da.transpose("time", *(d for d in ("channel", "lat", "lon") if d in da.dims), ...)
    space = da.dims[1:]
    shape = da.shape[1:]
    sums = np.zeros((n, int(np.prod(shape))))
    counts = np.zeros_like(sums)
    # Stream over time blocks (dask chunks), accumulating per-key sums and counts with a
    # one-hot matrix product: memory is two (keys × grid) tables plus one block.
    step = da.chunks[0] if da.chunks is not None else (da.sizes["time"],)
    start = 0
    with dask.config.set(scheduler="synchronous"):
        for size in step:
            block = np.asarray(da.isel(time=slice(start, start + size)).values, dtype="float64")
            block = block.reshape(size, -1)
            valid = np.isfinite(block)
            onehot = (keys[start : start + size, None] == full[None, :]).astype("float64")
            sums += onehot.T @ np.where(valid, block, 0.0)
            counts += onehot.T @ valid.astype("float64")
            start += size
    if kind == "dayofyear" and window > 1:
        sums = uniform_filter1d(sums, size=window, axis=0, mode="wrap")
        counts = uniform_filter1d(counts, size=window, axis=0, mode="wrap")
    with np.errstate(invalid="ignore", divide="ignore"):
        clim = np.where(counts > 0, sums / np.maximum(counts, 1e-300), np.nan)
    clim = clim.reshape((n, *shape))
    return xr.DataArray(
        clim.astype("float32"),
        dims=("key", *space),
        coords={"key": full, **{d: da[d].values for d in space}},
        name="climatology",
        attrs={"kind": kind, "window": int(window) if kind == "dayofyear" else 1},
    )


def subtract_climatology(da: xr.DataArray, clim: xr.DataArray) -> xr.DataArray:
    """Anomalies ``x(t) − x̄(k(t))``, lazily, chunk by chunk (never broadcast in memory).

    Parameters
    ----------
    da : xarray.DataArray, dims (time, channel, lat, lon), numpy- or dask-backed
    clim : xarray.DataArray, dims (key, channel, lat, lon), from :func:`compute_climatology`
    """
    keys = climatology_keys(da["time"].values, clim.attrs.get("kind", "dayofyear"))
    index = keys - int(clim["key"].values[0])
    table = np.asarray(clim.values)
    if table.shape[1:] != tuple(da.sizes[d] for d in ("channel", "lat", "lon")):
        raise ValueError(
            f"climatology grid {table.shape[1:]} (channel, lat, lon) does not match the data "
            f"{tuple(da.sizes[d] for d in ('channel', 'lat', 'lon'))}; recompute it on this grid"
        )
    da = da.transpose("time", "channel", "lat", "lon")
    if da.chunks is None:
        return da - table[index]

    def _subtract(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        (t0, t1), (c0, c1), (y0, y1), (x0, x1) = block_info[0]["array-location"]
        return block - table[index[t0:t1], c0:c1, y0:y1, x0:x1]

    data = da.data.map_blocks(_subtract, dtype=np.result_type(da.dtype, table.dtype))
    return da.copy(data=data)


@dataclass
class NormStats:
    """Per-channel normalisation statistics (and optional climatology).

    Attributes
    ----------
    channels : list of str, length C
        Channel names, in the order of ``mean`` and ``std``.
    mean, std : numpy.ndarray of float64, shape (C,)
        μ and σ of the (anomaly) field over the training period; ``z = (x − x̄ − μ)/σ``.
    climatology : bool
        Whether a climatology ``x̄`` is subtracted before ``μ``.
    climatology_kind : {"dayofyear", "month"} or None
    climatology_window : int or None
        Smoothing window (days) of a day-of-year climatology.
    period : str or None
        Human-readable training period the statistics come from (provenance).
    climatology_values : xarray.DataArray or None
        dims (key, channel, lat, lon); saved beside the JSON as NetCDF.
    """

    channels: list[str]
    mean: np.ndarray
    std: np.ndarray
    climatology: bool = False
    climatology_kind: str | None = None
    climatology_window: int | None = None
    period: str | None = None
    climatology_values: xr.DataArray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.channels = [str(c) for c in self.channels]
        self.mean = np.asarray(self.mean, dtype="float64").reshape(-1)
        self.std = np.asarray(self.std, dtype="float64").reshape(-1)
        if not (len(self.channels) == self.mean.size == self.std.size):
            raise ValueError(
                f"channels ({len(self.channels)}), mean ({self.mean.size}) and std "
                f"({self.std.size}) must have the same length"
            )
        if self.climatology_values is not None and "kind" not in self.climatology_values.attrs:
            # e.g. rebuilt from a checkpoint tensor: the kind lives on NormStats.
            self.climatology_values = self.climatology_values.assign_attrs(
                kind=self.climatology_kind or "dayofyear"
            )
        if self.climatology and self.climatology_values is None:
            raise ValueError(
                "climatology=True needs climatology_values (key, channel, lat, "
                "lon); use compute_stats(..., climatology=True)"
            )

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the climatology field itself is not included)."""
        return {
            "channels": list(self.channels),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "climatology": bool(self.climatology),
            "climatology_kind": self.climatology_kind,
            "climatology_window": self.climatology_window,
            "period": self.period,
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], climatology_values: xr.DataArray | None = None
    ) -> NormStats:
        """Inverse of :meth:`to_dict`; pass the climatology field when ``climatology``."""
        return cls(
            channels=list(d["channels"]),
            mean=np.asarray(d["mean"], dtype="float64"),
            std=np.asarray(d["std"], dtype="float64"),
            climatology=bool(d.get("climatology", False)),
            climatology_kind=d.get("climatology_kind"),
            climatology_window=d.get("climatology_window"),
            period=d.get("period"),
            climatology_values=climatology_values,
        )

    @staticmethod
    def _climatology_path(path: Path) -> Path:
        return path.with_name(path.stem + ".climatology.nc")

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically (and ``<stem>.climatology.nc`` beside it when needed)."""
        from faconvlstm.data.io import save_dataset

        path = Path(path)
        payload = self.to_dict()
        if self.climatology_values is not None:
            clim_path = self._climatology_path(path)
            save_dataset(self.climatology_values.to_dataset(), clim_path)
            payload["climatology_file"] = clim_path.name
        return atomic_write_json(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NormStats:
        """Read statistics written by :meth:`save`."""
        path = Path(path)
        with open(path) as fh:
            d = json.load(fh)
        clim = None
        if d.get("climatology_file"):
            with xr.open_dataset(path.parent / d["climatology_file"]) as ds:
                clim = ds["climatology"].load()
        return cls.from_dict(d, climatology_values=clim)

    # ---------------------------------------------------------------- application
    def check_channels(self, channels: Sequence[str]) -> None:
        """Raise ``ValueError`` unless ``channels`` equals :attr:`channels` (same order)."""
        channels = [str(c) for c in channels]
        if channels != self.channels:
            raise ValueError(
                f"statistics were computed for channels {self.channels} but the data has "
                f"{channels}; open the data with the same variables/levels (in this order) "
                f"or recompute the statistics"
            )

    def _climatology_for(self, times: Any) -> np.ndarray:
        """x̄ for each stamp: shape ``times.shape + (C, H, W)`` ((T,) or batched (B, T))."""
        if times is None:
            raise ValueError(
                "these statistics include a climatology: pass the time stamps "
                "of the block (e.g. item['time'] or batch['time'])"
            )
        shape = np.shape(getattr(times, "values", times))
        keys = climatology_keys(as_time_array(times), self.climatology_kind or "dayofyear")
        values = self.climatology_values
        table = values.values[keys - int(values["key"].values[0])]
        return table.reshape(shape + table.shape[1:])

    def normalize_array(self, x: np.ndarray, times: Any = None) -> np.ndarray:
        """``z = (x − x̄(t) − μ)/σ`` for a block x of shape (T, C, H, W); NaN stays NaN."""
        x = np.asarray(x, dtype="float32")
        if self.climatology:
            x = x - self._climatology_for(times)
        return (x - self.mean[:, None, None].astype("float32")) / self.std[:, None, None].astype(
            "float32"
        )

    def denormalize_array(self, z: np.ndarray, times: Any = None) -> np.ndarray:
        """Inverse of :meth:`normalize_array`: ``x = z·σ + μ + x̄(t)``.

        ``z`` is (T, C, H, W) with ``times`` (T,), or a batch (B, T, C, H, W) with ``times``
        (B, T) as :func:`~faconvlstm.data.collate_windows` returns them.
        """
        z = np.asarray(z, dtype="float32")
        x = z * self.std[:, None, None].astype("float32") + self.mean[:, None, None].astype(
            "float32"
        )
        if self.climatology:
            x = x + self._climatology_for(times)
        return x

    def normalize(self, da: xr.DataArray) -> xr.DataArray:
        """Lazy :meth:`normalize_array` on a (time, channel, lat, lon) DataArray."""
        self.check_channels(da["channel"].values)
        if self.climatology:
            da = subtract_climatology(da, self.climatology_values)
        mean = xr.DataArray(self.mean, dims="channel", coords={"channel": da["channel"]})
        std = xr.DataArray(self.std, dims="channel", coords={"channel": da["channel"]})
        return (da - mean) / std


def _warn_dominating_values(
    sub: xr.DataArray,
    channels: list[str],
    mean: np.ndarray,
    std: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    count: np.ndarray,
) -> None:
    """Warn when a few values alone set a channel's standard deviation.

    By Samuelson's inequality no value of ``n`` lies more than ``√(n−1)`` standard
    deviations from their mean, and one value ``v`` far from all others sits at about that
    bound (it alone makes ``σ ≈ |v|/√n``). Real fields, heavy-tailed precipitation included,
    stay far below it for large ``n``; a lone undeclared fill value (``1e18``) or corrupt
    record reaches it. The warning fires when the farthest value lies beyond
    ``max(√n/4, 20)`` standard deviations (up to ~16 such values are caught; the floor of
    20 keeps small samples, whose bound is low, from false alarms).
    """
    far = np.maximum(high - mean, mean - low) / np.where(std > 0, std, np.inf)
    limit = np.maximum(np.sqrt(count) / 4.0, 20.0)
    for i in np.flatnonzero(far > limit):
        value = high[i] if high[i] - mean[i] >= mean[i] - low[i] else low[i]
        hit = (sub.isel(channel=i) == value).any(("lat", "lon")).values
        when = sub["time"].values[int(np.argmax(hit))]
        warnings.warn(
            f"channel {channels[i]!r}: the value {value:.6g} at time {when} lies "
            f"{far[i]:.0f} standard deviations from the mean and alone sets the channel's "
            f"std ({std[i]:.3g}); it looks like an undeclared missing value or a corrupt "
            f"record. Mask it (declare _FillValue / missing_value, or lower "
            f"extreme_as_missing) or fix the file, else normalisation flattens this "
            f"channel to ~0",
            stacklevel=3,
        )


def compute_stats(
    da: xr.DataArray,
    time_slice_or_years: slice | tuple[int, int] | int | str | None = None,
    *,
    climatology: bool | str = False,
    climatology_window: int = 61,
) -> NormStats:
    """Per-channel NaN-aware mean and standard deviation over a training period.

    Parameters
    ----------
    da : xarray.DataArray, dims (time, channel, lat, lon)
        As returned by :func:`~faconvlstm.data.open_gridded` (may be lazy; reduced with dask
        chunk by chunk, never loaded whole).
    time_slice_or_years : slice, (first_year, last_year), int, str or None
        Training period: a time-label slice (``slice("1979", "2015")``), an inclusive year
        range, one year, or ``None`` for all of ``da``.
    climatology : bool or {"dayofyear", "month"}
        Subtract a climatology first (anomalies). ``True`` picks ``"dayofyear"`` for data
        finer than ~monthly (median step < 28 days) and ``"month"`` otherwise.
    climatology_window : int
        Day-of-year smoothing window in days (WeatherBench2 uses 61).

    Returns
    -------
    NormStats

    Raises
    ------
    ValueError
        Empty period, or a channel with no valid value in the period (all NaN).
    """
    sub = _select_period(da, time_slice_or_years)
    if sub.sizes["time"] == 0:
        raise ValueError(
            f"training period {time_slice_or_years!r} selects no time steps; the data covers "
            f"{da['time'].values[0]} … {da['time'].values[-1]}"
        )
    kind = None
    clim = None
    if climatology:
        if climatology is True:
            step = time_step_days(sub["time"].values) if sub.sizes["time"] > 1 else 1.0
            kind = "dayofyear" if step < 28 else "month"
        else:
            kind = str(climatology)
        clim = compute_climatology(sub, kind, climatology_window)
        sub = subtract_climatology(sub, clim)
    x = sub.astype("float64")
    dims = ("time", "lat", "lon")
    mean, std, count, high, low = dask.compute(
        x.mean(dims, skipna=True),
        x.std(dims, skipna=True),
        x.count(dims),
        x.max(dims, skipna=True),
        x.min(dims, skipna=True),
    )
    channels = [str(c) for c in da["channel"].values]
    empty = [c for c, n in zip(channels, count.values) if n == 0]
    if empty:
        raise ValueError(
            f"channel(s) {empty} have no valid (non-NaN) value in the training period "
            f"{time_slice_or_years!r}; drop them (variables=…/levels=…) or choose other years"
        )
    std = std.values.copy()
    # max == min is exact; the std of equal values can come out as rounding noise (1e-14).
    flat = ~(std > 0) | (high.values == low.values)
    constant = [c for c, f in zip(channels, flat) if f]
    if constant:
        warnings.warn(
            f"channel(s) {constant} are constant over the training period (std 0): they "
            f"carry no information. Their std is set to 1 so they are only centred; drop "
            f"them (variables=…/levels=…) unless that is intended",
            stacklevel=2,
        )
        std[flat] = 1.0
    _warn_dominating_values(sub, channels, mean.values, std, high.values, low.values, count.values)
    times = sub["time"].values
    return NormStats(
        channels=channels,
        mean=mean.values,
        std=std,
        climatology=clim is not None,
        climatology_kind=kind,
        climatology_window=climatology_window if kind == "dayofyear" else None,
        period=f"{times[0]} … {times[-1]}",
        climatology_values=clim,
    )
