"""Sliding windows over time as a PyTorch ``Dataset`` that streams from dask chunks.

A window starting at step ``s`` holds the input steps ``s … s+T_in−1`` and, for
forecasting, the target steps ``s+T_in … s+T_in+N−1``; consecutive windows start ``stride``
steps apart. Each item reads only its own steps from the (lazy) archive, so a dataset far
larger than memory can be iterated, by several DataLoader workers at once.

Items are normalised with :class:`~faconvlstm.data.stats.NormStats`
(``z = (x − x̄ − μ)/σ``); missing values become 0 in ``x`` and ``False`` in ``mask``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset

from faconvlstm.data.gridded import latitude_weights, open_gridded
from faconvlstm.data.stats import NormStats, compute_stats
from faconvlstm.data.time import annual_phase, check_time_axis

__all__ = ["WindowDataset", "collate_windows"]

#: Arrays up to this size are loaded (and normalised) once instead of streamed per item.
IN_MEMORY_LIMIT_BYTES = 128 * 2**20


class WindowDataset(Dataset):
    """Windows of a ``(time, channel, lat, lon)`` DataArray as normalised tensors.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        Dims ``(time, channel, lat, lon)`` as returned by
        :func:`~faconvlstm.data.open_gridded` (a Dataset is passed through it first).
        Lazy (dask) arrays are read window by window.
    window : int
        Input length ``T_in`` (steps per item).
    horizon : int
        Target length ``N`` after the window (0: no target, e.g. for autoencoders).
    stride : int
        Steps between the starts of consecutive windows.
    stats : NormStats, optional
        Normalisation statistics. Give the *training* statistics to validation and test
        datasets. ``None`` computes them on ``da`` itself (right for the training split).
    climatology : bool or {"dayofyear", "month"}
        With ``stats=None``: also subtract a climatology computed on ``da``.
    in_memory : bool, optional
        Load and normalise the whole array once. Default: only when it is at most
        :data:`IN_MEMORY_LIMIT_BYTES` (128 MiB); larger arrays are streamed.

    Items
    -----
    Each item is a dict, with T = ``window``, N = ``horizon``, C channels, H × W grid:

    ``"x"``      float32 tensor (T, C, H, W), normalised, 0 where missing
    ``"mask"``   bool tensor (T, C, H, W), True where the value was valid
    ``"time"``   numpy array (T,) of datetime64[ns] or cftime stamps
    ``"phase"``  float32 tensor (T,), annual phase in [0, 1) (see ``annual_phase``)
    ``"index"``  int, position of the window's first step in :attr:`times`
    ``"y"``, ``"y_mask"``, ``"y_time"``, ``"y_phase"``  the same for the N target steps
    (only when ``horizon > 0``).

    Use :func:`collate_windows` as the DataLoader ``collate_fn`` (or :meth:`loader`).

    Raises
    ------
    ValueError
        Bad time axis (non-monotonic, duplicated, irregular), fewer steps than
        ``window + horizon``, statistics for other channels, or an all-NaN channel.
    """

    def __init__(
        self,
        da: xr.DataArray | xr.Dataset,
        window: int,
        horizon: int = 0,
        stride: int = 1,
        stats: NormStats | None = None,
        *,
        climatology: bool | str = False,
        in_memory: bool | None = None,
    ) -> None:
        if isinstance(da, xr.Dataset):
            da = open_gridded(da)
        missing_dims = {"time", "channel", "lat", "lon"} - set(da.dims)
        if missing_dims:
            raise ValueError(
                f"expected dims (time, channel, lat, lon), got {da.dims}; open "
                f"the data with faconvlstm.data.open_gridded"
            )
        for name, value, low in (
            ("window", window, 1),
            ("horizon", horizon, 0),
            ("stride", stride, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        self.da = da.transpose("time", "channel", "lat", "lon")
        self.window, self.horizon, self.stride = int(window), int(horizon), int(stride)
        self.times = self.da["time"].values
        check_time_axis(self.times)
        length = self.window + self.horizon
        n_time = self.times.size
        if n_time < length:
            raise ValueError(
                f"too few time steps for one window: window={self.window} + "
                f"horizon={self.horizon} needs {length} steps, the data has {n_time} "
                f"({self.times[0] if n_time else '-'} … {self.times[-1] if n_time else '-'}); "
                f"use a shorter window or more years"
            )
        self.starts = np.arange(0, n_time - length + 1, self.stride)
        self.channels: list[str] = [str(c) for c in self.da["channel"].values]
        if stats is None:
            stats = compute_stats(self.da, climatology=climatology)
        stats.check_channels(self.channels)
        self.stats = stats
        self.lat = np.asarray(self.da["lat"].values, dtype="float64")
        self.lon = np.asarray(self.da["lon"].values, dtype="float64")
        self.periodic_lon = bool(self.da.attrs.get("periodic_lon", False))
        self.phase = annual_phase(self.times).astype("float32")
        if in_memory is None:
            in_memory = self.da.size * 4 <= IN_MEMORY_LIMIT_BYTES
        self.in_memory = bool(in_memory)
        self._normalized: np.ndarray | None = None
        if self.in_memory:
            with dask.config.set(scheduler="synchronous"):
                raw = np.asarray(self.da.values, dtype="float32")
            self._normalized = self.stats.normalize_array(raw, self.times)
            empty = [
                c for c, ok in zip(self.channels, np.isfinite(raw).any(axis=(0, 2, 3))) if not ok
            ]
            if empty:
                raise ValueError(
                    f"channel(s) {empty} are all NaN in this period "
                    f"({self.times[0]} … {self.times[-1]}); drop them or choose "
                    f"other years"
                )

    # ------------------------------------------------------------------ geometry
    @property
    def lat_weights(self) -> np.ndarray:
        """WeatherBench2 cell-area weights (H,), mean 1, for latitude-weighted losses."""
        return latitude_weights(self.lat)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one time step."""
        return len(self.channels), self.lat.size, self.lon.size

    def __len__(self) -> int:
        return int(self.starts.size)

    # ------------------------------------------------------------------ reading
    def _read(self, start: int, stop: int) -> np.ndarray:
        """Normalised float32 block (stop−start, C, H, W), NaN where missing."""
        if self._normalized is not None:
            return self._normalized[start:stop]
        # Synchronous scheduler: a DataLoader worker is already one of many processes; dask
        # threads inside each would oversubscribe the cores.
        with dask.config.set(scheduler="synchronous"):
            raw = np.asarray(self.da.isel(time=slice(start, stop)).values, dtype="float32")
        return self.stats.normalize_array(raw, self.times[start:stop])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"window index {index} out of range for {len(self)} windows")
        start = int(self.starts[index])
        mid, stop = start + self.window, start + self.window + self.horizon
        block = self._read(start, stop)
        valid = np.isfinite(block)
        filled = np.where(valid, block, np.float32(0.0))
        item: dict[str, Any] = {
            "x": torch.from_numpy(filled[: self.window].copy()),
            "mask": torch.from_numpy(valid[: self.window].copy()),
            "time": self.times[start:mid].copy(),
            "phase": torch.from_numpy(self.phase[start:mid].copy()),
            "index": start,
        }
        if self.horizon:
            item.update(
                y=torch.from_numpy(filled[self.window :].copy()),
                y_mask=torch.from_numpy(valid[self.window :].copy()),
                y_time=self.times[mid:stop].copy(),
                y_phase=torch.from_numpy(self.phase[mid:stop].copy()),
            )
        return item

    def loader(
        self, batch_size: int = 8, shuffle: bool = False, num_workers: int = 0, **kwargs: Any
    ) -> DataLoader:
        """A ``DataLoader`` over this dataset with :func:`collate_windows`."""
        kwargs.setdefault("persistent_workers", num_workers > 0)
        return DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            collate_fn=collate_windows,
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"WindowDataset({len(self)} windows of {self.window}"
            f"{f'+{self.horizon}' if self.horizon else ''} steps, stride {self.stride}, "
            f"channels={self.channels}, grid={self.lat.size}x{self.lon.size}, "
            f"periodic_lon={self.periodic_lon}, in_memory={self.in_memory})"
        )


def collate_windows(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """DataLoader ``collate_fn`` for :class:`WindowDataset` items.

    Tensors are stacked along a new batch dimension (``x`` → (B, T, C, H, W),
    ``phase`` → (B, T)); time stamps, which default collation cannot handle, become numpy
    arrays ``time`` / ``y_time`` of shape (B, T) (datetime64 or cftime objects); ``index``
    becomes a long tensor (B,).
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], np.ndarray):
            out[key] = np.stack(values)
        else:
            out[key] = torch.as_tensor(values)
    return out
