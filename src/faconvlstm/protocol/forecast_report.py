"""The report of a forecast comparison: RMSE/ACC tables per lead and a WB2-style scorecard.

:func:`write_forecast_report` (called by :func:`faconvlstm.protocol.report.write_report`
when ``results.forecast`` is set) writes ``report.md`` and, with matplotlib's Agg backend:

- ``forecast_scorecard.png``  rows = fields, columns = leads, one panel per learned model:
  colour and number = % change of the latitude-weighted RMSE vs persistence,
  ``100 · (RMSE_model − RMSE_persistence) / RMSE_persistence`` (mean RMSE over seeds;
  negative, blue, = better than persistence), as the WeatherBench2 scorecards show it;
- ``forecast_training_curves.png``  training/validation loss per epoch, every seed;
- ``cost_scaling.png``  the layer cost sweep, when it ran (as in the autoencoder report).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from faconvlstm.files import atomic_write_text
from faconvlstm.protocol.forecast import BASELINES, ForecastResults
from faconvlstm.protocol.plan import Layout
from faconvlstm.protocol.report import (
    _cost_sentence,
    _figure_cost,
    _fmt,
    _save,
    checkpoint_phrase,
    loss_curves_figure,
)
from faconvlstm.protocol.results import Results
from faconvlstm.protocol.subjects import subject_label

__all__ = ["FORECAST_FIGURES", "lead_label", "rmse_change_vs_persistence", "write_forecast_report"]

#: The figures of a forecast report, by file stem, with their one-line captions.
FORECAST_FIGURES: dict[str, str] = {
    "forecast_scorecard": (
        "Scorecard: % change of latitude-weighted RMSE vs persistence per field (rows) and "
        "lead (columns), mean over seeds; negative (blue) = lower RMSE than persistence"
    ),
    "forecast_training_curves": "Training curves of the forecasters (every seed)",
    "cost_scaling": "Layer cost over grid sizes and sequence lengths",
}


def lead_label(hours: float) -> str:
    """``+1 d`` for whole days, else ``+6 h``."""
    return f"+{hours / 24:g} d" if hours % 24 == 0 else f"+{hours:g} h"


def rmse_change_vs_persistence(fc: ForecastResults, model: str) -> np.ndarray:
    """``100 · (RMSE_model − RMSE_persistence) / RMSE_persistence`` per (channel, lead): the
    scorecard's numbers (``(C, L)``; mean RMSE over seeds; NaN where persistence is exact)."""
    pers = fc.baselines["persistence"].array("rmse")
    with np.errstate(invalid="ignore", divide="ignore"):
        change = 100.0 * (fc.models[model].mean("rmse") - pers) / pers
    return np.where(pers > 0, change, np.nan).T


# ---------------------------------------------------------------------------------- figures
def _figure_scorecard(fc: ForecastResults, path: Path) -> bool:
    models = [m for m, r in fc.models.items() if r.seeds]
    if not models:
        return False
    changes = {m: rmse_change_vs_persistence(fc, m) for m in models}
    finite = np.concatenate([c[np.isfinite(c)] for c in changes.values()])
    vmax = max(float(np.abs(finite).max()) if finite.size else 1.0, 1.0)
    leads = [lead_label(h) for h in fc.lead_hours]
    n_c, n_l = len(fc.channels), len(leads)
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(2.0 + 0.8 * n_l * len(models), 1.4 + 0.45 * n_c),
        squeeze=False,
        sharey=True,
        constrained_layout=True,
    )
    for ax, model in zip(axes[0], models):
        c = changes[model]
        im = ax.imshow(c, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        for (i, j), v in np.ndenumerate(c):
            text = "–" if not np.isfinite(v) else f"{v:+.1f}%" if abs(v) < 10 else f"{v:+.0f}%"
            dark = np.isfinite(v) and abs(v) > 0.6 * vmax  # white on the saturated colours
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="w" if dark else "k")
        ax.set_xticks(range(n_l), leads)
        ax.set_yticks(range(n_c), fc.channels)
        ax.set_title(subject_label(model), fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), label="RMSE change vs persistence (%)", shrink=0.9)
    fig.suptitle("Latitude-weighted RMSE vs persistence (negative, blue: better)", fontsize=10)
    _save(fig, path, tight=False, bbox_inches="tight")  # the shared colour bar
    return True


