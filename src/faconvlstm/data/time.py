"""Calendar-aware time helpers: annual phase, day of year, time-axis checks.

The seasonal positional encoding (:mod:`faconvlstm.heads`) and the day-of-year climatology
(:mod:`faconvlstm.data.stats`) both need the position of a time stamp within its year. This
module computes it once, for ``numpy.datetime64`` stamps (proleptic Gregorian) and for
``cftime`` stamps of model calendars (``noleap``/``365_day``, ``all_leap``/``366_day``,
``360_day``, ``julian``, ``standard``/``gregorian``, ``proleptic_gregorian``).

The annual phase of a time stamp ``t`` is

.. math::

    \\varphi(t) = \\frac{\\mathrm{doy}(t) - 1 + s(t) / 86400}{N_\\mathrm{days}(\\mathrm{year}(t))}
    \\in [0, 1),

with ``doy`` the 1-based day of the year, ``s`` the seconds elapsed since midnight and
``N_days`` the length of that year in the time stamp's calendar (360, 365 or 366).
1 January 00:00 has phase 0 in every calendar; 1 July 00:00 has phase 0.5 in ``360_day``,
181/365 in ``noleap``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import cftime
import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "annual_phase",
    "as_time_array",
    "check_time_axis",
    "day_of_year",
    "days_in_year",
    "elapsed_days",
    "month_of_year",
    "time_step_days",
]

_SECONDS_PER_DAY = 86400.0


def as_time_array(times: Any) -> np.ndarray:
    """Return ``times`` as a 1-D numpy array of ``datetime64[ns]`` or of ``cftime`` objects.

    Parameters
    ----------
    times : array-like, xarray.DataArray, pandas.Index, CFTimeIndex or scalar
        Time stamps. ``datetime.datetime`` and ``pandas.Timestamp`` objects are converted to
        ``datetime64[ns]``; ``cftime.datetime`` objects are kept (object array).

    Returns
    -------
    numpy.ndarray, shape (T,)
    """
    values = getattr(times, "values", times)
    if isinstance(values, (np.datetime64, _dt.datetime, cftime.datetime, str)):
        values = [values]
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    arr = arr.ravel()
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]")
    if arr.dtype.kind in "OU" and arr.size:
        if all(isinstance(t, cftime.datetime) for t in arr):
            return arr.astype(object)
        return pd.to_datetime(arr).values.astype("datetime64[ns]")
    if arr.size == 0:
        return arr.astype("datetime64[ns]")
    raise TypeError(
        f"expected time stamps (datetime64, datetime or cftime objects), got dtype "
        f"{arr.dtype}; decode times first, e.g. xarray.open_dataset(..., decode_times=True)"
    )


def _is_cftime(arr: np.ndarray) -> bool:
    return arr.dtype == object


def _fields(arr: np.ndarray) -> Any:
    """xarray's ``.dt`` accessor, which reads calendar fields of ``datetime64`` stamps and of
    ``cftime`` stamps in every CF calendar alike."""
    return xr.DataArray(arr, dims="time").dt


def days_in_year(times: Any) -> np.ndarray:
    """Length in days of the year of each time stamp, in the stamp's own calendar.

    Returns
    -------
    numpy.ndarray of int, shape (T,)
        360, 365 or 366.
    """
    return _fields(as_time_array(times)).days_in_year.values.astype(int)


def day_of_year(times: Any) -> np.ndarray:
    """1-based day of the year of each time stamp (calendar-aware).

    Returns
    -------
    numpy.ndarray of int, shape (T,)
        1 … ``days_in_year``.
    """
    return _fields(as_time_array(times)).dayofyear.values.astype(int)


def month_of_year(times: Any) -> np.ndarray:
    """Month (1 … 12) of each time stamp."""
    return _fields(as_time_array(times)).month.values.astype(int)


def _seconds_of_day(arr: np.ndarray) -> np.ndarray:
    f = _fields(arr)
    return (
        f.hour.values * 3600.0
        + f.minute.values * 60.0
        + f.second.values
        + f.microsecond.values * 1e-6
    )


def annual_phase(times: Any) -> np.ndarray:
    """Annual phase φ = (day_of_year − 1 + seconds_of_day / 86400) / days_in_year.

    Calendar-aware: ``cftime`` stamps use their own calendar (``noleap``, ``360_day`` …),
    ``datetime64`` stamps the proleptic Gregorian calendar. Missing stamps (``NaT``) give NaN.

    Parameters
    ----------
    times : array-like of datetime64 / cftime, shape (T,) or (B, T)
        Time stamps (any container accepted by :func:`as_time_array`).

    Returns
    -------
    numpy.ndarray of float64, same shape as ``times`` ((1,) for a scalar)
        φ in [0, 1); 0 at 1 January 00:00.

    Examples
    --------
    >>> annual_phase(np.array(["2001-01-01", "2001-07-02T12"], dtype="datetime64[ns]"))
    array([0.        , 0.5       ])
    """
    shape = np.shape(getattr(times, "values", times))
    arr = as_time_array(times)
    if arr.size == 0:
        return np.zeros(0, dtype=float)
    if len(shape) > 1:  # a batch of windows (B, T): phase of the same shape
        return annual_phase(arr).reshape(shape)
    nat = np.isnat(arr) if not _is_cftime(arr) else np.zeros(arr.size, dtype=bool)
    if nat.any():
        phase = np.full(arr.size, np.nan)
        if (~nat).any():
            phase[~nat] = annual_phase(arr[~nat])
        return phase
    doy = day_of_year(arr)
    phase = (doy - 1 + _seconds_of_day(arr) / _SECONDS_PER_DAY) / days_in_year(arr)
    # Guard against rounding of 23:59:59.999… stamps to exactly 1.
    return np.minimum(phase, np.nextafter(1.0, 0.0))


def _elapsed_seconds(arr: np.ndarray) -> np.ndarray:
    """Seconds elapsed since the first stamp (float64)."""
    if not _is_cftime(arr):
        return (arr - arr[0]).astype("timedelta64[ns]").astype(np.int64) / 1e9
    return np.array([(t - arr[0]).total_seconds() for t in arr], dtype=float)


def elapsed_days(times: Any) -> np.ndarray:
    """Days elapsed since the first stamp, calendar-aware (float64, shape (T,))."""
    arr = as_time_array(times)
    if arr.size == 0:
        return np.zeros(0)
    return _elapsed_seconds(arr) / _SECONDS_PER_DAY


def time_step_days(times: Any) -> float:
    """Median time step in days (e.g. 1 for daily, ≈30.4 for monthly data)."""
    arr = as_time_array(times)
    if arr.size < 2:
        raise ValueError(f"need at least 2 time stamps to infer a time step, got {arr.size}")
    return float(np.median(np.diff(_elapsed_seconds(arr)))) / _SECONDS_PER_DAY


def _months_since_year0(arr: np.ndarray) -> np.ndarray:
    f = _fields(arr)
    return (f.year.values * 12 + f.month.values - 1).astype(np.int64)


def check_time_axis(times: Any, *, regular: bool = True, name: str = "time") -> None:
    """Raise a clear ``ValueError`` if a time axis is unusable for windowing.

    Checks, in order: strictly increasing (no step backwards), no duplicated stamps, and —
    when ``regular`` — a constant step. A step is constant when every difference between
    consecutive stamps is equal, or, for calendar steps (monthly, seasonal, yearly data), when
    the number of calendar months between consecutive stamps is constant and the day of the
    month varies by at most 3 days (mid-month stamps on the 15th/16th).

    Parameters
    ----------
    times : array-like of datetime64 / cftime, shape (T,)
    regular : bool
        Also require a constant time step.
    name : str
        Name used in error messages.

    Raises
    ------
    ValueError
        With the offending positions and stamps, and how to fix the data.
    """
    arr = as_time_array(times)
    if arr.size < 2:
        return
    if not _is_cftime(arr) and np.isnat(arr).any():
        bad = np.flatnonzero(np.isnat(arr))[:5].tolist()
        raise ValueError(f"{name} contains missing stamps (NaT) at positions {bad}; drop them")
    seconds = _elapsed_seconds(arr)
    step = np.diff(seconds)
    if (step == 0).any():
        dup = np.flatnonzero(step == 0)[:5]
        stamps = [str(arr[i]) for i in dup]
        raise ValueError(
            f"{name} has duplicated time stamps {stamps} (positions {dup.tolist()}); "
            f"remove them, e.g. da.drop_duplicates('{name}')"
        )
    if (step < 0).any():
        back = np.flatnonzero(step < 0)[:5]
        pairs = [f"{arr[i]} -> {arr[i + 1]}" for i in back]
        raise ValueError(
            f"{name} is not monotonically increasing: steps backwards at positions "
            f"{back.tolist()} ({', '.join(pairs)}); sort it with da.sortby('{name}')"
        )
    if not regular or np.all(step == step[0]):
        return
    months = np.diff(_months_since_year0(arr))
    days = _fields(arr).day.values
    if months[0] > 0 and np.all(months == months[0]) and np.ptp(days) <= 3:
        return
    values, counts = np.unique(step / _SECONDS_PER_DAY, return_counts=True)
    common = values[np.argmax(counts)]
    odd = np.flatnonzero(~np.isclose(step / _SECONDS_PER_DAY, common))[:5]
    found = ", ".join(f"{v:g} d (x{c})" for v, c in zip(values[:6], counts[:6]))
    raise ValueError(
        f"{name} has an irregular step: found steps of {found}; expected one constant step "
        f"(or whole calendar months). First irregular steps after positions {odd.tolist()} "
        f"({', '.join(str(arr[i]) for i in odd)}). Fill the gaps (da.resample / reindex) or "
        f"select a contiguous period."
    )
