"""Normalisation statistics and day-of-year climatology, computed on training years only.

Per channel ``c`` the model sees

.. math::

    z_c(t) = \\frac{x_c(t) - \\bar x_c(k(t)) - \\mu_c}{\\sigma_c}

where ``x̄_c(k)`` is the (optional) climatology for the calendar key ``k(t)`` of time ``t``
(day of year, or month for monthly/coarser data) and ``μ_c``, ``σ_c`` are the NaN-aware
mean and standard deviation of ``x − x̄`` over the training period, all grid points pooled.
Without a climatology ``x̄ = 0``.

Two options handle a non-stationary record (both fitted on the training period only):

.. math::

    z_c(t) = \\frac{x_c(t) - \\bar x_c(k(t)) - b_c\\,(\\tau(t) - \\bar\\tau) - \\mu_c}
                   {\\sigma_{c, s(t)}}

* ``detrend``: ``b_c`` (units of ``x`` per day, one value per channel and grid point) is the
  least-squares slope of the anomaly ``x − x̄`` against ``τ(t)``, the time in days since
  1970-01-01 in the data's own calendar (cftime ``noleap``/``360_day`` stamps use their
  calendar, as the climatology does), and ``τ̄`` the mean time of the training period. Only
  the slope is removed: each grid point keeps its training-period mean, and the residual has
  no linear trend over the training period. Without ``detrend`` ``b = 0``.
* ``standardize="season"``: ``σ_{c,s}`` is the root-mean-square deviation from ``μ_c`` of
  the (anomaly, detrended) field over the training samples of season ``s(t)`` ∈ {DJF, MAM,
  JJA, SON}, all grid points pooled; a season absent from the training period falls back
  to ``σ_c``. With ``"global"`` (the default) ``σ_{c,s} = σ_c``.

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
    "days_since_epoch",
    "fit_trend",
    "season_index",
    "subtract_climatology",
]

_CLIM_LENGTH = {"dayofyear": 366, "month": 12}

#: Season names in the order of :attr:`NormStats.season_std` (index = ``month % 12 // 3``).
SEASONS = ("DJF", "MAM", "JJA", "SON")

#: ``standardize`` values accepted by :func:`compute_stats`.
STANDARDIZE = ("global", "season")


def days_since_epoch(times: Any) -> np.ndarray:
    """``τ``: time in days since 1970-01-01 00:00 in the stamps' own calendar (float64).

    ``datetime64`` stamps count proleptic Gregorian days; ``cftime`` stamps count days of
    their calendar (a ``noleap`` year is 365 days, a ``360_day`` year 360), so a trend per
    day means the same thing in every calendar.

    Returns
    -------
    numpy.ndarray of float64, the shape of ``times`` ((T,) or batched (B, T))
    """
    shape = np.shape(getattr(times, "values", times))
    arr = as_time_array(times)
    if arr.size == 0:
        return np.zeros(shape)
    if arr.dtype == object:  # cftime stamps
        import cftime

        days = cftime.date2num(
            list(arr), "days since 1970-01-01 00:00:00", calendar=arr[0].calendar
        )
        days = np.asarray(days, dtype="float64")
    else:
        days = (arr - np.datetime64("1970-01-01T00:00:00", "ns")).astype("int64") / 86400e9
    return days.reshape(shape)


def season_index(times: Any) -> np.ndarray:
    """Season of each stamp: 0 DJF, 1 MAM, 2 JJA, 3 SON (shape of ``times``)."""
    shape = np.shape(getattr(times, "values", times))
    return (month_of_year(as_time_array(times)) % 12 // 3).reshape(shape)


def fit_trend(da: xr.DataArray, tau: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares linear trend in time per channel and grid point, NaN-aware.

    .. math::

        b = \\frac{\\sum_t m_t (\\tau_t - \\bar\\tau_m)(x_t - \\bar x_m)}
                 {\\sum_t m_t (\\tau_t - \\bar\\tau_m)^2}

    with ``m_t`` = 1 for valid (finite) values and ``τ̄_m``, ``x̄_m`` the means over them.
    Streamed over the dask time chunks (five (C, H, W) accumulators in memory).

    Parameters
    ----------
    da : xarray.DataArray, dims (time, channel, lat, lon)
    tau : numpy.ndarray, shape (T,)
        Times in days (:func:`days_since_epoch`).

    Returns
    -------
    (slope, center)
        ``slope`` (C, H, W) float64 in units of ``da`` per day (0 where fewer than two
        valid times); ``center`` the mean of ``tau`` (days), the time the removed trend
        crosses zero.
    """
    da = da.transpose("time", "channel", "lat", "lon")
    center = float(np.mean(tau))
    t = np.asarray(tau, dtype="float64") - center  # centred: no cancellation in the sums
    shape = da.shape[1:]
    n, st, stt, sx, stx = (np.zeros(shape) for _ in range(5))
    step = da.chunks[0] if da.chunks is not None else (da.sizes["time"],)
    start = 0
    with dask.config.set(scheduler="synchronous"):
        for size in step:
            block = np.asarray(da.isel(time=slice(start, start + size)).values, dtype="float64")
            tb = t[start : start + size, None, None, None]
            valid = np.isfinite(block)
            xb = np.where(valid, block, 0.0)
            m = valid.astype("float64")
            n += m.sum(0)
            st += (m * tb).sum(0)
            stt += (m * tb * tb).sum(0)
            sx += xb.sum(0)
            stx += (xb * tb).sum(0)
            start += size
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        var = stt - st * st / nn
        cov = stx - st * sx / nn
        slope = np.where((n >= 2) & (var > 0), cov / np.where(var > 0, var, 1.0), 0.0)
    return slope, center


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
    detrend : bool
        Whether the linear trend ``b (τ − τ̄)`` is removed (see the module doc).
    trend_slope : numpy.ndarray of float64, shape (C, H, W), or None
        ``b`` in units of the data per day (with ``detrend``).
    trend_center : float or None
        ``τ̄`` in days since 1970-01-01 (with ``detrend``).
    standardize : {"global", "season"}
        Whether ``σ`` is one value per channel or one per channel and season.
    season_std : numpy.ndarray of float64, shape (4, C), or None
        ``σ_{c,s}`` for DJF, MAM, JJA, SON (with ``standardize="season"``).
    """

    channels: list[str]
    mean: np.ndarray
    std: np.ndarray
    climatology: bool = False
    climatology_kind: str | None = None
    climatology_window: int | None = None
    period: str | None = None
    climatology_values: xr.DataArray | None = field(default=None, repr=False)
    detrend: bool = False
    trend_slope: np.ndarray | None = field(default=None, repr=False)
    trend_center: float | None = None
    standardize: str = "global"
    season_std: np.ndarray | None = None

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
        self.detrend = bool(self.detrend)
        if self.detrend:
            if self.trend_slope is None or self.trend_center is None:
                raise ValueError(
                    "detrend=True needs trend_slope (channel, lat, lon) and trend_center; "
                    "use compute_stats(..., detrend=True)"
                )
            self.trend_slope = np.asarray(self.trend_slope, dtype="float64")
            if self.trend_slope.ndim != 3 or self.trend_slope.shape[0] != len(self.channels):
                raise ValueError(
                    f"trend_slope must have shape (channel, lat, lon) with {len(self.channels)} "
                    f"channels, got {self.trend_slope.shape}"
                )
            self.trend_center = float(self.trend_center)
        if self.standardize not in STANDARDIZE:
            raise ValueError(
                f"standardize must be one of {', '.join(STANDARDIZE)}, got {self.standardize!r}"
            )
        if self.standardize == "season":
            if self.season_std is None:
                raise ValueError(
                    "standardize='season' needs season_std (4 seasons × channels); use "
                    "compute_stats(..., standardize='season')"
                )
            self.season_std = np.asarray(self.season_std, dtype="float64").reshape(
                len(SEASONS), len(self.channels)
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
            "detrend": self.detrend,
            "trend_slope": None if self.trend_slope is None else self.trend_slope.tolist(),
            "trend_center": self.trend_center,
            "standardize": self.standardize,
            "season_std": None if self.season_std is None else self.season_std.tolist(),
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
            # absent from statistics written before these options existed: the old behaviour
            detrend=bool(d.get("detrend", False)),
            trend_slope=d.get("trend_slope"),
            trend_center=d.get("trend_center"),
            standardize=d.get("standardize") or "global",
            season_std=d.get("season_std"),
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

    def _trend_for(self, times: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``b (τ(t) − τ̄)`` for each stamp: shape ``times.shape + (C, H, W)``."""
        if times is None:
            raise ValueError(
                "these statistics remove a linear trend: pass the time stamps of the block "
                "(e.g. item['time'] or batch['time'])"
            )
        tau = days_since_epoch(times) - self.trend_center
        slope = self.trend_slope
        if tuple(shape[-3:]) != slope.shape:
            raise ValueError(
                f"trend grid {slope.shape} (channel, lat, lon) does not match the data "
                f"{tuple(shape[-3:])}; recompute the statistics on this grid"
            )
        return tau[..., None, None, None] * slope

    def _std_for(self, times: Any) -> np.ndarray:
        """σ broadcastable to the block: (C, 1, 1), or ``times.shape + (C, 1, 1)`` per season."""
        if self.standardize != "season":
            return self.std[:, None, None]
        if times is None:
            raise ValueError(
                "these statistics standardise per season: pass the time stamps of the block "
                "(e.g. item['time'] or batch['time'])"
            )
        return self.season_std[season_index(times)][..., None, None]

    def normalize_array(self, x: np.ndarray, times: Any = None) -> np.ndarray:
        """``z = (x − x̄(t) − b(τ(t) − τ̄) − μ)/σ_s(t)`` for a block x of shape (T, C, H, W)
        (or (B, T, C, H, W) with ``times`` (B, T)); NaN stays NaN."""
        x = np.asarray(x, dtype="float32")
        if self.climatology:
            x = x - self._climatology_for(times)
        if self.detrend:
            x = x - self._trend_for(times, x.shape).astype("float32")
        return (x - self.mean[:, None, None].astype("float32")) / self._std_for(times).astype(
            "float32"
        )

    def denormalize_array(self, z: np.ndarray, times: Any = None) -> np.ndarray:
        """Inverse of :meth:`normalize_array`: ``x = z·σ_s(t) + μ + b(τ(t) − τ̄) + x̄(t)``.

        ``z`` is (T, C, H, W) with ``times`` (T,), or a batch (B, T, C, H, W) with ``times``
        (B, T) as :func:`~faconvlstm.data.collate_windows` returns them.
        """
        z = np.asarray(z, dtype="float32")
        x = z * self._std_for(times).astype("float32") + self.mean[:, None, None].astype("float32")
        if self.detrend:
            x = x + self._trend_for(times, x.shape).astype("float32")
        if self.climatology:
            x = x + self._climatology_for(times)
        return x

    def normalize(self, da: xr.DataArray) -> xr.DataArray:
        """Lazy :meth:`normalize_array` on a (time, channel, lat, lon) DataArray."""
        self.check_channels(da["channel"].values)
        if self.climatology:
            da = subtract_climatology(da, self.climatology_values)
        times = da["time"].values
        if self.detrend:
            tau = xr.DataArray(days_since_epoch(times) - self.trend_center, dims="time")
            slope = xr.DataArray(self.trend_slope, dims=("channel", "lat", "lon"))
            da = da - tau * slope
        mean = xr.DataArray(self.mean, dims="channel", coords={"channel": da["channel"]})
        if self.standardize == "season":
            std = xr.DataArray(
                self.season_std[season_index(times)],
                dims=("time", "channel"),
                coords={"channel": da["channel"]},
            )
        else:
            std = xr.DataArray(self.std, dims="channel", coords={"channel": da["channel"]})
        return (da - mean) / std  # the dims of da, in its order


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
    detrend: bool = False,
    standardize: str = "global",
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
    detrend : bool
        Also remove the per-channel, per-grid-point least-squares linear trend in time of
        the (anomaly) field, fitted on the training period (:func:`fit_trend`).
    standardize : {"global", "season"}
        One ``σ`` per channel, or one per channel and season (DJF, MAM, JJA, SON), both
        on the training period (see the module doc).

    Returns
    -------
    NormStats

    Raises
    ------
    ValueError
        Empty period, or a channel with no valid value in the period (all NaN).
    """
    if standardize not in STANDARDIZE:
        raise ValueError(
            f"standardize must be one of {', '.join(STANDARDIZE)}, got {standardize!r}"
        )
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
    times = sub["time"].values
    slope = center = None
    if detrend:
        sub = sub.transpose("time", "channel", "lat", "lon")
        tau = days_since_epoch(times)
        slope, center = fit_trend(sub, tau)
        sub = sub - xr.DataArray(tau - center, dims="time") * xr.DataArray(
            slope, dims=("channel", "lat", "lon")
        )
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
    season_std = _season_std(x, mean.values, std, times) if standardize == "season" else None
    return NormStats(
        channels=channels,
        mean=mean.values,
        std=std,
        climatology=clim is not None,
        climatology_kind=kind,
        climatology_window=climatology_window if kind == "dayofyear" else None,
        period=f"{times[0]} … {times[-1]}",
        climatology_values=clim,
        detrend=bool(detrend),
        trend_slope=slope,
        trend_center=center,
        standardize=standardize,
        season_std=season_std,
    )


def _season_std(x: xr.DataArray, mean: np.ndarray, std: np.ndarray, times: Any) -> np.ndarray:
    """σ_{c,s}: RMS deviation from μ_c over the samples of each season (4, C).

    A season with no valid value in the training period (a period shorter than a year)
    takes the global σ_c, with a warning; a season of constant values (σ 0) likewise.
    """
    seasons = season_index(times)
    dev2 = (x - xr.DataArray(mean, dims="channel")) ** 2
    dims = ("time", "lat", "lon")
    parts = []
    for s in range(len(SEASONS)):
        idx = np.flatnonzero(seasons == s)
        parts.append(dev2.isel(time=idx).mean(dims, skipna=True) if idx.size else None)
    computed = dask.compute(*[p for p in parts if p is not None])
    out = np.tile(std, (len(SEASONS), 1)).astype("float64")
    it = iter(computed)
    missing = []
    for s, part in enumerate(parts):
        if part is None:
            missing.append(SEASONS[s])
            continue
        rms = np.sqrt(np.asarray(next(it).values, dtype="float64"))
        ok = np.isfinite(rms) & (rms > 0)
        out[s, ok] = rms[ok]
        if not ok.all():
            missing.append(SEASONS[s])
    if missing:
        warnings.warn(
            f"season(s) {missing} have no (or constant) values in the training period: they "
            f"are standardised with the global std; train on whole years for "
            f"standardize='season'",
            stacklevel=3,
        )
    return out
