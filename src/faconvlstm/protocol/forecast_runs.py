"""Running a forecast comparison (``train.task: forecast``): train, forecast, score, report.

Every learned subject (and variant) is trained as a forecaster once per seed, on the same
data with the same budget (:func:`faconvlstm.training.fit.fit`; only ``model.cell``
differs), then issues its test-period forecast with
:func:`faconvlstm.training.infer.predict` from its ``last.ckpt`` (``best.ckpt`` with
``evaluation.checkpoint: best``; denormalised with the
checkpoint's statistics, WeatherBench2 layout) into ``forecasts/<model>_seed<s>.nc``. That
file is read back and scored per lead and field against the truth, next to the
persistence and climatology baselines on the same initialisations
(:mod:`faconvlstm.protocol.forecast`).

Resuming works as for autoencoders (:mod:`faconvlstm.protocol.runs`): a run whose
``result.json`` exists is read back, an interrupted training continues from its
``last.ckpt``, a finished one (``train/done.json``) is not trained again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from tqdm.auto import tqdm

from faconvlstm import data as fdata
from faconvlstm.files import atomic_write_json
from faconvlstm.protocol.forecast import (
    ForecastModel,
    ForecastResults,
    ForecastSeed,
    ForecastTargets,
    Scores,
    forecast_targets,
    read_forecast,
    score,
    training_climatology,
)
from faconvlstm.protocol.plan import Plan, RunSpec
from faconvlstm.protocol.results import DataInfo, LossHistory
from faconvlstm.protocol.runs import _cost_sweep, measured_model, write_results
from faconvlstm.training.config import RunConfig
from faconvlstm.training.datamodule import GriddedDataModule
from faconvlstm.training.fit import fit
from faconvlstm.training.history import EpochRecorder, read_history
from faconvlstm.training.infer import predict

__all__ = ["ForecastData", "compare_forecast", "prepare_forecast_data", "run_forecast_one"]


@dataclass
class ForecastData:
    """What every forecast run is scored on: the :class:`ForecastTargets` of the test
    period, and ``probe_x`` ``(P, T, C, H, W)`` / ``probe_phase`` ``(P, T)`` normalised test
    windows whose embeddings the per-epoch recorder keeps (training curves)."""

    targets: ForecastTargets
    probe_x: torch.Tensor
    probe_phase: torch.Tensor
    test_years: list[int]
    n_train_steps: int
    test_times: np.ndarray
    all_channels: list[str]
    source: str


def prepare_forecast_data(run: RunConfig, smooth_days: int, probe_windows: int) -> ForecastData:
    """Open the data of the reference run configuration as training opens it, and build
    the truth and both baselines on the test years (``run.data.test_years``)."""
    dm = GriddedDataModule(run.data, seed=run.seed)
    dm.setup("fit")
    years = list(run.data.test_years)
    test = fdata.split_by_years(dm.array, test=tuple(years))["test"]
    clim, kind = training_climatology(dm.train_set.da, dm.stats, smooth_days)
    targets = forecast_targets(
        test,
        run.data.window,
        run.data.horizon,
        clim,
        channels=run.model.get("target_channels"),
        climatology_kind=kind,
    )
    windows = fdata.WindowDataset(
        test, window=run.data.window, stride=run.data.window, stats=dm.stats
    )
    idx = np.unique(np.linspace(0, len(windows) - 1, min(probe_windows, len(windows))).round())
    probe = fdata.collate_windows([windows[int(i)] for i in idx])
    return ForecastData(
        targets=targets,
        probe_x=probe["x"],
        probe_phase=probe["phase"],
        test_years=years,
        n_train_steps=int(dm.train_set.times.size),
        test_times=np.asarray(test["time"].values),
        all_channels=list(dm.train_set.channels),
        source=run.data.source,
    )


def compare_forecast(plan: Plan, command: str | None, progress: bool) -> Path:
    """The forecast comparison of ``plan`` (called by :func:`faconvlstm.protocol.compare`
    when ``train.task`` is ``forecast``); returns the path of ``results.json``."""
    cfg, run = plan.cfg, plan.reference
    data = prepare_forecast_data(
        run, cfg.evaluation.climatology_smooth_days, cfg.evaluation.probe_windows
    )
    t = data.targets
    print(_start_line(plan, data), flush=True)
    cost_config, scaling = _cost_sweep(plan)

    names = [*plan.learned_models, *plan.variants]
    per_model: dict[str, list[ForecastSeed]] = {m: [] for m in names}
    bar = tqdm(plan.specs, desc="compare", disable=not progress, unit="run")
    for spec in bar:
        bar.set_postfix_str(f"{spec.model} seed {spec.seed}")
        per_model[spec.model].append(run_forecast_one(spec, plan, data))

    baselines = {
        "persistence": Scores.of(*score(t.persistence, t.truth, t.climatology, t.lat, t.lead)),
        "climatology": Scores.of(*score(t.climatology, t.truth, t.climatology, t.lat, t.lead)),
    }
    section = ForecastResults(
        channels=t.channels,
        units=t.units,
        lead_hours=t.lead_hours,
        stride=run.data.horizon,
        n_init=int(t.init.size),
        init_period=[str(t.init[0])[:10], str(t.init[-1])[:10]],
        climatology=t.climatology_kind,
        baselines=baselines,
        models={name: ForecastModel(seeds) for name, seeds in per_model.items()},
    )
    return write_results(
        plan,
        command,
        DataInfo(
            source=data.source,
            channels=data.all_channels,
            height=int(t.lat.size),
            width=int(t.lon.size),
            n_train_steps=data.n_train_steps,
            n_eval_steps=int(data.test_times.size),
            eval_period=[str(data.test_times[0])[:10], str(data.test_times[-1])[:10]],
            n_regimes=None,
            n_clusters=0,  # no k-means regimes in a forecast comparison
        ),
        cost_config,
        scaling,
        models={},
        forecast=section,
    )


def _start_line(plan: Plan, data: ForecastData) -> str:
    """What the forecast comparison is about to do, said once before anything runs."""
    cfg, t = plan.cfg, data.targets
    if not (cfg.cost.enabled and plan.learned_models):
        cost = "no layer cost (cost.enabled: false)"
    elif plan.layout.cost.exists():
        cost = "layer cost already measured (cost.json)"
    else:
        cost = f"first the layer cost (one {' and one '.join(plan.learned_models)} layer)"
    return (
        f"faconvlstm compare (forecast): {len(plan.specs)} runs "
        f"({', '.join([*plan.learned_models, *plan.variants])}; seeds "
        f"{', '.join(map(str, cfg.seeds))}) on {data.source} {t.lat.size}x{t.lon.size}, "
        f"{', '.join(t.channels)}; leads 1-{len(t.lead)} from {t.init.size} initialisations "
        f"in the test years {data.test_years[0]}-{data.test_years[-1]}, against persistence "
        f"and climatology -> {plan.layout.root}; {cost}"
    )


def run_forecast_one(spec: RunSpec, plan: Plan, data: ForecastData) -> ForecastSeed:
    """Train one (subject, seed) forecaster, write its forecast file and score it; writes
    its ``result.json`` last (a finished run is read back instead)."""
    paths = spec.paths
    if paths.result.exists():
        done = ForecastSeed.from_dict(json.loads(paths.result.read_text()), str(paths.result))
        if done.checkpoint == spec.measured:  # else forecast again from the other one
            return done
    paths.root.mkdir(parents=True, exist_ok=True)
    L.seed_everything(spec.seed, verbose=False)
    seconds = _train(spec, data)
    model, epoch = measured_model(spec)
    out = plan.layout.forecast(spec.model, spec.seed)
    predict(
        spec.checkpoint,
        out,
        years=data.test_years,
        batch_size=spec.run.data.batch_size,
        stride=spec.run.data.horizon,
    )
    t = data.targets
    fc, init = read_forecast(out, t.channels)
    if fc.shape != t.truth.shape or not np.array_equal(init, t.init):
        raise RuntimeError(
            f"{out}: the forecast's initialisations {fc.shape} do not match the baselines' "
            f"{t.truth.shape}: the runs of a comparison must share data.window/horizon"
        )
    rmse, acc = score(fc, t.truth, t.climatology, t.lat, t.lead)
    history = read_history(paths.epochs)
    result = ForecastSeed(
        seed=spec.seed,
        scores=Scores.of(rmse, acc),
        train_seconds=seconds,
        model_params=sum(p.numel() for p in model.parameters()),
        history=LossHistory(history.epoch, history.train_loss, history.val_loss),
        forecast_file=out.relative_to(plan.layout.root).as_posix(),
        checkpoint=spec.measured,
        checkpoint_epoch=epoch,
    )
    atomic_write_json(result.to_dict(), paths.result, indent=1)
    # what the next run reads back: the same cleaned values (NaN → None) as a resume sees
    return ForecastSeed.from_dict(json.loads(paths.result.read_text()), str(paths.result))


def _train(spec: RunSpec, data: ForecastData) -> float:
    """Train (or resume, or reuse) one forecaster; its training time in seconds (of the run
    that finished it)."""
    paths = spec.paths
    if not paths.train_done.exists():
        recorder = EpochRecorder(paths.epochs, data.probe_x, data.probe_phase)
        start = time.perf_counter()
        fit(
            spec.run,
            out=paths.train,
            resume=paths.last_checkpoint.exists(),
            callbacks=[recorder],
            summary=False,  # the outer compare bar reports progress; no nested lines
        )
        atomic_write_json({"train_seconds": time.perf_counter() - start}, paths.train_done)
    return float(json.loads(paths.train_done.read_text())["train_seconds"])
