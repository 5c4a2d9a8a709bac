"""The plan of a comparison: one run spec per (subject, seed), and the output layout.

:class:`Layout` is the one owner of the output folder's layout; everything that reads or
writes a comparison's files (the runs, the cost cache, ``results.json``, the report and
its figures) asks it for the path::

    out/results.json                       all numbers, written last
    out/report.md, out/figures/<name>.png  the report (:mod:`faconvlstm.protocol.report`)
    out/compare.yaml                       the configuration as run
    out/cost.json                          layer cost table + scaling sweep (a cache)
    out/runs/<model>/seed<s>/train/        `faconvlstm fit` output (checkpoints, logs;
                                           last.ckpt or best.ckpt is measured, as
                                           evaluation.checkpoint says)
    out/runs/<model>/seed<s>/train/done.json   training finished (and its wall time)
    out/runs/<model>/seed<s>/epochs/       per-epoch losses and probe embeddings (drift)
    out/runs/<model>/seed<s>/arrays.npz    evaluation embeddings, labels, attention map
    out/runs/<model>/seed<s>/result.json   that run's metrics; its presence = run finished
    out/forecasts/<model>_seed<s>.nc       forecast comparison: the run's test-period
                                           forecast, WeatherBench2 layout

A variant (``variants`` in the compare config) is one more learned subject: its runs are
``out/runs/<variant name>/seed<s>/``. :func:`make_plan` derives each learned run's `fit`
configuration once (:func:`faconvlstm.protocol.config.run_config`); the EOF baseline has
none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from faconvlstm.protocol.config import REFERENCE_SUBJECT, CompareConfig, run_config
from faconvlstm.protocol.subjects import SUBJECTS
from faconvlstm.training.config import RunConfig

__all__ = ["Layout", "Plan", "RunPaths", "RunSpec", "make_plan"]


@dataclass(frozen=True)
class RunPaths:
    """The files of one (subject, seed) run under ``out/runs/<model>/seed<s>/``."""

    root: Path

    @property
    def train(self) -> Path:
        """The `faconvlstm fit` output folder of a learned subject."""
        return self.root / "train"

    @property
    def last_checkpoint(self) -> Path:
        """The weights at the end of the budget (also what an interrupted run resumes)."""
        return self.train / "checkpoints" / "last.ckpt"

    @property
    def best_checkpoint(self) -> Path:
        """The weights of the epoch with the lowest ``train.checkpoint.monitor``."""
        return self.train / "checkpoints" / "best.ckpt"

    @property
    def train_done(self) -> Path:
        """Written when training finished: ``{"train_seconds": float}``."""
        return self.train / "done.json"

    @property
    def epochs(self) -> Path:
        """Per-epoch history (:mod:`faconvlstm.training.history`)."""
        return self.root / "epochs"

    @property
    def arrays(self) -> Path:
        """``arrays.npz``: embeddings, k-means labels, truth, attention maps."""
        return self.root / "arrays.npz"

    @property
    def result(self) -> Path:
        """``result.json``: the run's metrics, written last (its presence = finished)."""
        return self.root / "result.json"

    def load_arrays(self) -> dict[str, np.ndarray] | None:
        """The saved arrays (``None`` if the run has not saved them)."""
        if not self.arrays.exists():
            return None
        with np.load(self.arrays, allow_pickle=False) as f:
            return dict(f)


@dataclass(frozen=True)
class Layout:
    """The output folder of a comparison (see the module doc)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "compare.yaml"

    @property
    def cost(self) -> Path:
        return self.root / "cost.json"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """``figures/<name>.png``."""
        return self.figures / f"{name}.png"

    def figure_link(self, name: str) -> str:
        """The figure's path relative to ``report.md`` (for Markdown links)."""
        return self.figure(name).relative_to(self.root).as_posix()

    def run(self, model: str, seed: int) -> RunPaths:
        return RunPaths(self.root / "runs" / model / f"seed{seed}")

    @property
    def forecasts(self) -> Path:
        """The forecast files of a forecast comparison (``train.task: forecast``)."""
        return self.root / "forecasts"

    def forecast(self, model: str, seed: int) -> Path:
        """``forecasts/<model>_seed<s>.nc``: the test-period forecast of one learned run, in
        the WeatherBench2 layout (written by :func:`faconvlstm.training.infer.predict`)."""
        return self.forecasts / f"{model}_seed{seed}.nc"


@dataclass(frozen=True)
class RunSpec:
    """One run of the comparison: a subject, a seed, its `fit` configuration (``None`` for
    a subject fitted in closed form), its files, and which of its checkpoints is measured
    (``evaluation.checkpoint``: ``last`` or ``best``)."""

    model: str
    seed: int
    run: RunConfig | None
    paths: RunPaths
    measured: Literal["last", "best"] = "last"

    @property
    def learned(self) -> bool:
        return self.run is not None

    @property
    def checkpoint(self) -> Path:
        """The checkpoint whose weights are measured (``paths.last_checkpoint`` or
        ``paths.best_checkpoint``)."""
        if self.measured == "best":
            return self.paths.best_checkpoint
        return self.paths.last_checkpoint


@dataclass(frozen=True)
class Plan:
    """Every run of a comparison, in order (subjects then variants outer, seeds inner), and
    the layout.

    ``reference`` is the run configuration standing for the shared data, budget and
    ``embed_dim`` (that of ``REFERENCE_SUBJECT`` at the first seed).
    """

    cfg: CompareConfig
    layout: Layout
    specs: tuple[RunSpec, ...]
    reference: RunConfig

    def runs_of(self, model: str) -> list[RunSpec]:
        return [s for s in self.specs if s.model == model]

    @property
    def learned_models(self) -> list[str]:
        return [m for m in self.cfg.models if SUBJECTS[m].learned]

    @property
    def variants(self) -> list[str]:
        """The variants' names, in config order."""
        return [v.name for v in self.cfg.variants]


def make_plan(cfg: CompareConfig, out: str | Path) -> Plan:
    """The plan of ``cfg`` written under ``out`` (nothing is created on disk)."""
    layout = Layout(Path(out))
    measured = cfg.evaluation.checkpoint
    specs = []
    for model in cfg.models:
        for seed in cfg.seeds:
            run = run_config(cfg, model, seed) if SUBJECTS[model].learned else None
            specs.append(RunSpec(model, seed, run, layout.run(model, seed), measured))
    for var in cfg.variants:
        for seed in cfg.seeds:
            run = run_config(cfg, var.name, seed)
            specs.append(RunSpec(var.name, seed, run, layout.run(var.name, seed), measured))
    reference = next(
        (s.run for s in specs if (s.model, s.seed) == (REFERENCE_SUBJECT, cfg.seeds[0])), None
    )
    if reference is None:  # FA not compared: its configuration still stands for the data
        reference = run_config(cfg, REFERENCE_SUBJECT, cfg.seeds[0])
    return Plan(cfg, layout, tuple(specs), reference)
