"""``faconvlstm fit``: train a model from a validated run configuration.

Output directory layout (``out``)::

    out/.fit.lock                    held while a fit runs (one run per directory)
    out/.fit.lock.json               who holds it: pid, host, start time
    out/config.yaml                  the validated configuration, defaults filled in
    out/checkpoints/last.ckpt        every checkpoint.every_n_train_steps, epoch end, SIGTERM
    out/checkpoints/best.ckpt        lowest checkpoint.monitor (val/loss) so far
    out/csv/version_K/metrics.csv    CSV log (a new version per (re)start)
    out/tensorboard/version_K/       TensorBoard log

Each checkpoint carries the model configuration, the normalisation statistics, the data
description and the full run configuration (see :mod:`faconvlstm.training.checkpoint`), so
``faconvlstm embed`` / ``predict`` need nothing else.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from faconvlstm import models
from faconvlstm.files import atomic_write_json, atomic_write_text
from faconvlstm.runtime import thread_setting
from faconvlstm.training.callbacks import LastCheckpoint, RNGStateCallback, RunSummary
from faconvlstm.training.checkpoint import (
    AtomicCheckpointIO,
    load_checkpoint,
    make_metadata,
)
from faconvlstm.training.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    load_config,
    resolve_spec,
    validate_model_kwargs,
)
from faconvlstm.training.datamodule import GriddedDataModule
from faconvlstm.training.modules import TASKS

__all__ = ["build_model", "fit", "model_class"]

#: Model class (in :mod:`faconvlstm.models`) trained by each task.
MODEL_CLASSES = {"autoencoder": "SequenceAutoencoder", "forecast": "Forecaster"}

#: Sections that must agree between a checkpoint and the config it is resumed with.
_RESUME_FIXED = ("seed", "task", "data", "model", "optim", "loss")


def model_class(task: str) -> type[nn.Module]:
    """The model class trained by ``task``."""
    return getattr(models, MODEL_CLASSES[task])


def build_model(
    cfg: RunConfig, n_channels: int, periodic_lon: bool, grid: Sequence[int] | None = None
) -> nn.Module:
    """Instantiate the task's model from the ``model`` section and the data's shape.

    ``in_channels`` comes from the data, and so does ``grid`` ``(H, W)`` for
    ``model.eof_path``; ``horizon`` from ``data.horizon`` (forecast);
    ``forecast_leads`` and a causal head from ``loss.forecast`` (autoencoder pretext);
    ``boundary`` defaults to ``"periodic_lon"`` when the data's longitudes wrap around.
    """
    cls = model_class(cfg.task)
    kwargs = dict(cfg.model)
    accepted = inspect.signature(cls.__init__).parameters
    if periodic_lon and "boundary" in accepted and "boundary" not in kwargs:
        kwargs["boundary"] = "periodic_lon"
    if cfg.task == "forecast":
        kwargs["horizon"] = cfg.data.horizon
    if cfg.loss.forecast.enabled:  # the forecasting pretext: a causal head, L leads
        kwargs["forecast_leads"] = cfg.loss.forecast.leads
        kwargs["head_kwargs"] = {"causal": True, **(kwargs.get("head_kwargs") or {})}
    if kwargs.get("eof_path"):
        if grid is None:
            raise ConfigError("model.eof_path needs the data's grid: pass grid=(H, W)")
        kwargs["grid"] = tuple(int(g) for g in grid)
    return cls(in_channels=n_channels, **kwargs)


def train_fields(data: GriddedDataModule) -> np.ndarray:
    """The normalised training period ``(T, C, H, W)`` (NaN where missing) of a set-up data
    module: what ``compare``'s EOF baseline is fitted on (``model.eof_path`` loads it whole)."""
    da = data.train_set.da
    raw = np.asarray(da.values, dtype="float32")
    return data.stats.normalize_array(raw, da["time"].values)


def _check_resume(cfg: RunConfig, ckpt: dict, path: Path) -> None:
    saved = ckpt["faconvlstm"].get("config", {})
    try:  # a key added since the checkpoint was written takes its default, as it did then
        saved = {**saved, **config_from_dict(copy.deepcopy(saved)).to_dict()}
    except ConfigError:  # a key removed since: compare what is there
        pass
    now = cfg.to_dict()
    changed = [k for k in _RESUME_FIXED if k in saved and saved[k] != now[k]]
    if changed:
        raise ConfigError(
            f"cannot resume from {path}: config section(s) {', '.join(changed)} differ from "
            "the checkpoint's; only trainer/checkpoint settings may change on --resume"
        )


def fit(
    config: RunConfig | str | Path | dict,
    out: str | Path | None = None,
    resume: bool = False,
    overrides: Sequence[str] | None = None,
    callbacks: Sequence[L.Callback] = (),
    summary: bool = True,
) -> Path:
    """Train as configured; returns the path of ``last.ckpt``.

    Args:
        config: a :class:`RunConfig`, a YAML path / shipped config name, or a dict.
        out: output directory (default: ``config.out``, else ``runs/<task>``).
        resume: continue from ``out/checkpoints/last.ckpt`` (error if absent).
        overrides: dotted ``key=value`` overrides applied to a file/dict config.
        callbacks: extra Lightning callbacks (tests, custom logging).
        summary: print the run's start and closing lines (``compare`` turns them off: its
            own bar is the progress display there).

    Raises:
        ConfigError: invalid configuration, or a fresh run into a directory that already
            holds checkpoints (nothing is overwritten without ``resume``).
        CheckpointError: ``resume`` with a missing, corrupt or foreign ``last.ckpt``.
        NonFiniteLossError: the loss became NaN/inf (names step and batch).
    """
    cfg = config if isinstance(config, RunConfig) else load_config(config, list(overrides or []))
    validate_model_kwargs(model_class(cfg.task), cfg.model)
    out = Path(out or cfg.out or f"runs/{cfg.task}")
    with run_lock(out), thread_setting(cfg.threads):
        return _fit_locked(cfg, out, resume, list(callbacks), summary)


