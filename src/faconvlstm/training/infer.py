"""``faconvlstm embed`` / ``faconvlstm predict``: inference from a checkpoint alone.

The checkpoint carries the model configuration, the training-period normalisation
statistics and the data description (:mod:`faconvlstm.training.checkpoint`); the data
default to the source the model was trained on.

Long series are tiled with windows of the training length ``T``: windows start at
``0, T, 2T, …`` and one last window is aligned with the end, so every time step gets
exactly one output (for the steps the last window shares with the one before it, the
earlier window's output is kept). Forecasts are issued from every window whose ``N`` target
steps exist in the data, ``stride`` steps apart.

Outputs are never half-written or mixed: the arguments (device, output folder) are checked
before the checkpoint is read; every file of one ``embed`` run is written to a temporary
sibling first and all are renamed only once all are complete (the main file last), each
carrying the same ``run_id`` and ``checkpoint_sha256`` attributes so a reader can check that
files found together belong together. A SIGTERM raises :class:`Terminated` (SIGINT:
``KeyboardInterrupt``), and temporary files are removed either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import shutil
import signal
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.utils.data import DataLoader, Subset

from faconvlstm import data as fdata
from faconvlstm.training.checkpoint import CheckpointError, load_checkpoint, stats_from_meta
from faconvlstm.training.config import DataConfig
from faconvlstm.training.datamodule import open_source
from faconvlstm.training.fit import model_class
from faconvlstm.training.modules import target_channels

__all__ = [
    "Terminated",
    "check_device",
    "check_output",
    "embed",
    "load_model",
    "model_from_checkpoint",
    "predict",
]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM while :func:`embed` / :func:`predict` run.

    A ``KeyboardInterrupt`` subclass, so that ``except Exception`` code does not swallow it
    and every cleanup (temporary files) runs as for Ctrl-C.
    """


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated("stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_device(device: str | torch.device) -> torch.device:
    """The torch device ``device``, or ``ValueError`` saying why it cannot be used here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"--device {device!r} is not a torch device ({err}); use e.g. cpu, cuda, cuda:0 or mps"
        ) from err
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"--device {device}: CUDA is not available on this machine; use --device cpu"
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"--device {device}: this machine has {count} CUDA device(s) "
                f"(cuda:0 … cuda:{count - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available; use --device cpu")
    return dev


def check_output(out: str | Path) -> Path:
    """``out`` if it can be written: a ``.nc`` / ``.zarr`` name in a writable folder (missing
    folders are created later); otherwise ``ValueError`` naming what to change."""
    out = Path(out)
    if out.suffix.lower() not in (".nc", ".nc4", ".zarr"):
        raise ValueError(f"--out {out}: use a '.nc' (NetCDF) or '.zarr' (Zarr) file name")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder {parent} is not writable; choose another")
    return out


def _file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_model(ckpt_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the trained model from a checkpoint; returns ``(model in eval mode, meta)``.

    Raises:
        CheckpointError: unreadable, unsafe or foreign file, or weights that do not fit the
            stored model configuration.
    """
    ckpt = load_checkpoint(ckpt_path)
    return model_from_checkpoint(ckpt, ckpt_path, device), ckpt["faconvlstm"]


def model_from_checkpoint(
    ckpt: dict, ckpt_path: str | Path = "checkpoint", device: str | torch.device = "cpu"
) -> nn.Module:
    """The trained model (in eval mode) of a checkpoint already read by
    :func:`~faconvlstm.training.checkpoint.load_checkpoint` (whose other entries, e.g.
    Lightning's ``epoch``, the caller may want too).

    Raises:
        CheckpointError: weights that do not fit the stored model configuration.
    """
    meta = ckpt["faconvlstm"]
    try:
        model = model_class(meta["task"]).from_config(meta["model_config"])
        state = {
            k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")
        }
        model.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{ckpt_path}: the weights do not match the stored model configuration: {err}"
        ) from err
    return model.to(device).eval()


