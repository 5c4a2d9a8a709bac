"""Running a comparison: train or fit every (subject, seed) of the plan, measure, report.

Every subject is trained (learned) or fitted (EOF) once per seed on the same data with the
same budget, then measured on the same held-out windows. Training is
:func:`faconvlstm.training.fit.fit`; a trained model is read back with
:func:`measured_model` from its ``last.ckpt``, or its ``best.ckpt`` (lowest validation
loss) with ``evaluation.checkpoint: best``.

Resuming: rerunning the same command into the same folder skips every finished run (its
``result.json`` is written atomically, after everything else of that run), continues an
interrupted training from its ``last.ckpt``, and reuses the cached layer cost sweep. A
finished run measured at another checkpoint than ``evaluation.checkpoint`` now names is
measured again without training again. The
file layout is :class:`faconvlstm.protocol.plan.Layout`.

With ``train.task: forecast`` the learned subjects are trained as forecasters and scored
per lead against persistence and climatology instead
(:mod:`faconvlstm.protocol.forecast_runs`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from faconvlstm import __version__
from faconvlstm.evaluation.stability import embedding_drift
from faconvlstm.files import atomic_savez, atomic_write_json, atomic_write_text
from faconvlstm.protocol.config import CompareConfig, load_compare_config
from faconvlstm.protocol.heldout import EvalData, n_clusters, prepare_data
from faconvlstm.protocol.measure import (
    evaluate,
    fa_internals,
    layer_cost_sweep,
    model_step_ms,
    reconstruction,
    regime_field_baseline,
)
from faconvlstm.protocol.plan import Plan, RunSpec, make_plan
from faconvlstm.protocol.report import write_report
from faconvlstm.protocol.results import (
    Budget,
    DataInfo,
    LossHistory,
    ModelCost,
    ModelResult,
    Results,
    ScalingRow,
    SeedResult,
    TrainingRecord,
    summarise,
)
from faconvlstm.protocol.subjects import EOFSubject, LearnedSubject
from faconvlstm.runtime import thread_setting
from faconvlstm.training.checkpoint import CheckpointError, load_checkpoint
from faconvlstm.training.fit import fit
from faconvlstm.training.history import EpochRecorder, read_history
from faconvlstm.training.infer import model_from_checkpoint

__all__ = ["compare", "measured_model", "run_one"]


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
        config: a :class:`~faconvlstm.protocol.config.CompareConfig`, a YAML path / shipped
            name, or a dict.
        out: output directory (default: ``config.out``). Rerunning into the same directory
            resumes: finished (subject, seed) runs are reused.
        overrides: dotted ``key=value`` overrides for a file/dict config.
        command: the command line, recorded in the report for reproduction.
        progress: show the compare progress bar (one line per comparison; per-run
            Lightning bars stay off unless ``train.trainer.enable_progress_bar`` is set).
    """
    if isinstance(config, CompareConfig):
        cfg = copy.deepcopy(config)
    else:
        cfg = load_compare_config(config, overrides)
    # one bar: the outer compare bar; nested per-run training bars would break its line
    cfg.train.setdefault("trainer", {}).setdefault("enable_progress_bar", False)
    plan = make_plan(cfg, out or cfg.out)
    plan.layout.root.mkdir(parents=True, exist_ok=True)
    with thread_setting(cfg.threads):
        return _compare(plan, command, progress)


