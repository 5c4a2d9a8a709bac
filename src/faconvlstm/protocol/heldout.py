"""The held-out windows every subject is measured on, and the ground truth.

The data are opened exactly as the training run opens them
(:class:`faconvlstm.training.datamodule.GriddedDataModule`), normalised with the training
period's statistics, and cut into non-overlapping windows. The held-out period is
``test_years`` when the run configuration names them, else the validation period (which
training uses only for its validation loss: every model is evaluated from its last
checkpoint, not a checkpoint selected on it).

With the synthetic generator (:func:`faconvlstm.data.synthetic`) the ground truth comes
along: the planted regimes, the oscillator driving them and the teleconnection lobes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from faconvlstm import data as fdata
from faconvlstm.data.stats import compute_climatology
from faconvlstm.data.time import as_time_array, day_of_year
from faconvlstm.evaluation.interpretability import box_mean_index
from faconvlstm.protocol.targets import read_labels, target_series
from faconvlstm.training.config import ConfigError, RunConfig
from faconvlstm.training.datamodule import GriddedDataModule

if TYPE_CHECKING:  # the config imports the subjects, which import this module
    from faconvlstm.protocol.config import LabelsConfig, TargetConfig

__all__ = ["EvalData", "driver_index", "n_clusters", "prepare_data", "year_of"]


@dataclass
class EvalData:
    """The held-out windows and the ground truth.

    ``x``: (N, T, C, H, W) normalised, 0 where missing; ``valid``: same, bool;
    ``phase``: (N, T) annual phase; ``times``: (N, T) stamps; ``clim``: (N, T, C, H, W)
    day-of-year climatology of the normalised training period; ``train_fields``:
    (T_train, C, H, W) normalised training period (NaN where missing), for the EOFs;
    ``train_x``, ``train_phase``, ``train_times``: the training period as windows (N_train,
    T, ...), which the linear probes' blocked cross-validation by year adds to the held-out
    windows (:func:`~faconvlstm.protocol.measure.probe_years`). Truth (None without):
    ``regime`` and ``oscillator`` (N·T,), ``train_oscillator`` and ``train_regime``
    (N_train·T,), ``lobes`` ``{"tropical": (lat, lon), "remote": (lat, lon)}`` in degrees,
    ``index_channel`` (the variable carrying the tropical lobe). User-given
    (``evaluation.targets`` / ``labels``): ``targets`` ``{name: (N_train·T + N·T,)}`` over
    the probe period (training windows, then held-out windows); ``regime`` from the labels
    file, named by ``labels_source`` (``train_regime`` too where the file covers the
    training windows; the regime probe needs it).
    """

    x: torch.Tensor
    valid: torch.Tensor
    phase: torch.Tensor
    times: np.ndarray
    clim: np.ndarray
    train_fields: np.ndarray
    train_x: torch.Tensor
    train_phase: torch.Tensor
    train_times: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    channels: list[str]
    n_train_steps: int
    regime: np.ndarray | None = None
    oscillator: np.ndarray | None = None
    train_oscillator: np.ndarray | None = None
    train_regime: np.ndarray | None = None
    lobes: dict[str, tuple[float, float]] | None = None
    index_channel: int | None = None
    source: str = ""
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    labels_source: str | None = None

    @property
    def flat_times(self) -> np.ndarray:
        return self.times.reshape(-1)

    def probe(self, n: int) -> np.ndarray:
        """Indices of ``n`` windows spread evenly over the period (all seasons)."""
        return np.unique(
            np.linspace(0, self.x.shape[0] - 1, min(n, self.x.shape[0])).round()
        ).astype(int)


def prepare_data(
    run: RunConfig,
    climatology_smooth_days: int,
    targets: list[TargetConfig] | None = None,
    labels: LabelsConfig | None = None,
) -> EvalData:
    """Open the data of run configuration ``run``; cut the held-out period into windows.

    Args:
        run: the reference run configuration (its ``data`` section and ``seed``).
        climatology_smooth_days: pooling window (days) of the ACC climatology.
        targets, labels: ``evaluation.targets`` / ``evaluation.labels``
            (:mod:`faconvlstm.protocol.targets`); given labels replace planted regimes.
    """
    dm = GriddedDataModule(run.data, seed=run.seed)
    dm.setup("fit")
    window = run.data.window
    held_out = dm.val_set.da
    if run.data.test_years is not None:
        held_out = fdata.split_by_years(dm.array, test=tuple(run.data.test_years))["test"]
    val = fdata.WindowDataset(held_out, window=window, stride=window, stats=dm.stats)
    batch = fdata.collate_windows([val[i] for i in range(len(val))])
    train_da = dm.train_set.da
    tw = fdata.WindowDataset(train_da, window=window, stride=window, stats=dm.stats)
    train_batch = fdata.collate_windows([tw[i] for i in range(len(tw))])
    train_times = train_da["time"].values
    train = dm.stats.normalize_array(np.asarray(train_da.values, dtype="float32"), train_times)
    train_xr = xr.DataArray(
        train, dims=("time", "channel", "lat", "lon"), coords={"time": train_times}
    )
    clim = compute_climatology(train_xr, "dayofyear", window=max(climatology_smooth_days, 1))
    doy = day_of_year(batch["time"].reshape(-1))
    clim_eval = np.nan_to_num(clim.values[doy - 1]).reshape(batch["x"].shape)
    out = EvalData(
        x=batch["x"],
        valid=batch["mask"],
        phase=batch["phase"],
        times=batch["time"],
        clim=clim_eval,
        train_fields=train,
        train_x=train_batch["x"],
        train_phase=train_batch["phase"],
        train_times=np.asarray(train_batch["time"]),
        lat=np.asarray(val.lat),
        lon=np.asarray(val.lon),
        channels=list(val.channels),
        n_train_steps=int(train.shape[0]),
        source=run.data.source,
    )
    if run.data.source == "synthetic":
        _, truth = fdata.synthetic(**run.data.synthetic)
        out.regime = _truth_series(truth, "regime", out.flat_times)
        out.oscillator = _truth_series(truth, "oscillator", out.flat_times)
        out.train_oscillator = _truth_series(truth, "oscillator", train_batch["time"].ravel())
        out.train_regime = _truth_series(truth, "regime", train_batch["time"].ravel())
        out.lobes = _lobes(truth)
        out.index_channel = _index_channel(truth, out.channels)
    if targets:
        shape = out.x.shape[-3:]

        def flat(b: dict) -> np.ndarray:
            return np.where(b["mask"], b["x"], np.nan).reshape(-1, *shape)

        out.targets = target_series(
            targets,
            np.concatenate([flat(train_batch), flat(batch)]),
            int(np.asarray(train_batch["time"]).size),
            np.concatenate([np.asarray(train_batch["time"]).ravel(), out.flat_times]),
            out.lat,
            out.lon,
            out.channels,
        )
    if labels is not None:
        train_times = np.asarray(train_batch["time"]).ravel()
        try:  # one coding over both periods, so a probe fitted on one scores the other
            codes = read_labels(labels, np.concatenate([train_times, out.flat_times]))
            out.train_regime, out.regime = codes[: train_times.size], codes[train_times.size :]
        except ConfigError:  # labels of the held-out period only: no regime probe (the
            # planted training regimes, if any, are not in the labels' coding)
            out.regime, out.train_regime = read_labels(labels, out.flat_times), None
        out.labels_source = f"{labels.file}:{labels.variable}"
    return out


def year_of(times: np.ndarray) -> np.ndarray:
    """Calendar year of every stamp (``datetime64`` or ``cftime``), same shape as ``times``."""
    flat = as_time_array(np.asarray(times).ravel())
    if flat.dtype.kind == "M":
        years = flat.astype("datetime64[Y]").astype(int) + 1970
    else:
        years = np.array([t.year for t in flat])
    return years.reshape(np.shape(times))


def n_clusters(configured: int | None, data: EvalData) -> int:
    """k of k-means: ``configured``, else the number of true regimes, else 4."""
    if configured is not None:
        return configured
    return int(np.unique(data.regime).size) if data.regime is not None else 4


def driver_index(data: EvalData, fields: np.ndarray) -> np.ndarray | None:
    """A Niño-3.4-like index ``(time,)`` computed from ``fields`` ``(time, C, H, W)``: the
    box mean (±10° lat, ±20° lon) of the variable that carries the tropical lobe, around
    the lobe's centre; ``None`` without that ground truth."""
    if data.lobes is None or data.index_channel is None:
        return None
    lat_c, lon_c = data.lobes["tropical"]
    da = xr.DataArray(
        fields[:, data.index_channel],
        dims=("time", "lat", "lon"),
        coords={"lat": data.lat, "lon": data.lon},
    )
    box = box_mean_index(
        da, (lat_c - 10.0, lat_c + 10.0), (lon_c - 20.0, lon_c + 20.0), anomaly=False
    )
    return box.values


def _truth_series(truth: xr.Dataset, name: str, times: np.ndarray) -> np.ndarray | None:
    """A ground-truth time series of the generator at ``times``."""
    if name not in truth:
        return None
    return np.asarray(truth[name].sel(time=times).values)


def _lobes(truth: xr.Dataset) -> dict[str, tuple[float, float]] | None:
    """Teleconnection lobe centres ``(lat, lon)`` from the generator's ground truth."""
    if "enso_center" not in truth or "remote_center" not in truth:
        return None
    return {
        "tropical": tuple(float(v) for v in truth["enso_center"].values),
        "remote": tuple(float(v) for v in truth["remote_center"].values),
    }


def _index_channel(truth: xr.Dataset, channels: list[str]) -> int | None:
    """Channel of the variable that carries the tropical lobe (``truth.attrs``)."""
    name = truth.attrs.get("enso_variable")
    return channels.index(name) if name in channels else None