def open_data(meta: dict, source: str | None = None, years: list[int] | None = None) -> Any:
    """The DataArray to run on: ``source`` (default: the training source) opened with the
    checkpoint's variables/levels, optionally restricted to inclusive ``years``.

    When training used every variable of its source, the variables are still those of the
    checkpoint's channels, so a file with extra variables works too."""
    cfg = DataConfig(**meta["config"]["data"])
    if cfg.variables is None:
        names = [c.split("@")[0] for c in meta["stats"]["channels"]]
        cfg.variables = list(dict.fromkeys(names))
    da = open_source(cfg, seed=meta["config"]["seed"], source=source)
    if years is not None:
        da = fdata.split_by_years(da, train=tuple(years))["train"]
    return da


def _tiling_starts(n_time: int, window: int) -> list[int]:
    if n_time < window:
        raise ValueError(f"the data have {n_time} time steps, fewer than the window {window}")
    starts = list(range(0, n_time - window + 1, window))
    if starts[-1] != n_time - window:
        starts.append(n_time - window)
    return starts


def _loader(dataset: Any, starts: list[int], batch_size: int) -> DataLoader:
    return DataLoader(
        Subset(dataset, starts), batch_size=batch_size, collate_fn=fdata.collate_windows
    )


def _attrs(ckpt_path: str | Path, meta: dict, source: str) -> dict:
    return {
        "run_id": uuid.uuid4().hex,
        "checkpoint": str(ckpt_path),
        "checkpoint_sha256": _file_sha256(ckpt_path),
        "model": meta["model_class"],
        "cell": str(meta["model_config"].get("cell", "")),
        "task": meta["task"],
        "data_source": str(source),
        "seed": int(meta["config"]["seed"]),
    }


@torch.no_grad()
def embed(
    ckpt: str | Path,
    out: str | Path,
    data: str | None = None,
    years: list[int] | None = None,
    batch_size: int = 8,
    hidden: bool = False,
    attention: bool = False,
    device: str = "cpu",
) -> list[Path]:
    """Write per-time-step embeddings ``embedding(time, embedding_dim)`` to ``out``.

    With ``hidden``, the last recurrent layer's hidden states go to
    ``<out>.hidden.<ext>`` as ``hidden(time, feature, lat, lon)`` (lat/lon of the
    possibly downsampled grid); with ``attention``, ``<out>.attention.<ext>`` holds the
    head's temporal self-attention ``temporal_attention(window, query_step, key_step)`` and,
    for FA models, the last layer's axial attention at each window's last step
    (``row_attention(window, lat, lon_query, lon_key)``, ``col_attention(window, lon,
    lat_query, lat_key)``), averaged over heads. When the model clusters
    (``model.n_clusters``, joint deep clustering), the main file also holds
    ``cluster(time)`` (int, the most probable cluster) and ``cluster_probability(time,
    cluster_id)`` (the soft assignment q, summing to 1 over ``cluster_id``). Returns the
    paths written.

    The files are written as one set (see the module docstring); a ``<out>.hidden.*`` or
    ``<out>.attention.*`` left by an earlier faconvlstm run and not written this time is
    removed, so the set on disk is always from one run.

    Raises:
        ValueError: unusable ``device`` or ``out`` (checked before any work), bad data.
        OSError: a file could not be written (the message names it; nothing is left).
        Terminated: SIGTERM arrived (nothing new is left on disk).
    """
    check_device(device)
    out = check_output(out)
    with _sigterm_raises():
        return _embed(ckpt, out, data, years, batch_size, hidden, attention, device)


