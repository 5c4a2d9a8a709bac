"""Forecasters compared as WeatherBench2 does: RMSE and ACC per lead against two baselines.

With ``train.task: forecast`` in the compare config, ``faconvlstm compare`` trains the
learned subjects as forecasters (:class:`faconvlstm.models.Forecaster`, same budget, seeds
and data; only ``model.cell`` differs) and scores them on the held-out test years
(:mod:`faconvlstm.protocol.forecast_runs` runs it). This module holds the pure part: the
baselines, the scores and the typed results (numpy and xarray only, no training).

Initialisations. Windows of the test period start every ``stride`` = L steps (L = the
forecaster's horizon), exactly as :func:`faconvlstm.training.infer.predict` issues them:
the window starting at step ``s`` has its last input step (the initialisation, WB2's
``time``) at ``s + T − 1`` and its leads n = 1 … L valid at ``s + T − 1 + n``. The learned
forecasts and both baselines are scored on the same initialisations.

Baselines, in the physical units of the data (channels ``C``, grid ``H × W``):

- persistence: the last input frame held for every lead, ``p(t₀ + n) = x(t₀)``;
- climatology: the training period's climatology at the valid time, ``p(t₀ + n) = c(t₀ + n)``.
  When the data are normalised as anomalies (``data.climatology``), ``c`` is the zero
  normalised anomaly, ``c(t) = x̄(k(t)) + μ`` (the normalisation's own climatology x̄ and
  mean anomaly μ, :class:`faconvlstm.data.NormStats`); otherwise the day-of-year mean of the
  training period pooled over ``evaluation.climatology_smooth_days`` days
  (:func:`faconvlstm.evaluation.quality.dayofyear_climatology`).

Scores (:func:`score`), per lead and channel, over all initialisations ``t₀``:

.. math::

    \\mathrm{RMSE}(n) = \\sqrt{\\tfrac{1}{N}\\sum_{t_0} \\langle (p - y)^2 \\rangle_w},
    \\qquad
    \\mathrm{ACC}(n) = \\tfrac{1}{N}\\sum_{t_0}
      \\frac{\\langle p' y' \\rangle_w}{\\sqrt{\\langle p'^2 \\rangle_w \\langle y'^2 \\rangle_w}},
    \\quad p' = p - c,\\; y' = y - c,

with ⟨·⟩_w the area-weighted spatial mean and ``c`` the same climatology at the valid time
(:func:`~faconvlstm.evaluation.quality.lat_weighted_rmse`,
:func:`~faconvlstm.evaluation.quality.acc`). RMSE is in the field's units; ACC is
dimensionless and undefined (NaN, ``null`` in JSON) for the climatology forecast itself,
whose anomaly is zero.

``results.json`` gains the section ``"forecast"`` (:class:`ForecastResults`, its own
``version`` :data:`FORECAST_VERSION`; absent from autoencoder comparisons)::

    {"version": 1, "channels": [...], "units": [...], "lead_hours": [24.0, ...],
     "stride": L, "n_init": N, "init_period": [first, last], "climatology": "<which>",
     "baselines": {"persistence" | "climatology": {"rmse": [[lead][channel]], "acc": ...}},
     "models": {"<model>": {"seeds": [{"seed", "rmse", "acc", "train_seconds",
                                      "model_params", "history", "forecast_file"}, ...],
                            "summary": {"rmse", "rmse_sd", "acc", "acc_sd",
                                        "train_seconds", "train_seconds_sd"}}}}

``rmse`` / ``acc`` are ``[lead][channel]`` lists (mean and sd over seeds in ``summary``);
``forecast_file`` is the run's WB2-layout forecast relative to the output folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from faconvlstm.data.io import cf_name
from faconvlstm.data.stats import NormStats, climatology_keys
from faconvlstm.evaluation.quality import acc, dayofyear_climatology, lat_weighted_rmse
from faconvlstm.files import jsonable
from faconvlstm.protocol.results import LossHistory

__all__ = [
    "BASELINES",
    "FORECAST_VERSION",
    "ForecastModel",
    "ForecastResults",
    "ForecastSeed",
    "ForecastTargets",
    "Scores",
    "forecast_targets",
    "init_starts",
    "read_forecast",
    "score",
    "training_climatology",
]

#: Version of the ``"forecast"`` section of ``results.json``.
FORECAST_VERSION = 1

#: The baselines, in the order of the report, with their labels.
BASELINES = {"persistence": "persistence", "climatology": "climatology"}

_DIMS = ("time", "prediction_timedelta", "channel", "latitude", "longitude")


# ---------------------------------------------------------------------------------- baselines
def init_starts(n_time: int, window: int, horizon: int) -> np.ndarray:
    """First steps of the scored windows: every ``horizon`` steps while ``window + horizon``
    steps fit (the rule of :func:`faconvlstm.training.infer.predict` with ``stride=horizon``,
    i.e. of :class:`faconvlstm.data.WindowDataset`)."""
    if n_time < window + horizon:
        raise ValueError(
            f"the test period has {n_time} time steps, fewer than data.window + data.horizon "
            f"= {window + horizon}; widen train.data.test_years"
        )
    return np.arange(0, n_time - (window + horizon) + 1, horizon)


def training_climatology(
    train: xr.DataArray, stats: NormStats | None, smooth_days: int
) -> tuple[Callable[[Any], np.ndarray], str]:
    """The climatology forecast ``c(times)`` → ``(len(times), C, H, W)`` (physical units) of
    the training period ``train`` ``(time, channel, lat, lon)``, and a sentence saying which.

    With anomaly statistics (``stats.climatology``) it is the zero normalised anomaly
    ``x̄(k(t)) + μ`` (the normalisation's climatology, so "climatology" means the same
    thing to the data pipeline and to the score); otherwise the day-of-year mean of
    ``train`` pooled over ``smooth_days`` days.
    """
    shape = tuple(train.sizes[d] for d in ("channel", "lat", "lon"))
    if stats is not None and stats.climatology:
        kind = stats.climatology_kind or "dayofyear"
        width = f", {stats.climatology_window}-day window" if kind == "dayofyear" else ""
        name = {"dayofyear": "day-of-year", "month": "monthly"}.get(kind, kind)

        def zero_anomaly(times: Any) -> np.ndarray:
            times = np.asarray(times)
            return stats.denormalize_array(np.zeros((times.size, *shape), "float32"), times)

        return zero_anomaly, (
            f"zero anomaly: the data normalisation's {name} climatology of the training "
            f"period{width}, plus its mean anomaly"
        )
    clim = dayofyear_climatology(
        train.transpose("time", "channel", "lat", "lon"), smooth_days=smooth_days
    )
    table = np.asarray(clim.values)

    def dayofyear(times: Any) -> np.ndarray:
        return table[climatology_keys(np.asarray(times), "dayofyear") - 1]

    return dayofyear, (
        f"day-of-year mean of the training period, pooled over {max(int(smooth_days), 1)} days"
    )


@dataclass
class ForecastTargets:
    """The test-period initialisations and what every forecast is scored against.

    ``init`` (N,) initialisation times (last input steps); ``valid`` (N, L) valid times;
    ``truth``, ``persistence``, ``climatology`` (N, L, C, H, W) in physical units;
    ``lead`` (L,) ``timedelta64``; ``lat`` (H,), ``lon`` (W,) in degrees.
    """

    init: np.ndarray
    valid: np.ndarray
    truth: np.ndarray
    persistence: np.ndarray
    climatology: np.ndarray
    lead: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    channels: list[str]
    units: list[str | None]
    climatology_kind: str = ""

    @property
    def lead_hours(self) -> list[float]:
        return [float(v) for v in self.lead / np.timedelta64(1, "h")]


def forecast_targets(
    test: xr.DataArray,
    window: int,
    horizon: int,
    climatology: Callable[[Any], np.ndarray],
    channels: list[int] | None = None,
    climatology_kind: str = "",
) -> ForecastTargets:
    """Truth and both baselines on the initialisations of :func:`init_starts`.

    Args:
        test: the test period ``(time, channel, lat, lon)`` in physical units.
        window, horizon: the forecaster's input length T and number of leads L.
        climatology: ``c(times)`` → ``(len(times), C, H, W)`` for all channels of ``test``
            (:func:`training_climatology`).
        channels: indices of the forecast channels (the model's ``target_channels``; None:
            all).
    """
    test = test.transpose("time", "channel", "lat", "lon")
    index = list(range(test.sizes["channel"])) if channels is None else list(channels)
    times = test["time"].values
    starts = init_starts(times.size, window, horizon)
    init_idx = starts + window - 1
    valid_idx = init_idx[:, None] + np.arange(1, horizon + 1)[None, :]
    values = np.asarray(test.values, dtype="float32")[:, index]
    n, lead = starts.size, horizon
    clim = climatology(times[valid_idx.ravel()])[:, index].reshape(n, lead, *values.shape[1:])
    units = test.attrs.get("units_by_channel")
    if units is None and "units" in test.coords:
        units = [str(u) for u in test.coords["units"].values]
    return ForecastTargets(
        init=times[init_idx],
        valid=times[valid_idx],
        truth=values[valid_idx],
        persistence=np.repeat(values[init_idx][:, None], lead, axis=1),
        climatology=np.asarray(clim, dtype="float32"),
        lead=np.asarray(times[valid_idx[0]] - times[init_idx[0]]),
        lat=np.asarray(test["lat"].values, dtype="float64"),
        lon=np.asarray(test["lon"].values, dtype="float64"),
        channels=[str(test["channel"].values[i]) for i in index],
        units=[None if units is None else str(units[i]) for i in index],
        climatology_kind=climatology_kind,
    )


def read_forecast(path: str | Path, channels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A WeatherBench2-layout forecast file back as ``(N, L, C, H, W)`` in the order of
    ``channels`` (``"var"`` or ``"var@level"``), and its initialisation times ``(N,)``."""
    with xr.open_dataset(path) as ds:
        parts = []
        for ch in channels:
            var, _, level = ch.partition("@")
            da = ds[cf_name(var)]
            if level:
                dim = next(d for d in da.dims if str(d).startswith("level"))
                da = da.sel({dim: float(level)})
            parts.append(
                da.transpose("time", "prediction_timedelta", "latitude", "longitude").values
            )
        return np.stack(parts, axis=2).astype("float32"), ds["time"].values


