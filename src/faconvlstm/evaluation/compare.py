"""``faconvlstm compare`` / ``faconvlstm demo``: the evaluation protocol, end to end.

Every model of the comparison — FAConvLSTM and ConvLSTM autoencoders, and the EOF/PCA
baseline — is trained (or fitted) once per seed on the same data with the same budget, then
measured with the metrics of :mod:`faconvlstm.evaluation` on the same held-out windows.

Output directory::

    out/results.json                       all numbers (schema below), written last
    out/report.md, out/figures/*.png       the report (see :mod:`.report`)
    out/compare.yaml                       the configuration as run
    out/cost.json                          layer cost table + scaling sweep
    out/runs/<model>/seed<s>/train/        `faconvlstm fit` output (checkpoints, logs)
    out/runs/<model>/seed<s>/epochs/       per-epoch losses and probe embeddings (drift)
    out/runs/<model>/seed<s>/arrays.npz    evaluation embeddings, labels, attention map
    out/runs/<model>/seed<s>/result.json   that run's metrics; its presence = run finished

Resuming: rerunning the same command skips every finished (model, seed) — the result files
are written atomically, after everything else of that run — and continues an interrupted
training from its ``last.ckpt``.

``results.json`` (``schema_version`` 1)::

    {"schema_version": 1, "faconvlstm_version", "created", "command", "config",
     "seeds": [...], "budget": {...}, "data": {...}, "cost_config": {...},
     "scaling": [{"model", "height", "width", "steps", "params", "flops", "fwd_ms",
                  "fwd_bwd_ms", "peak_mem_mb", "saved_mb"}, ...],
     "models": {"fa" | "convlstm" | "eof": {
         "cost": {"params", "flops", "fwd_ms", "fwd_bwd_ms", "peak_mem_mb",   # one layer
                  "saved_mb",                        # bytes autograd keeps for backward
                  "model_params", "model_fwd_bwd_ms"},                        # trained model
         "seeds": [{"seed", "train_seconds", "eval_seconds", "history", "drift",
                    "recon_rmse", "recon_rmse_by_channel", "recon_acc", "recon_acc_by_channel",
                    "ari_truth", "nmi_truth", "silhouette", "davies_bouldin",
                    "calinski_harabasz", "cluster_rmse_ratio", "cluster_intra_rmse",
                    "cluster_inter_rmse", "cluster_spatial_correlation", "probe_r2",
                    "probe_r2_index", "robustness": {"noise" | "random_mask" | "block_mask":
                    {"level": [...], "cosine": [...], "ari": [...]}}, "attribution",
                    "attention_*", "attention_gamma", "se_branch" (FA only)}, ...],
         "summary": {"stability_cka", "stability_ari", "stability_nmi", "ari_truth",
                     "silhouette", "recon_rmse", "robustness_cos": {"σ": mean cosine}, ...,
                     and "<metric>_sd" (sd over seeds) for every averaged scalar}}}}

Units: RMSE in normalised units (per-channel standard deviations of the training period);
times in ms; memory in MiB; null where a number does not apply (e.g. FLOPs of EOF).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import xarray as xr
import yaml
from tqdm.auto import tqdm

from faconvlstm import __version__
from faconvlstm import data as fdata
from faconvlstm.evaluation.interpretability import (
    attention_map,
    attention_mass_on_region,
    box_mean_index,
    linear_probe_r2,
    occlusion_attribution,
    region_mask,
    se_branch_statistics,
    uniform_attention_map,
)
from faconvlstm.evaluation.quality import (
    acc,
    ari_nmi_truth,
    cluster_quality,
    dayofyear_climatology,
    intra_inter_cluster_rmse,
    lat_weighted_rmse,
    spatial_correlation_matrix,
)
from faconvlstm.evaluation.report import write_report
from faconvlstm.evaluation.robustness import robustness_curve
from faconvlstm.evaluation.stability import (
    cluster_agreement,
    embedding_drift,
    kmeans_labels,
    mean_pairwise_cka,
)
from faconvlstm.models.eof import EOFEmbedding

__all__ = [
    "SCHEMA_VERSION",
    "CompareConfig",
    "compare",
    "load_compare_config",
]

SCHEMA_VERSION = 1
LEARNED = ("fa", "convlstm")


# ---------------------------------------------------------------------------------- config
@dataclass
class EvaluationConfig:
    """What is measured on the held-out windows.

    ``n_clusters``: k of k-means (null: the number of ground-truth regimes, else 4).
    ``noise_sigmas``: Gaussian noise levels in units of each channel's std.
    ``mask_fractions``: hidden shares for random-point and block masking (``block`` = h, w).
    ``attention_hops``: propagation steps of the attention maps (see ``attention_map``).
    ``lobe_radius_deg``: radius of the teleconnection lobe regions.
    ``probe_windows``: evaluation windows embedded after every epoch (embedding drift) and
    used for the FA internals.
    ``climatology_smooth_days``: running-mean width of the ACC day-of-year climatology.
    """

    n_clusters: int | None = None
    noise_sigmas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0])
    mask_fractions: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    block: list[int] = field(default_factory=lambda: [4, 8])
    attention_hops: list[int] = field(default_factory=lambda: [1, 2])
    lobe_radius_deg: float = 20.0
    probe_windows: int = 8
    climatology_smooth_days: int = 31


@dataclass
class CostConfig:
    """The layer cost sweep (:mod:`faconvlstm.evaluation.efficiency`).

    One FA and one ConvLSTM layer with ``filters`` and ``in_channels`` are measured on every
    ``grids`` × ``steps`` input of batch ``batch``; the largest point is the cost table.
    """

    enabled: bool = True
    filters: int = 64
    in_channels: int = 8
    batch: int = 4
    grids: list[list[int]] = field(default_factory=lambda: [[32, 64], [64, 128]])
    steps: list[int] = field(default_factory=lambda: [6, 12])
    repeats: int = 2
    memory: bool = True
    device: str = "cpu"


@dataclass
class CompareConfig:
    """A comparison: models × seeds, one training configuration, one evaluation.

    ``train`` is a `faconvlstm fit` run configuration (see
    :mod:`faconvlstm.training.config`) shared by the learned models; ``model_overrides``
    is merged into its ``model`` section per model (``cell`` is set from the model name).
    ``data_seed`` fixes the synthetic data, so only the model seed varies between seeds.
    ``eof_n_eofs``: EOFs kept (null: the learned models' ``embed_dim``).
    ``threads``: PyTorch intra-op threads during the comparison (null: unchanged). On a
    busy shared machine 1 thread can be many times faster than spinning thread pools.
    """

    out: str = "runs/compare"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    models: list[str] = field(default_factory=lambda: ["fa", "convlstm", "eof"])
    data_seed: int = 0
    train: dict = field(default_factory=dict)
    model_overrides: dict = field(default_factory=dict)
    eof_n_eofs: int | None = None
    threads: int | None = None
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    cost: CostConfig = field(default_factory=CostConfig)


def _from_dict(cls: type, raw: dict | None, prefix: str = "") -> Any:
    raw = raw or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        from faconvlstm.training.config import ConfigError

        raise ConfigError(
            f"unknown compare config key '{prefix}{unknown[0]}'; accepted: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in raw.items():
        sub = {"evaluation": EvaluationConfig, "cost": CostConfig}.get(name)
        kwargs[name] = _from_dict(sub, value, f"{name}.") if sub and cls is CompareConfig else value
    return cls(**kwargs)


def load_compare_config(
    source: str | Path | dict, overrides: list[str] | None = None
) -> CompareConfig:
    """Read a compare YAML file (path or shipped name, e.g. ``compare_demo``) or a dict.

    ``overrides`` are dotted ``key=value`` strings (``train.trainer.max_epochs=2``).
    """
    from faconvlstm.training.config import ConfigError, parse_overrides, resolve_config_path

    if isinstance(source, dict):
        raw = copy.deepcopy(source)
    else:
        raw = yaml.safe_load(resolve_config_path(source).read_text()) or {}
    raw = _merge(raw, parse_overrides(overrides))
    cfg = _from_dict(CompareConfig, raw)
    bad = sorted(set(cfg.models) - {"fa", "convlstm", "eof"})
    if bad:
        raise ConfigError(f"compare config key 'models': unknown model {bad[0]!r}")
    if len(cfg.seeds) < 2:
        raise ConfigError("compare config key 'seeds': stability needs at least 2 seeds")
    run = _run_config(cfg, "fa", cfg.seeds[0])  # validates the training section up front
    if run.task != "autoencoder":
        raise ConfigError(
            "compare config key 'train.task': the comparison evaluates representations, "
            f"so it trains autoencoders; got {run.task!r}"
        )
    return cfg


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _run_config(cfg: CompareConfig, model: str, seed: int) -> Any:
    """The validated `fit` configuration of one learned model and seed."""
    from faconvlstm.training.config import load_config

    raw = copy.deepcopy(cfg.train)
    raw["seed"] = seed
    raw.setdefault("task", "autoencoder")
    raw["model"] = {**raw.get("model", {}), **cfg.model_overrides.get(model, {}), "cell": model}
    data = raw.setdefault("data", {})
    if data.get("source", "synthetic") == "synthetic":
        data["synthetic"] = {**data.get("synthetic", {}), "seed": cfg.data_seed}
    return load_config(raw)


# ---------------------------------------------------------------------------------- data
@dataclass
class EvalData:
    """The held-out windows every model is measured on, and the ground truth.

    ``x``: (N, T, C, H, W) normalised, 0 where missing; ``valid``: same, bool;
    ``phase``: (N, T) annual phase; ``times``: (N, T) stamps; ``clim``: (N, T, C, H, W)
    day-of-year climatology of the normalised training period; ``train_fields``:
    (T_train, C, H, W) normalised training period (NaN where missing), for the EOFs;
    ``train_x``, ``train_phase``: the training period as windows, where the linear probes
    are fitted. Truth (None without): ``regime`` and ``oscillator`` (N·T,),
    ``train_oscillator``, ``lobes`` ``{"tropical": (lat, lon), "remote": (lat, lon)}``,
    ``index_channel`` (the variable carrying the tropical lobe).
    """

    x: torch.Tensor
    valid: torch.Tensor
    phase: torch.Tensor
    times: np.ndarray
    clim: np.ndarray
    train_fields: np.ndarray
    train_x: torch.Tensor
    train_phase: torch.Tensor
    lat: np.ndarray
    lon: np.ndarray
    channels: list[str]
    n_train_steps: int
    regime: np.ndarray | None = None
    oscillator: np.ndarray | None = None
    train_oscillator: np.ndarray | None = None
    lobes: dict[str, tuple[float, float]] | None = None
    index_channel: int | None = None
    source: str = ""

    @property
    def flat_times(self) -> np.ndarray:
        return self.times.reshape(-1)

    def probe(self, n: int) -> np.ndarray:
        """Indices of ``n`` windows spread evenly over the period (all seasons)."""
        return np.unique(
            np.linspace(0, self.x.shape[0] - 1, min(n, self.x.shape[0])).round()
        ).astype(int)


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


def prepare_data(cfg: CompareConfig) -> EvalData:
    """Open the data as the training run does; cut the held-out period into windows.

    The held-out period is ``test_years`` when the training configuration names them, else
    the validation period (which training uses only for its validation loss: every model
    is evaluated from its last checkpoint, not a checkpoint selected on it).
    """
    from faconvlstm.training.datamodule import GriddedDataModule

    run = _run_config(cfg, "fa", cfg.seeds[0])
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
    train = dm.stats.normalize_array(
        np.asarray(train_da.values, dtype="float32"), train_da["time"].values
    )
    train_xr = xr.DataArray(
        train, dims=("time", "channel", "lat", "lon"), coords={"time": train_da["time"].values}
    )
    clim = dayofyear_climatology(train_xr, smooth_days=cfg.evaluation.climatology_smooth_days)
    clim = clim.reindex(dayofyear=np.arange(1, 367), method="nearest")
    doy = xr.DataArray(batch["time"].reshape(-1), dims="t").dt.dayofyear
    clim_eval = np.nan_to_num(clim.sel(dayofyear=doy).values).reshape(batch["x"].shape)
    out = EvalData(
        x=batch["x"],
        valid=batch["mask"],
        phase=batch["phase"],
        times=batch["time"],
        clim=clim_eval,
        train_fields=train,
        train_x=train_batch["x"],
        train_phase=train_batch["phase"],
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
        out.lobes = _lobes(truth)
        out.index_channel = _index_channel(truth, out.channels)
    return out


def _index_channel(truth: xr.Dataset, channels: list[str]) -> int | None:
    """Channel of the variable that carries the tropical lobe (``truth.attrs``)."""
    name = truth.attrs.get("enso_variable")
    return channels.index(name) if name in channels else None


# ---------------------------------------------------------------------------------- models
class _Learned:
    """A trained autoencoder seen through the functions the metrics need.

    ``embed(x)`` takes windows like ``data.x`` (perturbed or not) and returns ``(N·T, E)``;
    ``embed_and_reconstruct(x)`` also returns the reconstruction ``(N, T, C, H, W)``.
    """

    batch_size = 64

    def __init__(self, model: torch.nn.Module, data: EvalData):
        self.model, self.data = model.eval(), data

    @torch.no_grad()
    def _run(self, x: Any, keys: tuple[str, ...], phase: Any = None) -> list[torch.Tensor]:
        x = torch.as_tensor(x, dtype=torch.float32)
        phase = self.data.phase if phase is None else phase
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        for i in range(0, x.shape[0], self.batch_size):
            s = slice(i, i + self.batch_size)
            out = self.model(x[s], times=phase[s])
            for k in keys:
                parts[k].append(out[k])
        return [torch.cat(parts[k]) for k in keys]

    def embed(self, x: Any, phase: Any = None) -> np.ndarray:
        """Embeddings ``(N·T, E)``; ``phase`` defaults to the evaluation windows' phase."""
        (z,) = self._run(x, ("embeddings",), phase)
        return z.reshape(-1, z.shape[-1]).numpy()

    def embed_and_reconstruct(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        z, recon = self._run(x, ("embeddings", "recon"))
        return z.reshape(-1, z.shape[-1]).numpy(), recon.numpy()


class _EOF:
    """The EOF baseline seen through the same functions."""

    def __init__(self, eof: EOFEmbedding, data: EvalData):
        self.eof, self.data = eof, data

    def embed(self, x: Any, phase: Any = None) -> np.ndarray:
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return self.eof.transform(x.reshape(-1, *x.shape[-3:]), lat=self.data.lat)

    def embed_and_reconstruct(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        z = self.embed(x)
        return z, self.eof.inverse_transform(z).reshape(x.shape)


# ---------------------------------------------------------------------------------- metrics
def _n_clusters(cfg: CompareConfig, data: EvalData) -> int:
    if cfg.evaluation.n_clusters is not None:
        return cfg.evaluation.n_clusters
    return int(np.unique(data.regime).size) if data.regime is not None else 4


def evaluate(subject: Any, data: EvalData, cfg: CompareConfig, seed: int) -> tuple[dict, dict]:
    """Every per-seed metric of one model; returns ``(metrics, arrays)``."""
    ev = cfg.evaluation
    k = _n_clusters(cfg, data)
    x = data.x
    z, recon = subject.embed_and_reconstruct(x)
    labels = kmeans_labels(z, k, seed)
    fields = x.numpy().reshape(-1, *x.shape[-3:])
    metrics: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {"embeddings": z, "labels": labels}

    target = np.where(data.valid.numpy(), x.numpy(), np.nan)
    rmse = lat_weighted_rmse(recon, target, lat=data.lat)
    skill = acc(recon, target, data.clim, lat=data.lat)
    metrics["recon_rmse"] = float(rmse.mean())
    metrics["recon_rmse_by_channel"] = dict(zip(data.channels, rmse.values.tolist()))
    metrics["recon_acc"] = float(skill.mean())
    metrics["recon_acc_by_channel"] = dict(zip(data.channels, skill.values.tolist()))

    metrics.update(cluster_quality(z, labels))
    regimes = intra_inter_cluster_rmse(fields, labels, lat=data.lat)
    metrics["cluster_rmse_ratio"] = regimes["ratio"]
    metrics["cluster_intra_rmse"] = regimes["intra"].tolist()
    metrics["cluster_inter_rmse"] = regimes["inter"].tolist()
    metrics["cluster_spatial_correlation"] = spatial_correlation_matrix(
        fields, labels, lat=data.lat
    ).values.tolist()
    if data.regime is not None:
        truth = ari_nmi_truth(labels, data.regime)
        metrics["ari_truth"], metrics["nmi_truth"] = truth["ari"], truth["nmi"]
        arrays["truth_regime"] = data.regime
    # probes are fitted on the training period and scored on the held-out one
    z_train = subject.embed(data.train_x, data.train_phase)
    if data.oscillator is not None:
        metrics["probe_r2"] = linear_probe_r2(
            z_train, data.train_oscillator, z_test=z, target_test=data.oscillator
        )
    index = _driver_index(data, fields)
    if index is not None:
        train_fields = data.train_x.numpy().reshape(-1, *x.shape[-3:])
        metrics["probe_r2_index"] = linear_probe_r2(
            z_train, _driver_index(data, train_fields), z_test=z, target_test=index
        )

    block = tuple(ev.block)
    metrics["robustness"] = {}
    for kind, levels in (
        ("noise", ev.noise_sigmas),
        ("random_mask", ev.mask_fractions),
        ("block_mask", ev.mask_fractions),
    ):
        curve = robustness_curve(
            subject.embed, x, levels, kind=kind, n_clusters=k, seed=seed, block=block, clean=z
        )
        metrics["robustness"][kind] = {
            "level": [float(v) for v in curve["level"].values],
            "cosine": curve["cosine"].values.tolist(),
            "ari": curve["ari"].values.tolist(),
        }
    metrics["attribution"] = (
        occlusion_attribution(subject.embed, x, variables=data.channels, clean=z)
        .to_series()
        .to_dict()
    )
    return metrics, arrays


def _driver_index(data: EvalData, fields: np.ndarray) -> np.ndarray | None:
    """A Niño-3.4-like index computed from the data: the box mean of the variable that
    carries the tropical lobe, over the lobe's region."""
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


def _coarse(coord: np.ndarray, size: int) -> np.ndarray:
    """Centres of ``size`` equal blocks of a coordinate (average pooling)."""
    if size == coord.size:
        return coord
    idx = (np.arange(size) + 0.5) * coord.size / size - 0.5
    return np.interp(idx, np.arange(coord.size), coord)


def fa_internals(model: torch.nn.Module, data: EvalData, cfg: CompareConfig) -> tuple[dict, dict]:
    """Attention mass on the remote lobe and SE/branch statistics of the first FA layer."""
    from faconvlstm.layers import FAConvLSTM2D

    layer = next((m for m in model.modules() if isinstance(m, FAConvLSTM2D)), None)
    if layer is None:
        return {}, {}
    idx = data.probe(cfg.evaluation.probe_windows)
    with torch.no_grad(), layer.capture_internals() as rec:
        model.eval()(data.x[idx], times=data.phase[idx])
    # γ scales the attention update (h ← h + γ·attention); it starts at 0, so its trained
    # size says how much the layers use global context at all
    metrics: dict[str, Any] = {
        "attention_gamma": [
            float(m.gamma.detach())
            for m in model.modules()
            if isinstance(m, FAConvLSTM2D) and m.gamma is not None
        ],
    }
    arrays: dict[str, np.ndarray] = {}
    if rec["se_weights"] is not None:
        stats = se_branch_statistics(rec["se_weights"], rec["branch_energy"], data.times[idx])
        metrics["se_branch"] = {
            "group": [str(g) for g in stats["group"].values],
            "se_weight": stats["se_weight"].values.tolist(),
            "branch_share": stats["branch_share"].values.tolist(),
        }
    if rec["attention"] and data.lobes is not None:
        row = torch.stack([a["row"] for a in rec["attention"]]).mean(0)
        col = torch.stack([a["col"] for a in rec["attention"]]).mean(0)
        lat = _coarse(data.lat, row.shape[1])
        lon = _coarse(data.lon, row.shape[-1])
        t_lat, t_lon = data.lobes["tropical"]
        query = (
            int(np.abs(lat - t_lat).argmin()),
            int(np.argmin(np.abs((lon - t_lon + 180) % 360 - 180))),
        )
        remote = region_mask(lat, lon, data.lobes["remote"], cfg.evaluation.lobe_radius_deg)
        maps = []
        for hops in cfg.evaluation.attention_hops:
            m = attention_map(row, col, query, hops=hops)
            chance = uniform_attention_map(m.shape, query, hops=hops)
            mass = attention_mass_on_region(m, remote, chance_map=chance)
            suffix = "" if hops == 1 else f"_{hops}hop"
            metrics[f"attention_remote_mass{suffix}"] = mass["mass"]
            metrics[f"attention_remote_ratio{suffix}"] = mass["ratio"]
            metrics[f"attention_chance{suffix}"] = mass["chance"]
            maps.append(m)
        arrays.update(
            attention_map=np.stack(maps),
            attention_lat=lat,
            attention_lon=lon,
            attention_hops=np.asarray(cfg.evaluation.attention_hops),
            attention_query=np.array([lat[query[0]], lon[query[1]]]),
            attention_remote=np.asarray(data.lobes["remote"]),
        )
    return metrics, arrays


# ---------------------------------------------------------------------------------- training
class EpochRecorder(L.Callback):
    """After each training epoch: mean training loss, validation loss and the embeddings of
    fixed probe windows, saved to ``directory/epoch_XXX.npz`` (survives a resume)."""

    def __init__(self, directory: Path, probe_x: torch.Tensor, probe_phase: torch.Tensor):
        self.directory = Path(directory)
        self.probe_x, self.probe_phase = probe_x, probe_phase
        self._losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._losses.append(float(loss.detach()))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        val = trainer.callback_metrics.get("val/loss")
        was_training = pl_module.model.training
        with torch.no_grad():
            z = pl_module.model.eval()(self.probe_x, times=self.probe_phase)["embeddings"]
        pl_module.model.train(was_training)
        _atomic_savez(
            self.directory / f"epoch_{trainer.current_epoch:03d}.npz",
            embeddings=z.reshape(-1, z.shape[-1]).numpy(),
            train_loss=np.float64(np.mean(self._losses) if self._losses else np.nan),
            val_loss=np.float64(float(val) if val is not None else np.nan),
        )
        self._losses = []


def _history(directory: Path) -> tuple[dict, list[np.ndarray]]:
    files = sorted(directory.glob("epoch_*.npz"))
    hist: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": []}
    snapshots = []
    for f in files:
        with np.load(f) as d:
            hist["epoch"].append(int(f.stem.split("_")[1]))
            hist["train_loss"].append(_finite(float(d["train_loss"])))
            hist["val_loss"].append(_finite(float(d["val_loss"])))
            snapshots.append(d["embeddings"])
    return hist, snapshots


def _train(
    cfg: CompareConfig, model_name: str, seed: int, run_dir: Path, data: EvalData
) -> tuple[torch.nn.Module, float]:
    """Train (or resume, or reuse) one learned model; returns it and its training time."""
    from faconvlstm.training.fit import fit
    from faconvlstm.training.infer import load_model

    train_dir = run_dir / "train"
    done = train_dir / "done.json"
    last = train_dir / "checkpoints" / "last.ckpt"
    if not done.exists():
        idx = data.probe(cfg.evaluation.probe_windows)
        recorder = EpochRecorder(run_dir / "epochs", data.x[idx], data.phase[idx])
        start = time.perf_counter()
        fit(
            _run_config(cfg, model_name, seed),
            out=train_dir,
            resume=last.exists(),
            callbacks=[recorder],
        )
        _atomic_write(done, json.dumps({"train_seconds": time.perf_counter() - start}))
    model, _ = load_model(last)
    return model, float(json.loads(done.read_text())["train_seconds"])


# ---------------------------------------------------------------------------------- runs
def run_one(cfg: CompareConfig, model_name: str, seed: int, data: EvalData, out: Path) -> dict:
    """Train/fit and evaluate one (model, seed); writes its ``result.json`` last."""
    run_dir = out / "runs" / model_name / f"seed{seed}"
    result_path = run_dir / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(seed, verbose=False)
    result: dict[str, Any] = {"seed": seed}
    extra_arrays: dict[str, np.ndarray] = {}
    if model_name == "eof":
        start = time.perf_counter()
        n_eofs = cfg.eof_n_eofs or _run_config(cfg, "fa", seed).model.get("embed_dim", 32)
        eof = EOFEmbedding(n_eofs=n_eofs).fit(data.train_fields, lat=data.lat)
        result["train_seconds"] = time.perf_counter() - start
        result["explained_variance"] = float(eof.explained_variance_ratio_.sum())
        subject: Any = _EOF(eof, data)
        result["model_params"] = int(eof.components_.size)
    else:
        model, result["train_seconds"] = _train(cfg, model_name, seed, run_dir, data)
        subject = _Learned(model, data)
        history, snapshots = _history(run_dir / "epochs")
        result["history"] = history
        if len(snapshots) >= 2:
            drift = embedding_drift(snapshots)
            result["drift"] = {k: v.tolist() for k, v in drift.items()}
            result["drift_cka_final"] = float(drift["cka_drift"][-1])
        result["model_params"] = sum(p.numel() for p in model.parameters())
        result["model_fwd_bwd_ms"] = _model_step_ms(model, data)
        if model_name == "fa":
            internals, extra_arrays = fa_internals(model, data, cfg)
            result.update(internals)
    start = time.perf_counter()
    metrics, arrays = evaluate(subject, data, cfg, seed)
    result.update(metrics)
    result["eval_seconds"] = time.perf_counter() - start
    _atomic_savez(run_dir / "arrays.npz", **arrays, **extra_arrays)
    result = _jsonable(result)
    _atomic_write(result_path, json.dumps(result, indent=1))
    return result


def _model_step_ms(model: torch.nn.Module, data: EvalData, batch: int = 4) -> float:
    """Wall time (ms, min of 3) of one forward+backward of the trained model on eval windows."""
    from faconvlstm.evaluation.efficiency import time_call

    x, phase = data.x[:batch], data.phase[:batch]
    model.train()

    def step() -> None:
        model(x, times=phase)["recon"].square().mean().backward()
        model.zero_grad(set_to_none=True)

    ms = min(time_call(step, torch.device("cpu"), repeats=3))
    model.eval()
    return ms


def measure_cost(cfg: CostConfig, models: list[str], out: Path) -> dict:
    """Layer cost over ``grids`` × ``steps`` (cached in ``out/cost.json``)."""
    path = out / "cost.json"
    if path.exists():
        return json.loads(path.read_text())
    kinds = [m for m in models if m in LEARNED]
    rows: list[dict] = []
    if cfg.enabled and kinds:
        from faconvlstm.evaluation.efficiency import layer_costs

        points = [(h, w, t) for h, w in cfg.grids for t in cfg.steps]
        for h, w, t in tqdm(points, desc="layer cost", leave=False):
            res = layer_costs(
                kinds,
                in_channels=cfg.in_channels,
                filters=cfg.filters,
                batch=cfg.batch,
                steps=t,
                height=h,
                width=w,
                repeats=cfg.repeats,
                device=cfg.device,
                memory=cfg.memory,
            )
            for kind, r in res.items():
                rows.append(
                    {
                        "model": kind,
                        "height": h,
                        "width": w,
                        "steps": t,
                        "params": r["params"],
                        "flops": r["flops_fwd_bwd"],
                        "fwd_ms": r["fwd_ms"],
                        "fwd_bwd_ms": r["fwd_bwd_ms"],
                        "peak_mem_mb": r["peak_mem_mb"],
                        "saved_mb": r.get("saved_mb"),
                    }
                )
    cost = {
        "config": {**dataclasses.asdict(cfg), "threads": torch.get_num_threads()},
        "scaling": rows,
    }
    _atomic_write(path, json.dumps(_jsonable(cost), indent=1))
    return cost


# ---------------------------------------------------------------------------------- summary
_AVERAGED = (
    "ari_truth",
    "nmi_truth",
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "cluster_rmse_ratio",
    "probe_r2",
    "probe_r2_index",
    "recon_rmse",
    "recon_acc",
    "train_seconds",
    "drift_cka_final",
    "attention_remote_ratio",
    "attention_remote_ratio_2hop",
    "attention_remote_mass",
    "attention_remote_mass_2hop",
    "attention_chance",
    "attention_chance_2hop",
)


def summarise(seeds: list[dict], embeddings: list[np.ndarray], k: int) -> dict:
    """Across-seed summary of one model: stability from the embeddings, means ± sd."""
    out: dict[str, Any] = {"stability_cka": mean_pairwise_cka(embeddings)}
    agree = cluster_agreement(embeddings, k)
    out["stability_ari"], out["stability_nmi"] = agree["ari"], agree["nmi"]
    for key in _AVERAGED:
        values = [s[key] for s in seeds if s.get(key) is not None]
        if values:
            out[key], out[f"{key}_sd"] = float(np.mean(values)), float(np.std(values))

    def curve(kind: str, what: str) -> dict[str, float]:
        curves = [s["robustness"][kind] for s in seeds]
        mean = np.mean([c[what] for c in curves], axis=0)
        return {f"{lvl:g}": float(v) for lvl, v in zip(curves[0]["level"], mean)}

    out["robustness_cos"] = curve("noise", "cosine")
    out["robustness_ari"] = curve("noise", "ari")
    out["mask_cos"] = {kind: curve(kind, "cosine") for kind in ("random_mask", "block_mask")}
    noisy = [v for lvl, v in out["robustness_cos"].items() if float(lvl) > 0]
    out["robustness_cos_mean"] = float(np.mean(noisy)) if noisy else None
    noisy_ari = [v for lvl, v in out["robustness_ari"].items() if float(lvl) > 0]
    out["robustness_ari_mean"] = float(np.mean(noisy_ari)) if noisy_ari else None
    out["mask_cos_mean"] = float(np.mean([v for c in out["mask_cos"].values() for v in c.values()]))
    variables = seeds[0].get("attribution") or {}
    out["attribution"] = {
        v: float(np.mean([s["attribution"][v] for s in seeds])) for v in variables
    }
    return out


def _model_cost(model: str, cost: dict, seeds: list[dict]) -> dict:
    rows = [r for r in cost["scaling"] if r["model"] == model]
    ref = max(rows, key=lambda r: (r["height"] * r["width"], r["steps"])) if rows else {}
    model_ms = [s["model_fwd_bwd_ms"] for s in seeds if s.get("model_fwd_bwd_ms")]
    return {
        "params": ref.get("params"),
        "flops": ref.get("flops"),
        "fwd_ms": ref.get("fwd_ms"),
        "fwd_bwd_ms": ref.get("fwd_bwd_ms"),
        "peak_mem_mb": ref.get("peak_mem_mb"),
        "saved_mb": ref.get("saved_mb"),
        "model_params": seeds[0].get("model_params") if seeds else None,
        "model_fwd_bwd_ms": min(model_ms) if model_ms else None,
    }


# ---------------------------------------------------------------------------------- main
def compare(
    config: CompareConfig | str | Path | dict,
    out: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    command: str | None = None,
    progress: bool = True,
) -> Path:
    """Run the comparison; returns the path of ``results.json`` (report beside it).

    Args:
        config: a :class:`CompareConfig`, a YAML path / shipped name, or a dict.
        out: output directory (default: ``config.out``). Rerunning into the same directory
            resumes: finished (model, seed) runs are reused.
        overrides: dotted ``key=value`` overrides for a file/dict config.
        command: the command line, recorded in the report for reproduction.
        progress: show progress bars (tqdm; Lightning's during training).
    """
    if isinstance(config, CompareConfig):
        cfg = copy.deepcopy(config)
    else:
        cfg = load_compare_config(config, overrides)
    if not progress:
        cfg.train.setdefault("trainer", {})["enable_progress_bar"] = False
    out = Path(out or cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _compare(cfg, out, command, progress)
    finally:
        torch.set_num_threads(threads)


def _compare(cfg: CompareConfig, out: Path, command: str | None, progress: bool) -> Path:
    _atomic_write(out / "compare.yaml", yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    data = prepare_data(cfg)
    cost = measure_cost(cfg.cost, cfg.models, out)

    jobs = [(m, s) for m in cfg.models for s in cfg.seeds]
    bar = tqdm(jobs, desc="compare", disable=not progress, unit="run")
    per_model: dict[str, list[dict]] = {m: [] for m in cfg.models}
    for model_name, seed in bar:
        bar.set_postfix_str(f"{model_name} seed {seed}")
        per_model[model_name].append(run_one(cfg, model_name, seed, data, out))

    k = _n_clusters(cfg, data)
    run = _run_config(cfg, "fa", cfg.seeds[0])
    models = {}
    for model_name, seeds in per_model.items():
        embeddings = [_load_arrays(out, model_name, s["seed"])["embeddings"] for s in seeds]
        models[model_name] = {
            "cost": _model_cost(model_name, cost, seeds),
            "seeds": seeds,
            "summary": _jsonable(summarise(seeds, embeddings, k)),
        }
    results = {
        "schema_version": SCHEMA_VERSION,
        "faconvlstm_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": dataclasses.asdict(cfg),
        "seeds": list(cfg.seeds),
        "budget": {
            "max_epochs": run.trainer.max_epochs,
            "max_steps": run.trainer.max_steps,
            "batch_size": run.data.batch_size,
            "window": run.data.window,
            "lr": run.optim.lr,
        },
        "data": {
            "source": data.source,
            "channels": data.channels,
            "height": int(data.lat.size),
            "width": int(data.lon.size),
            "n_train_steps": data.n_train_steps,
            "n_eval_steps": int(data.flat_times.size),
            "eval_period": [str(data.flat_times[0])[:10], str(data.flat_times[-1])[:10]],
            "n_regimes": int(np.unique(data.regime).size) if data.regime is not None else None,
            "n_clusters": k,
        },
        "cost_config": cost["config"],
        "scaling": cost["scaling"],
        "models": models,
    }
    path = out / "results.json"
    _atomic_write(path, json.dumps(_jsonable(results), indent=1))
    write_report(results, out)
    return path


def _load_arrays(out: Path, model: str, seed: int) -> dict[str, np.ndarray]:
    with np.load(out / "runs" / model / f"seed{seed}" / "arrays.npz") as f:
        return dict(f)


# ---------------------------------------------------------------------------------- files
def _atomic_write(path: Path, text: str) -> None:
    from faconvlstm.training.checkpoint import atomic_write_text

    atomic_write_text(text, path)


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN/inf → null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


# ---------------------------------------------------------------------------------- CLI
def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``faconvlstm compare``."""
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="compare configuration (YAML), or a shipped name (compare_synthetic)",
    )
    p.add_argument("--out", metavar="DIR", help="output directory (default: 'out' in the config)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a value, e.g. --set train.trainer.max_epochs=2 (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _interruptible(run: Any, name: str) -> int:
    """Run ``run()``; on SIGTERM (Lightning saved ``last.ckpt``) say how to resume."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        return run()
    except SIGTERMException:
        print(
            f"faconvlstm {name}: stopped by SIGTERM; finished runs and the interrupted "
            "training's last.ckpt are kept: rerun the same command to resume",
            file=sys.stderr,
        )
        return 143


def run_compare(args: argparse.Namespace) -> int:
    """``faconvlstm compare``: run, then print where the results and report are."""
    command = "faconvlstm " + " ".join(sys.argv[1:]) if sys.argv[1:] else None

    def run() -> int:
        path = compare(
            args.config,
            args.out,
            overrides=args.overrides,
            command=command,
            progress=not args.no_progress,
        )
        print(f"results: {path}\nreport:  {path.parent / 'report.md'}")
        return 0

    return _interruptible(run, "compare")


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``faconvlstm demo``."""
    p.add_argument(
        "--out", default="demo_out", metavar="DIR", help="output directory (default: demo_out)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_demo(args: argparse.Namespace) -> int:
    """``faconvlstm demo``: the shipped ``compare_demo`` configuration (synthetic data,
    3 seeds, a budget that finishes in about ten minutes on 2 CPU cores)."""

    def run() -> int:
        start = time.perf_counter()
        path = compare(
            "compare_demo",
            args.out,
            command=f"faconvlstm demo --out {args.out}",
            progress=not args.no_progress,
        )
        minutes = (time.perf_counter() - start) / 60
        print(
            f"demo finished in {minutes:.1f} min\nresults: {path}\n"
            f"report:  {path.parent / 'report.md'}"
        )
        return 0

    return _interruptible(run, "demo")