def _compare(plan: Plan, command: str | None, progress: bool) -> Path:
    cfg, layout = plan.cfg, plan.layout
    atomic_write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False), layout.config)
    if plan.reference.task == "forecast":  # forecasters, scored per lead (WeatherBench2)
        from faconvlstm.protocol.forecast_runs import compare_forecast  # imports this module

        return compare_forecast(plan, command, progress)
    ev = cfg.evaluation
    data = prepare_data(plan.reference, ev.climatology_smooth_days, ev.targets, ev.labels)
    print(_start_line(plan, data), flush=True)
    cost_config, scaling = _cost_sweep(plan)

    bar = tqdm(plan.specs, desc="compare", disable=not progress, unit="run")
    per_model: dict[str, list[SeedResult]] = {m: [] for m in [*cfg.models, *plan.variants]}
    for spec in bar:
        bar.set_postfix_str(f"{spec.model} seed {spec.seed}")
        per_model[spec.model].append(run_one(spec, plan, data))

    k = n_clusters(cfg.evaluation.n_clusters, data)
    models = {}
    for name, seeds in per_model.items():
        embeddings = [spec.paths.load_arrays()["embeddings"] for spec in plan.runs_of(name)]
        models[name] = ModelResult(
            ModelCost.of(name, scaling, seeds), seeds, summarise(seeds, embeddings, k)
        )
    variants = {name: models.pop(name) for name in plan.variants}
    return write_results(
        plan,
        command,
        DataInfo(
            source=data.source,
            channels=data.channels,
            height=int(data.lat.size),
            width=int(data.lon.size),
            n_train_steps=data.n_train_steps,
            n_eval_steps=int(data.flat_times.size),
            eval_period=[str(data.flat_times[0])[:10], str(data.flat_times[-1])[:10]],
            n_regimes=int(np.unique(data.regime).size) if data.regime is not None else None,
            n_clusters=k,
            targets=list(data.targets),
            labels=data.labels_source,
            recon_rmse_climatology=reconstruction(data.clim, data).recon_rmse,
            probe_acc_regime_field=regime_field_baseline(data),
        ),
        cost_config,
        scaling,
        models=models,
        variants=variants,
    )


def write_results(
    plan: Plan,
    command: str | None,
    data: DataInfo,
    cost_config: dict,
    scaling: list[ScalingRow],
    **sections: Any,
) -> Path:
    """Stamp the comparison's :class:`Results` (config, seeds, budget, time, version) around
    ``data`` and the measured ``sections`` (``models``, ``variants`` or ``forecast``), write
    ``results.json`` and the report; returns the results' path."""
    results = Results(
        config=dataclasses.asdict(plan.cfg),
        seeds=list(plan.cfg.seeds),
        budget=Budget.of(plan.reference, plan.cfg.evaluation.checkpoint),
        data=data,
        cost_config=cost_config,
        scaling=scaling,
        command=command,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        faconvlstm_version=__version__,
        **sections,
    )
    atomic_write_json(results.to_dict(), plan.layout.results, indent=1)
    write_report(results, plan.layout)
    return plan.layout.results


def _start_line(plan: Plan, data: EvalData) -> str:
    """What the comparison is about to do, said once before anything runs: the runs, the
    data, and the layer-cost phase that comes first."""
    cfg, grid = plan.cfg, f"{data.lat.size}x{data.lon.size}"
    cost = cfg.cost
    if not cost.enabled or not plan.learned_models:
        cost_phase = "no layer-cost timing (" + (
            "cost.enabled is false)" if not cost.enabled else "no learned model)"
        )
    elif plan.layout.cost.exists():
        cost_phase = "layer cost already measured (cost.json)"
    else:
        cost_phase = (
            f"first the layer cost: one {' and one '.join(plan.learned_models)} layer "
            f"(filters {cost.filters}) timed side by side on grids "
            + ", ".join(f"{h}x{w}" for h, w in cost.grids)
        )
    return (
        f"faconvlstm compare: {len(plan.specs)} runs ({', '.join(cfg.models)}"
        + (f" + {len(plan.variants)} variants" if plan.variants else "")
        + f"; seeds {', '.join(map(str, cfg.seeds))}) on {data.source} {grid}, "
        f"{', '.join(data.channels)} -> {plan.layout.root}; {cost_phase}"
    )


def _cost_sweep(plan: Plan) -> tuple[dict, list[ScalingRow]]:
    """The layer cost sweep, measured once per output folder (cached in ``cost.json``)."""
    path = plan.layout.cost
    if path.exists():
        cached = json.loads(path.read_text())
        return cached["config"], [ScalingRow(**r) for r in cached["scaling"]]
    config, rows = layer_cost_sweep(plan.cfg.cost, plan.learned_models)
    atomic_write_json(
        {"config": config, "scaling": [dataclasses.asdict(r) for r in rows]}, path, indent=1
    )
    return config, rows