def _embed(ckpt, out, data, years, batch_size, hidden, attention, device) -> list[Path]:
    model, meta = load_model(ckpt, device)
    da = open_data(meta, data, years)
    stats = stats_from_meta(meta["stats"])
    window = int(meta["data"]["window"])
    dataset = fdata.WindowDataset(da, window=window, stride=1, stats=stats)
    starts = _tiling_starts(dataset.times.size, window)
    encoder = getattr(model, "encoder", model)
    fa_layer = encoder.layers[-1] if hasattr(encoder, "layers") else None
    capture = attention and hasattr(fa_layer, "capture_internals")
    wants_attn = attention and "return_attention" in inspect.signature(model.forward).parameters

    n = dataset.times.size
    emb = hid = probs = None
    clusters = _has_clusters(model, ckpt)
    temporal, rows, cols = [], [], []
    covered = 0
    s_iter = iter(starts)
    for batch in _loader(dataset, starts, batch_size):
        kwargs = {"return_attention": True} if wants_attn else {}
        x = batch["x"].to(device)
        if capture:
            with fa_layer.capture_internals() as rec:
                res = model(
                    x, times=batch["phase"].to(device), mask=batch["mask"].to(device), **kwargs
                )
            if rec["attention"]:  # none when the layer has attention_every=0
                rows.append(rec["attention"][-1]["row"].mean(2).cpu())
                cols.append(rec["attention"][-1]["col"].mean(2).cpu())
        else:
            res = model(x, times=batch["phase"].to(device), mask=batch["mask"].to(device), **kwargs)
        if wants_attn:
            temporal.append(res["temporal_attention"].mean(1).cpu())
        z = res["embeddings"].cpu().numpy()
        if hidden and "hidden" not in res:
            raise ValueError(f"{meta['model_class']} does not return hidden states; drop --hidden")
        h = res["hidden"].cpu().numpy() if hidden else None
        q = res["cluster_probs"].cpu().numpy() if clusters else None
        if emb is None:
            emb = np.zeros((n, z.shape[-1]), dtype="float32")
            if clusters:
                probs = np.zeros((n, q.shape[-1]), dtype="float32")
            if hidden:
                hid = np.zeros((n, *h.shape[2:]), dtype="float32")
        for b in range(z.shape[0]):
            s = next(s_iter)
            new = slice(covered - s, window)
            emb[covered : s + window] = z[b, new]
            if hidden:
                hid[covered : s + window] = h[b, new]
            if clusters:
                probs[covered : s + window] = q[b, new]
            covered = s + window

    attrs = _attrs(ckpt, meta, data or meta["data"]["source"])
    main = fdata.embeddings_dataset(emb, dataset.times, attrs=attrs, splits=_splits(meta))
    if clusters:
        main = _add_clusters(main, probs)
    files = [(main, out)]
    if hidden:
        lat, lon = (
            _coarse_coords(dataset.lat, hid.shape[-2]),
            _coarse_coords(dataset.lon, hid.shape[-1]),
        )
        files.append(
            (
                fdata.features_dataset(hid, dataset.times, lat, lon, "hidden", attrs),
                _sibling(out, "hidden"),
            )
        )
    if attention:
        files.append(
            (
                _attention_dataset(dataset, starts, window, temporal, rows, cols, attrs),
                _sibling(out, "attention"),
            )
        )
    written = fdata.save_datasets(files)
    for tag in ("hidden", "attention"):
        _remove_stale(_sibling(out, tag), written)
    return written


def _has_clusters(model: nn.Module, ckpt: Any) -> bool:
    """Whether the model assigns clusters (``n_clusters``) with trained centroids; warns
    when it has a clustering head whose centroids were never initialised."""
    head = getattr(model, "clustering", None)
    if head is None:
        return False
    if not bool(head.initialized):
        warnings.warn(
            f"{ckpt}: the model has n_clusters={head.n_clusters} but its centroids were never "
            "initialised (saved during the loss.clustering warm-up); cluster and "
            "cluster_probability are not written. Use the run's last.ckpt or train longer.",
            stacklevel=3,
        )
        return False
    return True


def _add_clusters(ds: xr.Dataset, probs: np.ndarray) -> xr.Dataset:
    """``cluster(time)`` (argmax of q) and ``cluster_probability(time, cluster_id)`` (q).

    The cluster axis is ``cluster_id`` (0 … k−1), not ``cluster``: a dimension's name is
    its coordinate variable's, and ``cluster`` is the label variable."""
    k = probs.shape[-1]
    labels = probs.argmax(-1).astype("int32")
    return ds.assign(
        cluster=(
            "time",
            labels,
            {
                "long_name": "most probable cluster of each time step (argmax of "
                "cluster_probability)",
                "units": "1",
                "flag_values": np.arange(k, dtype="int32"),
                "flag_meanings": " ".join(f"cluster_{j}" for j in range(k)),
            },
        ),
        cluster_probability=(
            ("time", "cluster_id"),
            probs,
            {
                "long_name": "soft assignment of each time step to the learned clusters "
                "(Student-t kernel, DEC); sums to 1 over cluster_id",
                "units": "1",
            },
        ),
    ).assign_coords(
        cluster_id=("cluster_id", np.arange(k, dtype="int32"), {"long_name": "cluster index"})
    )