def score(
    forecast: np.ndarray,
    truth: np.ndarray,
    climatology: np.ndarray,
    lat: np.ndarray,
    lead: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Latitude-weighted RMSE and ACC ``(L, C)`` of ``forecast`` against ``truth``, both
    ``(N, L, C, H, W)`` with ``climatology`` the same shape (see the module doc); NaN cells
    are left out (WeatherBench2 dimension names, so the metric functions find them)."""

    def field(values: np.ndarray) -> xr.DataArray:
        coords: dict[str, Any] = {"latitude": np.asarray(lat, dtype="float64")}
        if lead is not None:
            coords["prediction_timedelta"] = lead
        return xr.DataArray(values, dims=_DIMS, coords=coords)

    p, y, c = field(forecast), field(truth), field(climatology)
    with np.errstate(invalid="ignore", divide="ignore"):  # ACC of the climatology: 0/0
        rmse = lat_weighted_rmse(p, y).transpose("prediction_timedelta", "channel")
        corr = acc(p, y, c).transpose("prediction_timedelta", "channel")
    return np.asarray(rmse.values, dtype="float64"), np.asarray(corr.values, dtype="float64")


# ---------------------------------------------------------------------------------- results
def _array(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype="float64")


@dataclass
class Scores:
    """RMSE (field units) and ACC as ``[lead][channel]`` lists (``None``: undefined)."""

    rmse: list[list[float | None]]
    acc: list[list[float | None]]

    @classmethod
    def of(cls, rmse: np.ndarray, acc_: np.ndarray) -> Scores:
        return cls(jsonable(np.asarray(rmse)), jsonable(np.asarray(acc_)))

    def array(self, key: str) -> np.ndarray:
        """``rmse`` or ``acc`` as a float array ``(L, C)`` (NaN where undefined)."""
        return _array(getattr(self, key))

    def to_dict(self) -> dict[str, Any]:
        return {"rmse": self.rmse, "acc": self.acc}


@dataclass
class ForecastSeed:
    """One learned run: its scores, training record and forecast file (``result.json``),
    and the checkpoint that forecast (``last`` or ``best``, the 1-based epoch of its
    weights)."""

    seed: int
    scores: Scores
    train_seconds: float | None = None
    model_params: int | None = None
    history: LossHistory | None = None
    forecast_file: str = ""
    checkpoint: str = "last"
    checkpoint_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed, **self.scores.to_dict()}
        for key in (
            "train_seconds",
            "model_params",
            "forecast_file",
            "checkpoint",
            "checkpoint_epoch",
        ):
            out[key] = getattr(self, key)
        if self.history is not None:
            out["history"] = {
                "epoch": self.history.epoch,
                "train_loss": self.history.train_loss,
                "val_loss": self.history.val_loss,
            }
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "result") -> ForecastSeed:
        """Inverse of :meth:`to_dict`; an unknown key raises ``ValueError`` naming ``where``."""
        raw = dict(d)
        try:
            out = cls(
                seed=raw.pop("seed"),
                scores=Scores(raw.pop("rmse"), raw.pop("acc")),
                train_seconds=raw.pop("train_seconds", None),
                model_params=raw.pop("model_params", None),
                forecast_file=raw.pop("forecast_file", ""),
                checkpoint=raw.pop("checkpoint", "last"),
                checkpoint_epoch=raw.pop("checkpoint_epoch", None),
            )
        except KeyError as err:
            raise ValueError(f"{where}: missing key {err} of a forecast run") from None
        history = raw.pop("history", None)
        out.history = LossHistory(**history) if history is not None else None
        if raw:
            raise ValueError(
                f"{where}: unknown key '{sorted(raw)[0]}' (forecast results version "
                f"{FORECAST_VERSION}); delete that run's folder to recompute it"
            )
        return out


def _mean_sd(values: list[np.ndarray]) -> tuple[list, list]:
    stack = np.stack(values)
    with np.errstate(invalid="ignore"):
        return jsonable(stack.mean(0)), jsonable(stack.std(0))


@dataclass
class ForecastModel:
    """Every seed of one learned subject or variant; :meth:`summary` is mean ± sd."""

    seeds: list[ForecastSeed]

    def summary(self) -> dict[str, Any]:
        """``rmse``, ``acc`` (``[lead][channel]``) and ``train_seconds``: mean over seeds and
        ``<key>_sd`` (population sd over seeds)."""
        out: dict[str, Any] = {}
        for key in ("rmse", "acc"):
            out[key], out[f"{key}_sd"] = _mean_sd([s.scores.array(key) for s in self.seeds])
        secs = [s.train_seconds for s in self.seeds if s.train_seconds is not None]
        out["train_seconds"] = float(np.mean(secs)) if secs else None
        out["train_seconds_sd"] = float(np.std(secs)) if secs else None
        return out

    def mean(self, key: str) -> np.ndarray:
        """Mean over seeds of ``rmse`` / ``acc`` as ``(L, C)``."""
        return _array(self.summary()[key])

    def sd(self, key: str) -> np.ndarray:
        return _array(self.summary()[f"{key}_sd"])


@dataclass
class ForecastResults:
    """The ``"forecast"`` section of ``results.json`` (see the module doc)."""

    channels: list[str]
    units: list[str | None]
    lead_hours: list[float]
    stride: int
    n_init: int
    init_period: list[str]
    climatology: str
    baselines: dict[str, Scores]
    models: dict[str, ForecastModel] = field(default_factory=dict)
    version: int = FORECAST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "channels": list(self.channels),
            "units": list(self.units),
            "lead_hours": list(self.lead_hours),
            "stride": self.stride,
            "n_init": self.n_init,
            "init_period": list(self.init_period),
            "climatology": self.climatology,
            "baselines": {k: s.to_dict() for k, s in self.baselines.items()},
            "models": {
                name: {"seeds": [s.to_dict() for s in m.seeds], "summary": m.summary()}
                for name, m in self.models.items()
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForecastResults:
        """Inverse of :meth:`to_dict` (``ValueError`` for another section version); the
        summaries are recomputed from the seeds."""
        if d.get("version") != FORECAST_VERSION:
            raise ValueError(
                f"forecast results version {d.get('version')!r} is not {FORECAST_VERSION}: "
                "rerun the comparison with this faconvlstm version"
            )
        return cls(
            channels=d["channels"],
            units=d["units"],
            lead_hours=d["lead_hours"],
            stride=d["stride"],
            n_init=d["n_init"],
            init_period=d["init_period"],
            climatology=d["climatology"],
            baselines={k: Scores(**s) for k, s in d["baselines"].items()},
            models={
                name: ForecastModel(
                    [
                        ForecastSeed.from_dict(s, f"results.json forecast.models.{name}")
                        for s in m["seeds"]
                    ]
                )
                for name, m in d["models"].items()
            },
        )