def run_one(spec: RunSpec, plan: Plan, data: EvalData) -> SeedResult:
    """Train/fit and evaluate one (subject, seed); writes its ``result.json`` last (a
    finished run is read back instead)."""
    paths = spec.paths
    if paths.result.exists():
        done = SeedResult.from_dict(json.loads(paths.result.read_text()), str(paths.result))
        # measured at another checkpoint (evaluation.checkpoint changed): measure again,
        # from the finished training
        if not spec.learned or (done.training.checkpoint or "last") == spec.measured:
            return done
    paths.root.mkdir(parents=True, exist_ok=True)
    L.seed_everything(spec.seed, verbose=False)
    ev = plan.cfg.evaluation
    result = SeedResult(spec.seed)
    extra_arrays: dict[str, np.ndarray] = {}
    if spec.learned:
        seconds = _train(spec, data, ev.probe_windows)
        model, epoch = measured_model(spec)
        subject = LearnedSubject(model, data)
        history = read_history(paths.epochs)
        result.training = TrainingRecord(
            train_seconds=seconds,
            history=LossHistory(history.epoch, history.train_loss, history.val_loss),
            checkpoint=spec.measured,
            checkpoint_epoch=epoch,
        )
        if len(history.snapshots) >= 2:
            drift = embedding_drift(history.snapshots)
            result.training.drift = {k: v.tolist() for k, v in drift.items()}
            result.training.drift_cka_final = float(drift["cka_drift"][-1])
        result.training.model_params = sum(p.numel() for p in model.parameters())
        result.training.model_fwd_bwd_ms = model_step_ms(model, data)
        result.internals, extra_arrays = fa_internals(model, data, ev)
    elif spec.model == "eof":
        subject, result.training = _fit_eof(plan, data)
    else:
        raise NotImplementedError(
            f"subject {spec.model!r} is neither learned nor EOF: add its fitting step to "
            "faconvlstm.protocol.runs.run_one"
        )
    start = time.perf_counter()
    result.evaluation, arrays = evaluate(
        subject, data, ev, n_clusters(ev.n_clusters, data), spec.seed
    )
    result.eval_seconds = time.perf_counter() - start
    atomic_savez(paths.arrays, **arrays, **extra_arrays)
    atomic_write_json(result.to_dict(), paths.result, indent=1)
    # what the next run reads back: the same cleaned values (NaN → None) as a resume sees
    return SeedResult.from_dict(json.loads(paths.result.read_text()), str(paths.result))


def _fit_eof(plan: Plan, data: EvalData) -> tuple[EOFSubject, TrainingRecord]:
    """Fit the EOF baseline (``eof_n_eofs``, else the learned models' ``embed_dim``)."""
    start = time.perf_counter()
    n_eofs = plan.cfg.eof_n_eofs or plan.reference.model.get("embed_dim", 32)
    subject = EOFSubject.fit(data, n_eofs)
    record = TrainingRecord(
        train_seconds=time.perf_counter() - start,
        model_params=int(subject.eof.components_.size),
        explained_variance=float(subject.eof.explained_variance_ratio_.sum()),
    )
    return subject, record


def _train(spec: RunSpec, data: EvalData, probe_windows: int) -> float:
    """Train (or resume, or reuse) one learned subject; returns its training time in
    seconds (of the run that finished it)."""
    paths = spec.paths
    if not paths.train_done.exists():
        idx = data.probe(probe_windows)
        recorder = EpochRecorder(paths.epochs, data.x[idx], data.phase[idx])
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


def measured_model(spec: RunSpec) -> tuple[torch.nn.Module, int]:
    """The trained model of a learned run whose weights are measured (``spec.checkpoint``:
    ``last.ckpt`` or ``best.ckpt``, as ``evaluation.checkpoint`` says), in eval mode, and
    the epoch (1-based) those weights are from.

    Raises:
        CheckpointError: the checkpoint is missing (``best.ckpt`` of a run that never
            validated) or unreadable.
    """
    path = spec.checkpoint
    if spec.measured == "best" and not path.exists() and spec.paths.last_checkpoint.exists():
        monitor = spec.run.checkpoint.monitor if spec.run is not None else "val/loss"
        raise CheckpointError(
            f"{path} does not exist: evaluation.checkpoint is 'best', but the run never "
            f"logged '{monitor}' (no validation batches?); give the run validation years "
            "or set evaluation.checkpoint: last"
        )
    ckpt = load_checkpoint(path)
    # Lightning stores the 0-based epoch in progress when the checkpoint was written (both
    # files are written at an epoch's end: best.ckpt after its validation)
    epoch = int(ckpt["epoch"]) + 1
    return model_from_checkpoint(ckpt, path), epoch
