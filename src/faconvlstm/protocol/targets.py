"""User-given probe targets and regime labels of a comparison (``evaluation.targets`` /
``evaluation.labels``): any dataset, not only the synthetic one.

A target is a time series over the probe period (the training windows followed by the
held-out windows, as :func:`faconvlstm.protocol.measure.probes` embeds them): a built-in
climate index computed from one data channel (:func:`~faconvlstm.evaluation.nino34_index` box,
:func:`~faconvlstm.evaluation.nao_index` with its EOF fitted on the training windows only,
:func:`~faconvlstm.evaluation.jet_index`), or a variable read from a file. Labels are one
regime label per held-out time step, read from a file. Files are NetCDF/Zarr (anything
``xarray.open_dataset`` reads) or CSV with a ``time`` column; values are taken at the data's
time stamps exactly, and a stamp the file lacks is an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from faconvlstm.evaluation import box_mean_index, jet_index, nao_index
from faconvlstm.evaluation.interpretability import NINO34_BOX
from faconvlstm.training.config import ConfigError

if TYPE_CHECKING:  # the config imports the subjects, which import this module
    from faconvlstm.protocol.config import LabelsConfig, TargetConfig

__all__ = ["read_labels", "target_series"]


def _open_variable(path: str, variable: str, key: str) -> xr.DataArray:
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError(f"compare config key '{key}.file': {file} does not exist")
    if file.suffix.lower() == ".csv":
        table = pd.read_csv(file)
        if "time" not in table.columns:
            raise ConfigError(
                f"compare config key '{key}.file': {file} has no 'time' column "
                f"(columns: {', '.join(map(str, table.columns))})"
            )
        table["time"] = pd.to_datetime(table["time"])
        ds = table.set_index("time").to_xarray()
    else:
        ds = xr.open_zarr(file) if file.suffix.lower() == ".zarr" else xr.open_dataset(file)
    if variable not in ds:
        raise ConfigError(
            f"compare config key '{key}.variable': {file} has no variable {variable!r} "
            f"(it has: {', '.join(map(str, ds.data_vars))})"
        )
    da = ds[variable]
    if da.dims != ("time",):
        raise ConfigError(
            f"compare config key '{key}.variable': {variable!r} in {file} must be a series "
            f"over 'time' alone, its dimensions are {da.dims}"
        )
    return da.load()


def _at_times(da: xr.DataArray, times: np.ndarray, key: str, path: str) -> np.ndarray:
    """The values of series ``da`` at ``times`` exactly (error naming a missing stamp)."""
    index = da.indexes["time"]
    wanted = pd.Index(np.asarray(times).ravel())
    missing = ~wanted.isin(index)
    if missing.any():
        raise ConfigError(
            f"compare config key '{key}.file': {path} has no value at {wanted[missing][0]} "
            f"({int(missing.sum())} of the {wanted.size} stamps of the probe period are "
            "missing); give the series at the data's time stamps"
        )
    return np.asarray(da.sel(time=wanted).values)


def _channel(target: TargetConfig, channels: list[str], key: str) -> int:
    if target.channel is None:
        if len(channels) == 1:
            return 0
        raise ConfigError(
            f"compare config key '{key}.channel': the {target.index} index needs the data "
            f"channel it is computed from; channels: {', '.join(channels)}"
        )
    if target.channel not in channels:
        raise ConfigError(
            f"compare config key '{key}.channel': no channel {target.channel!r} in the data; "
            f"channels: {', '.join(channels)}"
        )
    return channels.index(target.channel)


def target_series(
    targets: list[TargetConfig],
    fields: np.ndarray,
    n_train: int,
    times: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    channels: list[str],
) -> dict[str, np.ndarray]:
    """Every target over the probe period.

    Args:
        targets: ``evaluation.targets``.
        fields: ``(N, C, H, W)`` normalised fields of the probe period (training steps
            first), NaN where missing; indices are computed from them (a probe's R² does not
            change under the per-channel affine map of the normalisation).
        n_train: the leading ``n_train`` steps are the training period (the NAO EOF is
            fitted on them alone).
        times: ``(N,)`` stamps; ``lat``, ``lon``: degrees; ``channels``: channel names.

    Returns:
        ``{name: (N,) float64}``.
    """
    out: dict[str, np.ndarray] = {}
    for i, t in enumerate(targets):
        key = f"evaluation.targets[{i}]"
        if t.index == "file":
            assert t.file is not None and t.variable is not None  # checked by the config
            series = _at_times(_open_variable(t.file, t.variable, key), times, key, t.file)
            out[t.name] = np.asarray(series, dtype=np.float64)
            continue
        c = _channel(t, channels, key)
        da = xr.DataArray(
            fields[:, c],
            dims=("time", "lat", "lon"),
            coords={"time": np.arange(fields.shape[0]), "lat": lat, "lon": lon},
        )
        ranges: dict[str, tuple[float, ...]] = {}
        if t.lat_range is not None:
            ranges["lat_range"] = tuple(t.lat_range)
        if t.lon_range is not None:
            ranges["lon_range"] = tuple(t.lon_range)
        try:
            if t.index == "nino34":
                index = box_mean_index(
                    da,
                    ranges.get("lat_range", NINO34_BOX[0]),
                    ranges.get("lon_range", NINO34_BOX[1]),
                    anomaly=False,
                )
            elif t.index == "nao":
                index = nao_index(da, train=da.isel(time=slice(0, n_train)), **ranges)
            else:
                index = jet_index(da, **ranges)
        except ValueError as err:
            raise ConfigError(f"compare config key '{key}': {err}") from None
        values = np.asarray(index.values, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ConfigError(
                f"compare config key '{key}': the {t.index} index of channel "
                f"{channels[c]!r} is not finite at some time step (its box holds only "
                "missing values); set lat_range / lon_range"
            )
        out[t.name] = values
    return out


def read_labels(labels: LabelsConfig, times: np.ndarray) -> np.ndarray:
    """Regime labels ``(N,)`` at ``times`` (integer codes, in order of first appearance of
    each label in the file's sorted values)."""
    key = "evaluation.labels"
    raw = _at_times(_open_variable(labels.file, labels.variable, key), times, key, labels.file)
    _, codes = np.unique(raw, return_inverse=True)
    return codes.reshape(-1)