def _splits(meta: dict) -> dict:
    """The checkpoint's configured train/val/test years (inclusive ranges or None)."""
    data = meta["config"]["data"]
    return {name: data.get(f"{name}_years") for name in ("train", "val", "test")}


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")


def _remove_stale(path: Path, written: list[Path]) -> None:
    """Remove ``path`` if an earlier faconvlstm run wrote it and this run did not."""
    if path in written or not path.exists():
        return
    try:
        with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else None) as ds:
            ours = ds.attrs.get("source") == "faconvlstm" or "checkpoint" in ds.attrs
    except (OSError, ValueError):
        return  # not a file we can read: not ours to delete
    if ours:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _coarse_coords(coord: np.ndarray, size: int) -> np.ndarray:
    """Block means of a coordinate pooled to ``size`` points (ceil-mode average pooling)."""
    if size == coord.size:
        return coord
    factor = int(np.ceil(coord.size / size))
    return np.array([coord[i * factor : (i + 1) * factor].mean() for i in range(size)])


def _attention_dataset(dataset, starts, window, temporal, rows, cols, attrs) -> xr.Dataset:
    """Attention maps with coordinates on every axis: ``time`` (each window's last step),
    ``query_step``/``key_step`` (0 … T−1 within the window), ``lat``/``lon`` and their
    ``*_query``/``*_key`` copies (degrees, CF ``standard_name`` latitude / longitude; block
    means on a pooled grid)."""
    end_times = dataset.times[np.asarray(starts) + window - 1]
    variables: dict[str, Any] = {}
    coords: dict[str, Any] = {
        "time": (
            "time",
            end_times,
            {"standard_name": "time", "long_name": "last step of the window"},
        )
    }
    if temporal:
        variables["temporal_attention"] = (
            ("time", "query_step", "key_step"),
            torch.cat(temporal).numpy(),
            {
                "long_name": "temporal self-attention weights of the head (mean over heads)",
                "units": "1",
            },
        )
        steps = np.arange(window)
        coords["query_step"] = ("query_step", steps, {"long_name": "query step in the window"})
        coords["key_step"] = ("key_step", steps, {"long_name": "key step in the window"})
    if rows:
        row, col = torch.cat(rows).numpy(), torch.cat(cols).numpy()
        variables["row_attention"] = (
            ("time", "lat", "lon_query", "lon_key"),
            row,
            {
                "long_name": "axial attention along longitude at the window's last step",
                "units": "1",
            },
        )
        variables["col_attention"] = (
            ("time", "lon", "lat_query", "lat_key"),
            col,
            {"long_name": "axial attention along latitude at the window's last step", "units": "1"},
        )
        lat = _coarse_coords(dataset.lat, row.shape[1])
        lon = _coarse_coords(dataset.lon, col.shape[1])
        for dim, values, axis in (("lat", lat, "latitude"), ("lon", lon, "longitude")):
            units = "degrees_north" if dim == "lat" else "degrees_east"
            for suffix in ("", "_query", "_key"):  # all three hold latitudes (longitudes)
                coords[dim + suffix] = (
                    dim + suffix,
                    values,
                    {
                        "standard_name": axis,
                        "long_name": f"{axis}{suffix.replace('_', ' of the ')}",
                        "units": units,
                    },
                )
    if not variables:
        raise ValueError("this model exposes no attention maps")
    return xr.Dataset(
        variables, coords=coords, attrs=fdata.global_attrs(attrs, "faconvlstm attention maps")
    )


@torch.no_grad()
def predict(
    ckpt: str | Path,
    out: str | Path,
    data: str | None = None,
    years: list[int] | None = None,
    batch_size: int = 8,
    stride: int | None = None,
    device: str = "cpu",
) -> Path:
    """Write reconstructions (autoencoder) or forecasts (forecaster) in physical units.

    * autoencoder: one variable per field, e.g. ``t2m(time, lat, lon)``, for every time
      step, NaN where the input is missing (:func:`faconvlstm.data.fields_dataset`);
    * forecaster: the WeatherBench2 layout, one variable per field, e.g.
      ``t2m(time, prediction_timedelta, latitude, longitude)``: ``time`` the last input
      step (initialisation), ``prediction_timedelta`` the lead (timedelta), with
      ``valid_time(time, prediction_timedelta)``; issued every ``stride`` steps (default
      N); NaN at cells missing throughout the input window (e.g. land for an ocean
      variable).

    Each variable carries the training data's units (and a CF ``standard_name`` where
    known); channels ``"var@level"`` share a variable with a ``level`` dimension (hPa).

    Raises:
        ValueError: unusable ``device`` or ``out`` (checked before any work), bad data.
        OSError: the file could not be written (the message names it; nothing is left).
        Terminated: SIGTERM arrived (nothing new is left on disk).
    """
    check_device(device)
    out = check_output(out)
    with _sigterm_raises():
        return _predict(ckpt, out, data, years, batch_size, stride, device)