def _figure_training(fc: ForecastResults, path: Path) -> bool:
    runs = [
        (model, i, seed.history) for model, r in fc.models.items() for i, seed in enumerate(r.seeds)
    ]
    return loss_curves_figure(runs, path, "Forecaster training curves (every seed)")


# ---------------------------------------------------------------------------------- tables
def _cell(mean: float, sd: float | None = None) -> str:
    if not np.isfinite(mean):
        return "–"
    return _fmt(float(mean)) if sd is None else f"{_fmt(float(mean))} ± {_fmt(float(sd))}"


def _field_table(fc: ForecastResults, c: int) -> list[str]:
    """One field: rows = learned models (mean ± sd over seeds) and baselines; columns =
    RMSE then ACC at every lead."""
    leads = [lead_label(h) for h in fc.lead_hours]
    unit = fc.units[c]
    lines = [
        f"### {fc.channels[c]}" + (f" ({unit})" if unit else ""),
        "",
        "| forecast | "
        + " | ".join(f"RMSE {lead}" for lead in leads)
        + " | "
        + " | ".join(f"ACC {lead}" for lead in leads)
        + " |",
        "|---|" + "---|" * (2 * len(leads)),
    ]
    for model, r in fc.models.items():
        if not r.seeds:
            continue
        cells = [
            _cell(m, s)
            for key in ("rmse", "acc")
            for m, s in zip(r.mean(key)[:, c], r.sd(key)[:, c])
        ]
        lines.append(f"| {subject_label(model)} | " + " | ".join(cells) + " |")
    for name, label in BASELINES.items():
        scores = fc.baselines[name]
        cells = [_cell(v) for key in ("rmse", "acc") for v in scores.array(key)[:, c]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _verdicts(fc: ForecastResults) -> list[str]:
    """Per field, the leads at which FA's mean RMSE is not lower than ConvLSTM's or than
    persistence's."""
    fa = fc.models.get("fa")
    if fa is None or not fa.seeds:
        return []
    leads = [lead_label(h) for h in fc.lead_hours]
    others = {"persistence": fc.baselines["persistence"].array("rmse")}
    cl = fc.models.get("convlstm")
    if cl is not None and cl.seeds:
        others = {"ConvLSTM": cl.mean("rmse"), **others}
    a = fa.mean("rmse")
    lines = []
    for c, channel in enumerate(fc.channels):
        for label, b in others.items():
            lost = [lead for n, lead in enumerate(leads) if not a[n, c] < b[n, c]]
            if lost:
                lines.append(
                    f"- **{channel}**: FA's RMSE is not lower than {label}'s at "
                    f"{', '.join(lost)} (of {len(leads)} leads)."
                )
    return lines


def _training_table(fc: ForecastResults) -> list[str]:
    lines = [
        "| model | trained parameters | training time per seed (s) |",
        "|---|---|---|",
    ]
    for model, r in fc.models.items():
        if not r.seeds:
            continue
        summary = r.summary()
        secs = _cell(summary["train_seconds"] or np.nan, summary["train_seconds_sd"])
        lines.append(f"| {subject_label(model)} | {_fmt(r.seeds[0].model_params)} | {secs} |")
    return lines


def _per_seed_table(fc: ForecastResults) -> list[str]:
    last = lead_label(fc.lead_hours[-1])
    lines = [
        "| model | seed | "
        + " | ".join(f"{ch} RMSE {last}" for ch in fc.channels)
        + " | forecast file |",
        "|---|---|" + "---|" * (len(fc.channels) + 1),
    ]
    for model, r in fc.models.items():
        for s in r.seeds:
            rmse = s.scores.array("rmse")[-1]
            lines.append(
                f"| {subject_label(model)} | {s.seed} | "
                + " | ".join(_cell(v) for v in rmse)
                + f" | [{s.forecast_file}]({s.forecast_file}) |"
            )
    return lines


def write_forecast_report(results: Results, layout: Layout) -> Path:
    """Write the forecast comparison's ``report.md`` and figures; returns the report's path."""
    fc = results.forecast
    if fc is None:
        raise ValueError("these results have no forecast section: use write_report")
    layout.figures.mkdir(parents=True, exist_ok=True)
    drawn = {
        "forecast_scorecard": _figure_scorecard(fc, layout.figure("forecast_scorecard")),
        "forecast_training_curves": _figure_training(fc, layout.figure("forecast_training_curves")),
        "cost_scaling": _figure_cost(results, layout, layout.figure("cost_scaling")),
    }
    info, budget = results.data, results.budget
    leads = [lead_label(h) for h in fc.lead_hours]
    models = [subject_label(m) for m in fc.models]
    lines = [
        f"# {' vs '.join(models)} forecasters — comparison report",
        "",
        f"Created {results.created} by faconvlstm {results.faconvlstm_version} (results "
        f"schema {results.schema_version}, forecast section version {fc.version}).",
        "",
        f"Data: {info.source}, channels {', '.join(info.channels)}, grid "
        f"{info.height}×{info.width}, {info.n_train_steps} training time steps. Seeds "
        f"{results.seeds}; the same budget for every learned model: {budget.max_epochs} "
        f"epochs, batch {budget.batch_size}, windows of {budget.window} steps, learning "
        f"rate {budget.lr}; only the recurrent cell differs.",
        "",
        "## Forecasts on the test years (WeatherBench2 metrics)",
        "",
        f"{fc.n_init} initialisations from {fc.init_period[0]} to {fc.init_period[1]} "
        f"(the last input step of windows {fc.stride} steps apart, all inside the test "
        f"period {' to '.join(info.eval_period)}), leads {', '.join(leads)}. Every forecast "
        "is scored in physical units on the same initialisations: latitude-weighted RMSE "
        "(square root of the mean over initialisations of the area-weighted mean squared "
        "error; in the field's units) and ACC (uncentred anomaly correlation per "
        "initialisation, averaged; anomalies of forecast and truth from the same "
        f"climatology at the valid time). The climatology is the {fc.climatology}. "
        "Baselines: **persistence** holds the last input frame for every lead; "
        "**climatology** forecasts that climatology (its ACC is undefined: its anomaly is "
        "zero). Learned models: mean ± sd over seeds, from each run's "
        f"{checkpoint_phrase(budget.checkpoint)} (never selected on the test years).",
        "",
    ]
    for c in range(len(fc.channels)):
        lines += _field_table(fc, c)
    if drawn["forecast_scorecard"]:
        caption = FORECAST_FIGURES["forecast_scorecard"]
        lines += [
            "### Scorecard",
            "",
            f"![{caption}]({layout.figure_link('forecast_scorecard')})",
            "",
            f"*{caption}.*",
            "",
        ]
    verdicts = _verdicts(fc)
    lines += ["## Where FA does not win", ""]
    lines += verdicts or [
        "FA's RMSE is lower than ConvLSTM's and persistence's for every field and lead."
    ]
    lines += ["", "## Training", "", *_training_table(fc), ""]
    if results.scaling:
        lines += ["## Cost", "", _cost_sentence(results.cost_config), ""]
    figures = [(n, ok) for n, ok in drawn.items() if n != "forecast_scorecard" and ok]
    if figures:
        lines += ["## Figures", ""]
        for name, _ in figures:
            caption = FORECAST_FIGURES[name]
            lines += [f"### {caption}", "", f"![{caption}]({layout.figure_link(name)})", ""]
    lines += ["## Per seed", "", *_per_seed_table(fc)]
    if results.command:
        lines += ["", "## Reproduce", "", "```", results.command, "```"]
    return atomic_write_text("\n".join(lines) + "\n", layout.report)
