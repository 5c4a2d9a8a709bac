"""The comparison report: ``report.md`` with PNG figures, from the results and arrays.

:func:`write_report` reads what :func:`faconvlstm.protocol.runs.compare` produced (the
typed :class:`~faconvlstm.protocol.results.Results` and each run's ``arrays.npz``, found
through the :class:`~faconvlstm.protocol.plan.Layout`) and draws, with matplotlib's Agg
backend:

- ``cost_scaling.png``  forward+backward time and peak memory of one layer vs grid size;
- ``training_curves.png``  training/validation loss per epoch, every seed;
- ``embeddings.png``  embeddings (first two principal components) coloured by the
  ground-truth regime, one panel per model;
- ``cluster_timeline.png``  k-means regimes (matched to the truth's labels) against the
  ground-truth regimes over the evaluation period;
- ``attention_map.png``  FA axial attention of a query on the tropical lobe, with both
  teleconnection lobes marked;
- ``robustness.png``  cosine similarity to the clean embeddings under noise and masking.

The tables list every headline metric of the registry
(:data:`faconvlstm.protocol.results.METRICS`) as mean ± sd over seeds, and the report
states, metric by metric, where FA does not beat ConvLSTM or the EOF baseline. With
``variants`` in the compare config, one ablation table puts each variant beside its full
base model on the same headline metrics. A saved
``results.json`` can be drawn again::

    write_report(Results.from_dict(json.loads(path.read_text())), Layout(path.parent))
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from scipy.optimize import linear_sum_assignment

from faconvlstm.files import atomic_output, atomic_write_text
from faconvlstm.protocol.plan import Layout
from faconvlstm.protocol.results import (
    METRICS,
    DataInfo,
    ModelResult,
    ModelSummary,
    Results,
    metrics_of,
)
from faconvlstm.protocol.subjects import SUBJECTS, subject_label

__all__ = ["FIGURES", "write_report"]

#: The figures, by file stem, with their captions in the report (in drawing order).
FIGURES: dict[str, str] = {
    "cost_scaling": "Layer cost over grid sizes and sequence lengths",
    "training_curves": "Training curves",
    "embeddings": "Embeddings coloured by ground-truth regime",
    "cluster_timeline": "Cluster timeline against the truth",
    "attention_map": "FA attention on the grid",
    "robustness": "Robustness curves",
    "cluster_composites": "Spatial correlation and RMSE between regime composites",
}

_COST_KEYS = ("params", "flops", "fwd_ms", "fwd_bwd_ms", "peak_mem_mb", "saved_mb", "model_params")


def _colour(model: str) -> str | None:
    kind = SUBJECTS.get(model)
    return kind.colour if kind else None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.{digits}f}"


def _mean_sd(summary: ModelSummary, key: str) -> str:
    value = summary.get(key)
    if value is None:
        return "–"
    sd = summary.get(f"{key}_sd")
    return _fmt(value) if sd is None else f"{_fmt(value)} ± {_fmt(sd)}"


# ---------------------------------------------------------------------------------- figures
def _save(fig, path, *, tight: bool = True, **savefig: Any) -> None:
    """Lay out (``tight_layout``), write atomically as PNG (110 dpi) and free a figure."""
    if tight:
        fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, **savefig)
    plt.close(fig)


def _figure_cost(results: Results, layout: Layout, path) -> bool:
    scaling = results.scaling
    if not scaling:
        return False
    keys = ["fwd_bwd_ms"]
    if any(r.peak_mem_mb is not None for r in scaling):
        keys.append("peak_mem_mb")
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    axes = axes[0]
    labels = {"fwd_bwd_ms": "forward+backward time (ms)", "peak_mem_mb": "peak memory growth (MiB)"}
    for model in dict.fromkeys(r.model for r in scaling):
        rows = [r for r in scaling if r.model == model]
        for steps in sorted({r.steps for r in rows}):
            pts = sorted(
                ((r.height * r.width, r) for r in rows if r.steps == steps), key=lambda p: p[0]
            )
            x = [p for p, _ in pts]
            style = "-" if steps == max(r.steps for r in rows) else "--"
            for ax, key in zip(axes, keys):
                y = [getattr(r, key) for _, r in pts]
                if all(v is not None for v in y):
                    ax.plot(
                        x,
                        y,
                        style,
                        marker="o",
                        color=_colour(model),
                        label=f"{subject_label(model)}, T={steps}",
                    )
    for ax, key in zip(axes, keys):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("grid points H×W")
        ax.set_ylabel(labels[key])
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Cost of one recurrent layer")
    _save(fig, path)
    return True


def loss_curves_figure(runs: Iterable[tuple[str, int, Any]], path: Path, title: str) -> bool:
    """Train (dashed) and validation (solid) loss per epoch of every ``(model, seed index,
    LossHistory or None)``, log scale, one colour per model; ``False`` (nothing written)
    when no run has a finite loss."""
    drawn = False
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for model, i, hist in runs:
        if hist is None or not hist.epoch:
            continue
        epochs = np.asarray(hist.epoch) + 1
        for key, style in (("train_loss", "--"), ("val_loss", "-")):
            values = np.array([np.nan if v is None else v for v in getattr(hist, key)], float)
            if np.isfinite(values).any():
                drawn = True
                ax.plot(
                    epochs,
                    values,
                    style,
                    marker=".",
                    color=_colour(model),
                    alpha=0.8,
                    label=f"{subject_label(model)} {key.split('_')[0]}" if i == 0 else None,
                )
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("epoch")
    ax.set_ylabel("latitude-weighted MSE (normalised units)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(fig, path)
    return True


def _figure_training(results: Results, layout: Layout, path) -> bool:
    runs = [
        (model, i, seed.training.history)
        for model, r in results.models.items()
        for i, seed in enumerate(r.seeds)
    ]
    return loss_curves_figure(runs, path, "Training curves (every seed)")


def _pca2(z: np.ndarray) -> np.ndarray:
    z = z - z.mean(0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return z @ vt[:2].T


def _first_seed_arrays(results: Results, layout: Layout, *keys: str) -> list[tuple[str, dict]]:
    """``(model, arrays)`` of each model's first seed whose saved arrays hold all ``keys``."""
    found = []
    for model, r in results.models.items():
        if not r.seeds:
            continue
        arr = layout.run(model, r.seeds[0].seed).load_arrays()
        if arr is not None and all(k in arr for k in keys):
            found.append((model, arr))
    return found