def _predict(ckpt, out, data, years, batch_size, stride, device) -> Path:
    model, meta = load_model(ckpt, device)
    da = open_data(meta, data, years)
    stats = stats_from_meta(meta["stats"])
    window, horizon = int(meta["data"]["window"]), int(meta["data"]["horizon"])
    attrs = _attrs(ckpt, meta, data or meta["data"]["source"])
    channels = [str(c) for c in meta["stats"]["channels"]]
    units = meta["data"].get("units")
    if meta["task"] == "autoencoder":
        dataset = fdata.WindowDataset(da, window=window, stride=1, stats=stats)
        starts = _tiling_starts(dataset.times.size, window)
        recon = np.zeros((dataset.times.size, *dataset.shape), dtype="float32")
        covered, s_iter = 0, iter(starts)
        for batch in _loader(dataset, starts, batch_size):
            r = (
                model(
                    batch["x"].to(device),
                    times=batch["phase"].to(device),
                    mask=batch["mask"].to(device),
                )["recon"]
                .cpu()
                .numpy()
            )
            r = np.where(batch["mask"].numpy(), r, np.float32("nan"))  # missing stays missing
            for b in range(r.shape[0]):
                s = next(s_iter)
                recon[covered : s + window] = r[b, covered - s :]
                covered = s + window
        fields = stats.denormalize_array(recon, dataset.times)
        return fdata.write_fields(
            fields,
            dataset.times,
            channels,
            dataset.lat,
            dataset.lon,
            out,
            name="reconstruction",
            attrs=attrs,
            units=units,
        )

    dataset = fdata.WindowDataset(
        da, window=window, horizon=horizon, stride=stride or horizon, stats=stats
    )
    targets = target_channels(model)
    sub = _select_channels(stats, targets)
    forecasts, init, valid = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=fdata.collate_windows):
        f = (
            model(
                batch["x"].to(device),
                times=batch["phase"].to(device),
                future_times=batch["y_phase"].to(device),
                mask=batch["mask"].to(device),
            )["forecast"]
            .cpu()
            .numpy()
        )
        never = ~batch["mask"][:, :, targets].any(1, keepdim=True).numpy()  # e.g. land
        f = np.where(never, np.float32("nan"), f)
        for b in range(f.shape[0]):
            forecasts.append(sub.denormalize_array(f[b], batch["y_time"][b]))
            init.append(batch["time"][b][-1])
            valid.append(batch["y_time"][b])
    units = None if units is None else [units[i] for i in targets]
    return _write_forecast(
        np.stack(forecasts),
        init,
        np.stack(valid),
        [channels[i] for i in targets],
        units,
        dataset,
        out,
        attrs,
    )


def _select_channels(stats: Any, index: list[int]) -> Any:
    """Statistics of the channels ``index`` (a forecaster may predict a subset)."""
    if index == list(range(len(stats.channels))):
        return stats
    d = stats.to_dict()
    d.update(
        channels=[d["channels"][i] for i in index],
        mean=[d["mean"][i] for i in index],
        std=[d["std"][i] for i in index],
    )
    clim = stats.climatology_values
    return type(stats).from_dict(d, None if clim is None else clim.isel(channel=index))


def _write_forecast(fc, init, valid, channels, units, dataset, out, attrs) -> Path:
    """WeatherBench2-layout forecast file (:func:`faconvlstm.data.forecast_dataset`)."""
    return fdata.save_dataset(
        fdata.forecast_dataset(fc, init, valid, channels, dataset.lat, dataset.lon, attrs, units),
        out,
    )