def _fit_locked(
    cfg: RunConfig, out: Path, resume: bool, callbacks: list[L.Callback], summary: bool = True
) -> Path:
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if resume:
        ckpt = load_checkpoint(last)  # refuses a corrupt/foreign file before any work
        _check_resume(cfg, ckpt, last)
        ckpt_path = str(last)
    elif last.exists():
        raise ConfigError(
            f"{ckpt_dir} already holds checkpoints; pass --resume to continue that run or "
            "choose another --out (nothing was overwritten)"
        )

    trainer = make_trainer(cfg, out, callbacks, summary)  # bad trainer settings fail here
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = GriddedDataModule(cfg.data, seed=cfg.seed)
    data.setup("fit")
    desc = data.describe()
    grid = (len(desc["lat"]), len(desc["lon"]))
    if resume:  # the model the weights were trained as: a default changed since (e.g.
        # Forecaster.lead_attention) must not change the network in the middle of a run
        model = model_class(cfg.task).from_config(ckpt["faconvlstm"]["model_config"])
    else:
        model = build_model(cfg, len(desc["channels"]), desc["periodic_lon"], grid)
    if getattr(model, "eof_path", False) and not resume:  # resumed: from the checkpoint
        model.init_eof_path(train_fields(data), desc["lat"])  # type: ignore[operator]
    metadata = make_metadata(cfg.task, model, data.stats, desc, cfg.to_dict())
    task = TASKS[cfg.task](
        model, lat=desc["lat"], optim=cfg.optim, loss=cfg.loss, metadata=metadata
    )
    _write_config(cfg, out / "config.yaml")
    for logger in trainer.loggers:
        logger.log_hyperparams(cfg.to_dict())
    trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    return last


LOCK_NAME = ".fit.lock"


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.fit.lock`` while a run writes into ``out``: a second ``fit`` into the same
    directory is refused instead of overwriting the first one's checkpoints.

    The lock is an OS file lock (``filelock``; ``flock`` on Linux/macOS): released on return,
    on any exception (SIGTERM included) and, by the kernel, when the process dies, so a
    killed run never leaves a lock that blocks forever. Only global rank 0 takes it: the
    other DDP ranks are the same run (Lightning re-runs the script once per rank).

    Raises:
        ConfigError: another process holds the lock (the message names it and the holder),
            or ``out`` cannot be created or written (a read-only file system, no
            permission, a regular file in the way).
    """
    from filelock import FileLock, Timeout

    if rank_zero_only.rank != 0:
        yield
        return
    path = out / LOCK_NAME
    owner = path.with_name(LOCK_NAME + ".json")
    lock = FileLock(path, timeout=0)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"another `faconvlstm fit` is writing into {out} ({_holder(owner)}; lock file "
            f"{path}); wait for it to finish, or choose another --out"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"cannot write the output directory {out}: {err.strerror or err}"
            f"{f' ({err.filename})' if err.filename else ''}; choose a writable --out"
        ) from None
    try:
        atomic_write_json(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            owner,
        )
        yield
    finally:
        lock.release()


def _holder(owner: Path) -> str:
    import json

    try:
        info = json.loads(owner.read_text())
        return f"pid {info['pid']} on {info['host']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


@rank_zero_only
def _write_config(cfg: RunConfig, path: Path) -> None:
    atomic_write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), path)


def make_trainer(
    cfg: RunConfig, out: Path, extra_callbacks: list[Any], summary: bool = True
) -> L.Trainer:
    """A Lightning Trainer with the checkpoint, logging and resumption callbacks, every
    ``trainer`` setting of the run configuration, and the callbacks / loggers / profiler
    given there as ``class_path`` specs (see :class:`~faconvlstm.training.config.TrainerConfig`).

    Raises:
        ConfigError: a spec whose ``init_args`` the class refuses.
    """
    ckpt_dir = out / "checkpoints"
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=cfg.checkpoint.monitor,
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    last = LastCheckpoint(ckpt_dir / "last.ckpt", cfg.checkpoint.every_n_train_steps)
    settings = dataclasses.asdict(cfg.trainer)
    settings.update(settings.pop("extra"))
    configured = [
        _instantiate(spec, "callbacks", f"trainer.callbacks[{i}]")
        for i, spec in enumerate(settings.pop("callbacks", None) or [])
    ]
    logger = settings.pop("logger", True)
    loggers = (
        []
        if logger is False
        else [CSVLogger(out, name="csv"), TensorBoardLogger(out, name="tensorboard")]
    )
    if isinstance(logger, (list, dict)):
        specs = logger if isinstance(logger, list) else [logger]
        loggers += [
            _instantiate(spec, "logger", f"trainer.logger[{i}]") for i, spec in enumerate(specs)
        ]
    if isinstance(settings.get("profiler"), dict):
        settings["profiler"] = _instantiate(settings["profiler"], "profiler", "trainer.profiler")
    settings.setdefault("enable_model_summary", False)
    own = [RNGStateCallback(), best, last, *([RunSummary(out)] if summary else [])]
    return L.Trainer(
        default_root_dir=out,
        logger=loggers or False,
        callbacks=[*own, *configured, *extra_callbacks],
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # GriddedDataModule shards by rank itself
        **settings,
    )


def _instantiate(spec: dict, kind: str, key: str) -> Any:
    cls, init_args = resolve_spec(spec, kind, key)
    try:
        return cls(**init_args)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"config key '{key}': {spec['class_path']} refused its init_args: {err}"
        ) from None