def _figure_embeddings(results: Results, layout: Layout, path) -> bool:
    panels = _first_seed_arrays(results, layout, "embeddings", "truth_regime")
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (model, arr) in zip(axes[0], panels):
        p = _pca2(arr["embeddings"])
        sc = ax.scatter(p[:, 0], p[:, 1], c=arr["truth_regime"], cmap="tab10", s=6, vmin=0, vmax=9)
        ax.set_title(f"{subject_label(model)} (seed {results.models[model].seeds[0].seed})")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    handles, _ = sc.legend_elements()
    n_reg = len(np.unique(panels[0][1]["truth_regime"]))
    axes[0][-1].legend(
        handles[:n_reg], [f"regime {k}" for k in range(n_reg)], fontsize=7, loc="best"
    )
    fig.suptitle("Embeddings of the evaluation period, coloured by ground-truth regime")
    _save(fig, path)
    return True


def _match_labels(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Relabel clusters to the truth labels they overlap most (Hungarian), for display."""
    ks, ts = np.unique(labels), np.unique(truth)
    overlap = np.array([[np.sum((labels == k) & (truth == t)) for t in ts] for k in ks])
    rows, cols = linear_sum_assignment(-overlap)
    mapping = {ks[r]: ts[c] for r, c in zip(rows, cols)}
    spare = iter(range(int(max(ts.max(), ks.max())) + 1, 10**6))
    return np.array([mapping[k] if k in mapping else next(spare) for k in labels])


def _figure_timeline(results: Results, layout: Layout, path) -> bool:
    rows = _first_seed_arrays(results, layout, "truth_regime", "labels")
    if not rows:
        return False
    truth = rows[0][1]["truth_regime"]
    t = np.arange(truth.size)
    fig, axes = plt.subplots(
        len(rows) + 1, 1, figsize=(10, 0.9 * (len(rows) + 1) + 0.8), sharex=True
    )
    axes[0].imshow(
        truth[None],
        aspect="auto",
        cmap="tab10",
        vmin=0,
        vmax=9,
        interpolation="nearest",
        extent=(t[0], t[-1] + 1, 0, 1),
    )
    axes[0].set_ylabel("truth", rotation=0, ha="right", va="center")
    for ax, (model, arr) in zip(axes[1:], rows):
        matched = _match_labels(arr["labels"], truth)
        ax.imshow(
            matched[None],
            aspect="auto",
            cmap="tab10",
            vmin=0,
            vmax=9,
            interpolation="nearest",
            extent=(t[0], t[-1] + 1, 0, 1),
        )
        ax.set_ylabel(subject_label(model), rotation=0, ha="right", va="center")
    for ax in axes:
        ax.set_yticks([])
    axes[-1].set_xlabel("time step of the evaluation period")
    fig.suptitle("k-means regimes (labels matched to the truth) against the ground truth")
    _save(fig, path)
    return True


def _figure_attention(results: Results, layout: Layout, path) -> bool:
    r = results.models.get("fa")
    if not r or not r.seeds:
        return False
    arr = layout.run("fa", r.seeds[0].seed).load_arrays()
    if arr is None or "attention_map" not in arr:
        return False
    maps = arr["attention_map"]  # (hops, H', W')
    lat, lon = arr["attention_lat"], arr["attention_lon"]
    hops = arr["attention_hops"]
    fig, axes = plt.subplots(1, len(maps), figsize=(5 * len(maps), 3.2), squeeze=False)
    for ax, m, hop in zip(axes[0], maps, hops):
        # log colours: two hops spread a little mass everywhere, which a linear scale hides
        cmap = plt.get_cmap("magma").with_extremes(bad="black")
        norm = LogNorm(vmin=m.max() * 3e-3, vmax=m.max())
        im = ax.pcolormesh(
            lon, lat, np.ma.masked_less_equal(m, 0), shading="nearest", cmap=cmap, norm=norm
        )
        fig.colorbar(im, ax=ax, label="attention weight (log)")
        q, remote = arr["attention_query"], arr["attention_remote"]
        ax.plot(q[1], q[0], "c*", ms=14, label="query (tropical lobe)")
        ax.plot(remote[1], remote[0], "wo", mfc="none", ms=16, mew=2, label="remote lobe")
        ax.set_title(f"FA axial attention, {int(hop)} hop{'s' if hop > 1 else ''}")
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    _save(fig, path)
    return True


def _figure_robustness(results: Results, layout: Layout, path) -> bool:
    kinds = ("noise", "random_mask", "block_mask")
    xlabels = (
        "noise σ (channel std)",
        "hidden fraction (random points)",
        "hidden fraction (blocks)",
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    drawn = False
    for ax, kind, xlabel in zip(axes, kinds, xlabels):
        for model, r in results.models.items():
            curves = [
                s.evaluation.robustness[kind]
                for s in r.seeds
                if s.evaluation is not None and kind in s.evaluation.robustness
            ]
            if not curves:
                continue
            level = np.asarray(curves[0].level)
            cos = np.asarray([c.cosine for c in curves])
            mean, sd = cos.mean(0), cos.std(0)
            ax.plot(level, mean, marker="o", color=_colour(model), label=subject_label(model))
            ax.fill_between(level, mean - sd, mean + sd, color=_colour(model), alpha=0.2)
            drawn = True
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("cosine to clean embeddings")
    axes[0].legend(fontsize=8)
    fig.suptitle("Robustness (mean ± sd over seeds)")
    _save(fig, path)
    return drawn


def _figure_composites(results: Results, layout: Layout, path) -> bool:
    """Spatial correlation matrix of the k-means composites (first seed), one per model."""
    panels = [
        (m, r.seeds[0])
        for m, r in results.models.items()
        if r.seeds and r.seeds[0].get("cluster_spatial_correlation")
    ]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (model, seed) in zip(axes[0], panels):
        regimes = seed.evaluation.regimes
        r = np.asarray(regimes.cluster_spatial_correlation)
        im = ax.imshow(r, vmin=-1, vmax=1, cmap="RdBu_r")
        for (i, j), v in np.ndenumerate(r):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(
            f"{subject_label(model)}: intra/inter RMSE {_fmt(regimes.cluster_rmse_ratio, 2)}",
            fontsize=9,
        )
        ax.set_xlabel("cluster")
        ax.set_ylabel("cluster")
    fig.colorbar(im, ax=list(axes[0]), label="pattern correlation of composites", shrink=0.8)
    fig.suptitle(
        f"Distinctness of the regimes found (seed {panels[0][1].seed}): off-diagonal ≈ 0 "
        "or < 0 is better",
        fontsize=10,
    )
    _save(fig, path, tight=False, bbox_inches="tight")  # the shared colour bar: no tight_layout
    return True


_DRAW = {
    "cost_scaling": _figure_cost,
    "training_curves": _figure_training,
    "embeddings": _figure_embeddings,
    "cluster_timeline": _figure_timeline,
    "attention_map": _figure_attention,
    "robustness": _figure_robustness,
    "cluster_composites": _figure_composites,
}


# ---------------------------------------------------------------------------------- tables
def _cost_table(results: Results) -> list[str]:
    lines = [
        "| model | parameters | GFLOPs (fwd+bwd) | forward (ms) | forward+backward (ms) "
        "| peak memory (MiB) | saved for backward (MiB) | trained model parameters |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, r in results.models.items():
        c = r.cost
        lines.append(
            f"| {subject_label(model)} | {_fmt(c.params)} | {_fmt(_giga(c.flops))} "
            f"| {_fmt(c.fwd_ms)} | {_fmt(c.fwd_bwd_ms)} "
            f"| {_fmt(c.peak_mem_mb)} | {_fmt(c.saved_mb)} "
            f"| {_fmt(c.model_params)} |"
        )
    fa, cl = results.models.get("fa"), results.models.get("convlstm")
    if fa and cl:
        ratio = []
        for key in _COST_KEYS:
            a, b = getattr(cl.cost, key), getattr(fa.cost, key)
            ratio.append(f"{a / b:.3g}×" if a and b else "–")
        lines.append("| ConvLSTM / FA | " + " | ".join(ratio) + " |")
    return lines


def _attention_lines(fa: ModelResult) -> list[str]:
    """The teleconnection verdict of FA's axial attention, per number of hops."""
    summary = fa.summary
    hops_seen = sorted({a.hops for s in fa.seeds if s.internals for a in s.internals.attention})
    parts = []
    for hops in hops_seen:
        suffix = "" if hops == 1 else f"_{hops}hop"
        mass = summary.get(f"attention_remote_mass{suffix}")
        if mass is None:
            continue
        name = f"{hops} hop{'s' if hops > 1 else ''}"
        if summary.get(f"attention_chance{suffix}") == 0:
            parts.append(
                f"{name}: mass {_fmt(mass)}, unreachable by construction (the lobe is "
                "on neither the query's row nor its column)"
            )
        else:
            parts.append(
                f"{name}: mass {_mean_sd(summary, f'attention_remote_mass{suffix}')} = "
                f"{_mean_sd(summary, f'attention_remote_ratio{suffix}')} × chance"
            )
    return [
        "FA axial attention from a query on the tropical lobe onto the remote lobe (chance = "
        "the mass a uniform axial attention puts there; > 1 means the lobe is sought out): "
        + "; ".join(parts)
        + "."
    ]


def _internals_table(results: Results) -> list[str]:
    """Dilation-branch energy shares and mean SE weight of FA (first seed) by season."""
    fa = results.models.get("fa")
    seeds = fa.seeds if fa else []
    stats = seeds[0].internals.se_branch if seeds and seeds[0].internals else None
    if not stats:
        return []
    n_branch = len(stats["branch_share"][0])
    lines = [
        "",
        f"FA internals (first layer, seed {seeds[0].seed}): share of the depthwise "
        "branches' energy per branch (in the order of `dilation_rates`, by default d = 1, 2, 4) "
        "and the mean squeeze-and-excitation weight, by season.",
        "",
        "| group | " + " | ".join(f"branch {b}" for b in range(n_branch)) + " | mean SE weight |",
        "|---|" + "---|" * (n_branch + 1),
    ]
    for group, share, se in zip(stats["group"], stats["branch_share"], stats["se_weight"]):
        lines.append(
            f"| {group} | "
            + " | ".join(_fmt(v) for v in share)
            + f" | {_fmt(float(np.mean(se)))} |"
        )
    return lines


def _attribution_table(results: Results) -> list[str]:
    """Per-variable occlusion attribution, mean over seeds, one column per model."""
    models = [m for m, r in results.models.items() if r.summary.attribution]
    if not models:
        return []
    variables = list(results.models[models[0]].summary.attribution)
    lines = [
        "",
        "Per-variable attribution by occlusion (relative change of the embeddings when the "
        "variable is replaced by its mean; mean over seeds):",
        "",
        "| variable | " + " | ".join(subject_label(m) for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for v in variables:
        row = [_fmt(results.models[m].summary.attribution.get(v)) for m in models]
        lines.append(f"| {v} | " + " | ".join(row) + " |")
    return lines


def _giga(flops: float | None) -> float | None:
    return None if flops is None else flops / 1e9


def checkpoint_phrase(checkpoint: str) -> str:
    """How the report names the measured checkpoint (``evaluation.checkpoint``)."""
    if checkpoint == "best":
        return (
            "`best.ckpt` (the epoch of lowest validation loss: early stopping on the "
            "validation years)"
        )
    return "`last.ckpt` (the end of the budget)"


def _best_epochs(results: Results) -> str:
    """``" (epochs: FA 5, 7, 3; ...)"``: the epoch each run's measured weights are from,
    when they were chosen by validation loss (empty for ``last``)."""
    if results.budget.checkpoint != "best":
        return ""
    parts = []
    for name, model in {**results.models, **results.variants}.items():
        epochs = [s.training.checkpoint_epoch for s in model.seeds]
        if any(e is not None for e in epochs):
            parts.append(f"{subject_label(name)} {', '.join(_fmt(e) for e in epochs)}")
    return f" (epoch of each seed: {'; '.join(parts)})" if parts else ""


def _cost_sentence(cfg: dict) -> str:
    if not cfg:
        return "No layer cost was measured."
    h, w = max(cfg["grids"], key=lambda g: g[0] * g[1])
    return (
        f"One recurrent layer (filters {cfg['filters']}, kernel 3, {cfg['in_channels']} input "
        f"channels, batch {cfg['batch']}, T = {max(cfg['steps'])}, {h}×{w} grid) on "
        f"{cfg['device']} ({cfg.get('threads', '?')} PyTorch threads); times are the minimum "
        f"of {cfg['repeats']} interleaved runs, peak "
        "memory is the growth of a fresh process over one training step "
        "(see `faconvlstm.evaluation.efficiency`). Grid sizes and sequence lengths: see the "
        "scaling figure."
    )


def _comparisons(results: Results) -> list[tuple[str, float, str, float, str]]:
    """``(metric label, FA value, baseline, baseline value, "better" | "worse" | "ties")``
    for every headline metric FA and a baseline both have."""
    fa = results.models.get("fa")
    if fa is None:
        return []
    out = []
    for m in metrics_of(results.models):
        a = fa.summary.get(m.key) if m.headline else None
        if a is None:
            continue
        for other in ("convlstm", "eof"):
            b = results.models[other].summary.get(m.key) if other in results.models else None
            if b is None:
                continue
            better = a > b if m.higher_is_better else a < b
            word = "ties" if a == b else "better" if better else "worse"
            out.append((m.label, a, other, b, word))
    return out


def _verdicts(results: Results) -> list[str]:
    """One line per headline metric on which FA does not beat a baseline."""
    return [
        f"- **{label}**: FA ({a:.4g}) {'ties with' if word == 'ties' else 'is worse than'} "
        f"{subject_label(other)} ({b:.4g})."
        for label, a, other, b, word in _comparisons(results)
        if word != "better"
    ]


def _wins(results: Results) -> list[str]:
    """One line per headline metric on which FA beats a baseline (mean over seeds; the
    per-seed spread is in the headline table: a win inside it is not settled)."""
    return [
        f"- **{label}**: FA ({a:.4g}) is better than {subject_label(other)} ({b:.4g})."
        for label, a, other, b, word in _comparisons(results)
        if word == "better"
    ]


def _ablation_table(results: Results) -> list[str]:
    """One table: each variant's base subject (full model) and every variant of it; columns
    are the headline metrics of the registry, mean ± sd over seeds."""
    if not results.variants:
        return []
    bases = {v["name"]: v.get("base", "fa") for v in results.config.get("variants", [])}
    headline = [m for m in METRICS if m.headline]
    lines = [
        "## Ablations (mean ± sd over seeds)",
        "",
        "Each variant is trained and measured like its base model: same seeds, data, "
        "held-out windows and budget, unless its configuration says otherwise (see "
        "`variants` in `compare.yaml`). Columns are the headline metrics (↑ higher is "
        "better, ↓ lower is better; labels in the headline table).",
        "",
        "| variant | "
        + " | ".join(f"{m.key} {'↑' if m.higher_is_better else '↓'}" for m in headline)
        + " |",
        "|---|" + "---|" * len(headline),
    ]
    rows: list[tuple[str, ModelResult]] = []
    for base in dict.fromkeys(bases.get(name, "fa") for name in results.variants):
        if base in results.models:
            rows.append((f"{subject_label(base)} (full)", results.models[base]))
        rows += [
            (f"{name} ({subject_label(base)})", r)
            for name, r in results.variants.items()
            if bases.get(name, "fa") == base
        ]
    for label, r in rows:
        lines.append(
            f"| {label} | " + " | ".join(_mean_sd(r.summary, m.key) for m in headline) + " |"
        )
    return [*lines, ""]


def _probe_sentence(results: Results) -> list[str]:
    """How the linear probes were scored (blocked cross-validation by year)."""
    years = {s.get("probe_years") for r in results.models.values() for s in r.seeds}
    years.discard(None)
    if not years:
        return []
    return [
        "",
        "Linear probes are scored by blocked cross-validation by calendar year over the "
        f"training and evaluation windows ({'/'.join(str(y) for y in sorted(years))} years, "
        "one fold each: every year is predicted by a ridge probe fitted on the other years; "
        "R² pooled over folds). One held-out year would sample a fraction of one cycle of "
        "a 2–7-year oscillator, and its R² swings with the data seed. The encoder is frozen "
        "and never saw the probe targets; only the readout is fitted. The quadratic probes "
        "are the same readouts on the embeddings and all their pairwise products, scored the "
        "same way: they read what an embedding holds in the size of a feature, not only its "
        "sign.",
    ]


def _regime_probe_lines(results: Results) -> list[str]:
    """The single-day baseline of the regime probes (linear and quadratic), and which
    subjects beat it.

    The single-day references are the field baseline (a linear classifier on each day's
    whole field), chance (1/k) and every subject that is itself a projection of one day
    (EOF: not learned), scored by either probe: their scores show how far the probe's own
    noise reaches (on a record where one day holds no regime information, the baseline
    fell below chance and EOF rose above it). A learned subject beats them when its mean
    balanced accuracy minus one seed sd exceeds the highest of them. Both verdicts share
    one bar: the quadratic probe contains the linear one, so a single-day subject's score
    by either probe is what one day can give (on the persistence record EOF scored 0.563
    linear and 0.531 quadratic: the gap is the probes' own noise).
    """
    base = results.data.probe_acc_regime_field
    if base is None:
        return []
    k = results.data.n_regimes or results.data.n_clusters
    keys = ("probe_acc_regime", "probe_acc_regime_quad")
    single_day = [n for n in results.models if n in SUBJECTS and not SUBJECTS[n].learned]
    # one bar for both probes: what any single-day projection reached by either probe
    bar = max(
        [base, 1.0 / k]
        + [
            results.models[n].summary.get(key)
            for n in single_day
            for key in keys
            if results.models[n].summary.get(key) is not None
        ]
    )
    verdicts = []
    for key in keys:
        scores = {  # name -> (mean, seed sd)
            name: (r.summary.get(key), r.summary.get(f"{key}_sd") or 0.0)
            for name, r in results.models.items()
            if r.summary.get(key) is not None
        }
        if not scores:
            continue
        above = [
            subject_label(n)
            for n, (mean, sd) in scores.items()
            if n not in single_day and mean - sd > bar
        ]
        refs = (
            f" and {', '.join(subject_label(n) for n in single_day if n in scores)}"
            if any(n in scores for n in single_day)
            else ""
        )
        verdicts.append(
            f"{', '.join(above)} beat{'s' if len(above) == 1 else ''} it, chance{refs} by "
            "more than one seed sd"
            if above
            else f"no learned embedding beats it, chance{refs} by more than one seed sd"
        )
    quadratic = (
        f" With the quadratic probe (the same classifier on the embeddings and their pairwise "
        f"products, which reads the size of a feature as well as its sign), {verdicts[1]}."
        if len(verdicts) > 1
        else ""
    )
    return [
        "",
        "Regime persistence: a linear classifier of the true regime on each day's whole "
        f"field (the best single-day linear projection) has balanced accuracy {base:.3f} "
        f"(chance {1 / k:.3f}; blocked CV by year, like the embeddings' regime probe); "
        f"{verdicts[0]}.{quadratic} An embedding above all of them carries information about "
        "the regime that no single day holds: its persistence, integrated by the recurrence "
        "and the temporal attention.",
    ]


def _regimes_phrase(info: DataInfo) -> str:
    """Where the regimes scored by ARI / NMI come from."""
    if info.labels:
        return f"{info.n_regimes} regimes labelled in {info.labels}"
    return f"{info.n_regimes or 'no'} ground-truth regimes"


def write_report(results: Results, layout: Layout) -> Path:
    """Write ``report.md`` and ``figures/*.png`` of ``layout``; returns the report's path.

    A forecast comparison (``results.forecast``) gets the forecast report of
    :mod:`faconvlstm.protocol.forecast_report` instead."""
    if results.forecast is not None:
        from faconvlstm.protocol.forecast_report import write_forecast_report  # imports this

        return write_forecast_report(results, layout)
    layout.figures.mkdir(parents=True, exist_ok=True)
    drawn = {name: _DRAW[name](results, layout, layout.figure(name)) for name in FIGURES}
    models = list(results.models)
    info, budget = results.data, results.budget
    lines = [
        "# FAConvLSTM vs ConvLSTM vs EOF — comparison report",
        "",
        f"Created {results.created} by faconvlstm {results.faconvlstm_version} (results "
        f"schema {results.schema_version}).",
        "",
        f"Data: {info.source}, channels {', '.join(info.channels)}, "
        f"grid {info.height}×{info.width}, {info.n_train_steps} training "
        f"and {info.n_eval_steps} evaluation time steps "
        f"({' to '.join(info.eval_period)}); {_regimes_phrase(info)}, k-means with "
        f"k = {info.n_clusters}. Seeds {results.seeds}; the same budget for "
        f"every learned model: {budget.max_epochs} epochs, batch "
        f"{budget.batch_size}, windows of {budget.window} steps, learning rate "
        f"{budget.lr}; measured at each run's {checkpoint_phrase(budget.checkpoint)}"
        f"{_best_epochs(results)}.",
        "",
        "## Headline metrics (mean ± sd over seeds)",
        "",
        "| metric | " + " | ".join(subject_label(m) for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for m in metrics_of(results.models):
        if m.headline and any(r.summary.get(m.key) is not None for r in results.models.values()):
            lines.append(
                f"| {m.label} | "
                + " | ".join(_mean_sd(results.models[name].summary, m.key) for name in models)
                + " |"
            )
    if info.recon_rmse_climatology is not None:
        lines += [
            "",
            "Climatology baseline: the training period's day-of-year climatology, taken as "
            "the reconstruction of every held-out window, has reconstruction RMSE "
            f"{info.recon_rmse_climatology:.3f} (normalised units) on the same windows; a "
            "model above it has learned nothing about the anomalies.",
        ]
    lines += _regime_probe_lines(results)
    fa = results.models.get("fa")
    if fa is not None and fa.summary.get("attention_remote_mass") is not None:
        lines += ["", *_attention_lines(fa)]
        gammas = [abs(g) for s in fa.seeds if s.internals for g in s.internals.attention_gamma]
        if gammas:
            lines[-1] += (
                f" The learned attention scales |γ| (0 at initialisation) are "
                f"{min(gammas):.3g}–{max(gammas):.3g} over layers and seeds."
            )
    lines += _internals_table(results)
    lines += _attribution_table(results)
    for title, items, empty in (
        ("Where FA wins", _wins(results), "FA beats neither baseline on any headline metric."),
        (
            "Where FA does not win",
            _verdicts(results),
            "FA is at least as good as both baselines on every headline metric.",
        ),
    ):
        lines += ["", f"## {title}", "", *(items or [empty])]
    lines += [
        "",
        "Means over seeds; where the seed spreads in the headline table overlap, the "
        "ordering is not settled by these seeds.",
        "",
        "EOF embeddings are deterministic (one SVD of the training period), so their seed "
        "stability is 1 by construction; only their k-means initialisation varies by seed. "
        "The learned embeddings also carry the fixed seasonal encoding of the time stamps, "
        "which no perturbation of the input touches: part of their robustness to noise and "
        "masking is insensitivity to the input (the EOFs see the input only). Cosines are "
        "centred on the mean clean embedding, so a shared offset does not count as "
        "similarity.",
        *_probe_sentence(results),
        "",
        "## Cost",
        "",
        _cost_sentence(results.cost_config),
        "",
        *_cost_table(results),
        "",
    ]
    lines += _ablation_table(results)
    lines += ["## Figures", ""]
    for name, ok in drawn.items():
        if ok:
            caption = FIGURES[name]
            lines += [f"### {caption}", "", f"![{caption}]({layout.figure_link(name)})", ""]
    lines += ["## Per seed", ""]
    columns = sorted((m for m in METRICS if m.per_seed is not None), key=lambda m: m.per_seed)
    per_seed = [m.key for m in columns]
    lines += [
        "| model | seed | " + " | ".join(per_seed) + " |",
        "|---|---|" + "---|" * len(per_seed),
    ]
    for model, r in [*results.models.items(), *results.variants.items()]:
        for s in r.seeds:
            flat = s.to_dict()
            lines.append(
                f"| {subject_label(model)} | {s.seed} | "
                + " | ".join(_fmt(flat.get(k)) for k in per_seed)
                + " |"
            )
    if results.command:
        lines += ["", "## Reproduce", "", "```", results.command, "```"]
    return atomic_write_text("\n".join(lines) + "\n", layout.report)
