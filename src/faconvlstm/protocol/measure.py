"""The measurements of the protocol: each function reads only the config section it needs
and returns a typed result (:mod:`faconvlstm.protocol.results`).

The metrics themselves are the pure functions of :mod:`faconvlstm.evaluation`; this module
applies them to a subject (:class:`~faconvlstm.protocol.subjects.Embedder`) on the held-out
windows (:class:`~faconvlstm.protocol.heldout.EvalData`). All field metrics are in the
normalised units of the training period; embeddings are ``(N·T, E)``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from faconvlstm.evaluation.efficiency import layer_costs, time_call
from faconvlstm.evaluation.interpretability import (
    attention_map,
    attention_mass_on_region,
    linear_probe_accuracy,
    linear_probe_r2,
    occlusion_attribution,
    quadratic_probe_accuracy,
    quadratic_probe_r2,
    region_mask,
    se_branch_statistics,
    uniform_attention_map,
)
from faconvlstm.evaluation.quality import (
    acc,
    ari_nmi_truth,
    cluster_quality,
    intra_inter_cluster_rmse,
    lat_weighted_rmse,
    spatial_correlation_matrix,
)
from faconvlstm.evaluation.robustness import robustness_curve
from faconvlstm.evaluation.stability import kmeans_labels
from faconvlstm.layers import FAConvLSTM2D
from faconvlstm.protocol.config import CostConfig, EvaluationConfig
from faconvlstm.protocol.heldout import EvalData, driver_index, year_of
from faconvlstm.protocol.results import (
    AttentionMass,
    Evaluation,
    FAInternals,
    Probes,
    Reconstruction,
    Regimes,
    RobustnessCurve,
    ScalingRow,
)
from faconvlstm.protocol.subjects import Embedder

__all__ = [
    "evaluate",
    "fa_internals",
    "layer_cost_sweep",
    "model_step_ms",
    "probe_fields",
    "probe_regime",
    "probe_years",
    "probes",
    "reconstruction",
    "regime_field_baseline",
    "regime_labels",
    "regimes",
    "robustness",
]

_PERTURBATIONS = ("noise", "random_mask", "block_mask")


def reconstruction(recon: np.ndarray, data: EvalData) -> Reconstruction:
    """Latitude-weighted RMSE and ACC (against ``data.clim``) of ``recon`` ``(N, T, C, H,
    W)`` on the valid points of the held-out windows, overall and per channel."""
    x = data.x.numpy()
    target = np.where(data.valid.numpy(), x, np.nan)
    rmse = lat_weighted_rmse(recon, target, lat=data.lat)
    skill = acc(recon, target, data.clim, lat=data.lat)
    return Reconstruction(
        recon_rmse=float(rmse.mean()),
        recon_rmse_by_channel=dict(zip(data.channels, rmse.values.tolist())),
        recon_acc=float(skill.mean()),
        recon_acc_by_channel=dict(zip(data.channels, skill.values.tolist())),
    )


def regimes(z: np.ndarray, labels: np.ndarray, data: EvalData) -> Regimes:
    """Scores of the k-means regimes ``labels`` ``(N·T,)`` of the embeddings ``z``:
    internal clustering scores, composite scores on the held-out fields, and ARI/NMI
    against the true regimes where known."""
    fields = data.x.numpy().reshape(-1, *data.x.shape[-3:])
    scores = cluster_quality(z, labels)
    composite = intra_inter_cluster_rmse(fields, labels, lat=data.lat)
    out = Regimes(
        silhouette=scores["silhouette"],
        davies_bouldin=scores["davies_bouldin"],
        calinski_harabasz=scores["calinski_harabasz"],
        cluster_rmse_ratio=composite["ratio"],
        cluster_intra_rmse=composite["intra"].tolist(),
        cluster_inter_rmse=composite["inter"].tolist(),
        cluster_spatial_correlation=spatial_correlation_matrix(
            fields, labels, lat=data.lat
        ).values.tolist(),
    )
    if data.regime is not None:
        truth = ari_nmi_truth(labels, data.regime)
        out.ari_truth, out.nmi_truth = truth["ari"], truth["nmi"]
    return out


def probes(subject: Embedder, z: np.ndarray, data: EvalData) -> Probes:
    """R² of linear probes of the generator's oscillator, of the tropical box index
    computed from the fields and of every user-given target (``evaluation.targets``),
    and the balanced accuracy of the regime probe, blocked cross-validated by calendar
    year; the oscillator, box-index and regime probes also by quadratic probes (``*_quad``:
    :func:`~faconvlstm.evaluation.interpretability.quadratic_probe_r2`,
    :func:`~faconvlstm.evaluation.interpretability.quadratic_probe_accuracy`: the same
    readouts on the embeddings and their pairwise products), which read what a linear
    readout cannot — e.g. a regime held as the size, not the sign, of a feature.

    The probe period is the training windows followed by the held-out windows (the
    encoder is frozen; only the linear readout is fitted). Each calendar year is one fold:
    its R² contribution comes from a probe fitted on every other year, and R² is pooled
    over folds (:func:`~faconvlstm.evaluation.interpretability.linear_probe_r2` with
    ``groups``). One held-out year cannot score a 2–7-year oscillator: it samples a
    fraction of one cycle, so its R² swings with the data seed.
    """
    out = Probes()
    z_train = subject.embed(data.train_x, data.train_phase)
    z_all = np.concatenate([z_train, z])
    years = probe_years(data)
    out.probe_years = int(np.unique(years).size)
    if data.oscillator is not None:
        target = np.concatenate([data.train_oscillator, data.oscillator])
        out.probe_r2 = linear_probe_r2(z_all, target, groups=years)
        out.probe_r2_quad = quadratic_probe_r2(z_all, target, groups=years)
    index = driver_index(data, probe_fields(data))
    if index is not None:
        out.probe_r2_index = linear_probe_r2(z_all, index, groups=years)
        out.probe_r2_index_quad = quadratic_probe_r2(z_all, index, groups=years)
    regime = probe_regime(data)
    if regime is not None:
        out.probe_acc_regime = linear_probe_accuracy(z_all, regime, groups=years)
        out.probe_acc_regime_quad = quadratic_probe_accuracy(z_all, regime, groups=years)
    if data.targets:
        out.probe_r2_targets = {
            name: linear_probe_r2(z_all, series, groups=years)
            for name, series in data.targets.items()
        }
    return out


def probe_regime(data: EvalData) -> np.ndarray | None:
    """The true regime over the probe period (training windows, then held-out windows;
    ``(N_train·T + N·T,)``), or ``None`` where it is not known over both."""
    if data.regime is None or data.train_regime is None:
        return None
    return np.concatenate([data.train_regime, data.regime])


def probe_fields(data: EvalData) -> np.ndarray:
    """The normalised fields of the probe period, one per step (training windows, then
    held-out windows; ``(N_train·T + N·T, C, H, W)``, 0 where missing)."""
    shape = data.x.shape[-3:]
    return np.concatenate(
        [data.train_x.numpy().reshape(-1, *shape), data.x.numpy().reshape(-1, *shape)]
    )


def probe_years(data: EvalData) -> np.ndarray:
    """Calendar year of every step of the probe period (the folds of the blocked CV)."""
    return year_of(np.concatenate([data.train_times.ravel(), data.flat_times]))


def regime_field_baseline(data: EvalData) -> float | None:
    """Balanced accuracy of the single-day linear baseline of the regime probe: a linear
    classifier of the true regime on each day's whole normalised field (``C·H·W`` features,
    0 where missing), scored like the embeddings' ``probe_acc_regime`` (blocked CV by year,
    :func:`~faconvlstm.evaluation.interpretability.linear_probe_accuracy`). It is the best a
    linear function of one day can do; an embedding that beats it carries the regime's
    persistence. ``None`` without regimes over the probe period. (A quadratic probe of the
    whole field would need ``(CHW)²/2`` features; the single-day reference of the quadratic
    regime probe is EOF's, the quadratic probe of one day's leading PCs.)"""
    regime = probe_regime(data)
    if regime is None:
        return None
    fields = probe_fields(data)
    return linear_probe_accuracy(fields.reshape(len(fields), -1), regime, groups=probe_years(data))


def robustness(
    subject: Embedder, data: EvalData, ev: EvaluationConfig, k: int, seed: int, clean: np.ndarray
) -> dict[str, RobustnessCurve]:
    """Cosine and regime ARI to the ``clean`` embeddings under Gaussian noise
    (``noise_sigmas``, channel std) and random / block masking (``mask_fractions``)."""
    out = {}
    levels = {
        "noise": ev.noise_sigmas,
        "random_mask": ev.mask_fractions,
        "block_mask": ev.mask_fractions,
    }
    for kind in _PERTURBATIONS:
        curve = robustness_curve(
            subject.embed,
            data.x,
            levels[kind],
            kind=kind,
            n_clusters=k,
            seed=seed,
            block=tuple(ev.block),
            clean=clean,
        )
        out[kind] = RobustnessCurve(
            level=[float(v) for v in curve["level"].values],
            cosine=curve["cosine"].values.tolist(),
            ari=curve["ari"].values.tolist(),
        )
    return out


def regime_labels(subject: Embedder, z: np.ndarray, data: EvalData, k: int, seed: int) -> Any:
    """The ``k`` regimes ``(N·T,)`` of the held-out windows: the subject's own learned
    clusters when it has ``k`` of them (joint deep clustering, ``model.n_clusters = k``),
    else k-means on its embeddings ``z`` (seeded)."""
    own = getattr(subject, "cluster_labels", None)
    labels = own(data.x, k) if own is not None else None
    return kmeans_labels(z, k, seed) if labels is None else labels


def evaluate(
    subject: Embedder, data: EvalData, ev: EvaluationConfig, k: int, seed: int
) -> tuple[Evaluation, dict[str, np.ndarray]]:
    """Every held-out metric of one subject and seed, with ``k`` k-means regimes.

    Returns:
        The :class:`~faconvlstm.protocol.results.Evaluation` and the arrays the report
        draws: ``embeddings`` (N·T, E), ``labels`` (N·T,) (:func:`regime_labels`) and
        ``truth_regime`` if known.
    """
    z, recon = subject.embed_and_reconstruct(data.x)
    labels = regime_labels(subject, z, data, k, seed)
    arrays: dict[str, np.ndarray] = {"embeddings": z, "labels": labels}
    if data.regime is not None:
        arrays["truth_regime"] = data.regime
    result = Evaluation(
        reconstruction=reconstruction(recon, data),
        regimes=regimes(z, labels, data),
        probes=probes(subject, z, data),
        robustness=robustness(subject, data, ev, k, seed, z),
    )
    result.attribution = (
        occlusion_attribution(subject.embed, data.x, variables=data.channels, clean=z)
        .to_series()
        .to_dict()
    )
    return result, arrays


def _coarse(coord: np.ndarray, size: int) -> np.ndarray:
    """Centres of ``size`` equal blocks of a coordinate (average pooling)."""
    if size == coord.size:
        return coord
    idx = (np.arange(size) + 0.5) * coord.size / size - 0.5
    return np.interp(idx, np.arange(coord.size), coord)


def fa_internals(
    model: torch.nn.Module, data: EvalData, ev: EvaluationConfig
) -> tuple[FAInternals | None, dict[str, np.ndarray]]:
    """Attention scales, SE/branch statistics and the teleconnection attention (mass on the
    remote lobe of a query on the tropical lobe, per ``attention_hops``) of the first FA
    layer, on ``probe_windows`` evaluation windows; ``None`` without an FA layer.

    Returns:
        The internals and the attention arrays the report draws (``attention_map`` (hops,
        H', W'), its ``attention_lat``/``attention_lon`` in degrees, ``attention_hops``,
        ``attention_query`` and ``attention_remote`` (lat, lon)).
    """
    layers = [m for m in model.modules() if isinstance(m, FAConvLSTM2D)]
    if not layers:
        return None, {}
    idx = data.probe(ev.probe_windows)
    with torch.no_grad(), layers[0].capture_internals() as rec:
        model.eval()(data.x[idx], times=data.phase[idx])
    # γ scales the attention update (h ← h + γ·attention); it starts at 0, so its trained
    # size says how much the layers use global context at all
    out = FAInternals(
        attention_gamma=[float(m.gamma.detach()) for m in layers if m.gamma is not None]
    )
    arrays: dict[str, np.ndarray] = {}
    if rec["se_weights"] is not None:
        stats = se_branch_statistics(rec["se_weights"], rec["branch_energy"], data.times[idx])
        out.se_branch = {
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
        remote = region_mask(lat, lon, data.lobes["remote"], ev.lobe_radius_deg)
        maps = []
        for hops in ev.attention_hops:
            m = attention_map(row, col, query, hops=hops)
            chance = uniform_attention_map(m.shape, query, hops=hops)
            mass = attention_mass_on_region(m, remote, chance_map=chance)
            out.attention.append(AttentionMass(hops, mass["mass"], mass["ratio"], mass["chance"]))
            maps.append(m)
        arrays.update(
            attention_map=np.stack(maps),
            attention_lat=lat,
            attention_lon=lon,
            attention_hops=np.asarray(ev.attention_hops),
            attention_query=np.array([lat[query[0]], lon[query[1]]]),
            attention_remote=np.asarray(data.lobes["remote"]),
        )
    return out, arrays


def model_step_ms(model: torch.nn.Module, data: EvalData, batch: int = 4) -> float:
    """Wall time (ms, min of 3) of one forward+backward of the trained model on ``batch``
    evaluation windows, on the CPU.

    Timed on a copy: a training-mode forward updates BatchNorm running statistics (the
    subspace head's ``norm: batch``), and four of them on evaluation windows would move
    the measured model's statistics a third of the way (``1 − 0.9⁴``) to those windows'.
    The model passed in is left exactly as it was."""
    x, phase = data.x[:batch], data.phase[:batch]
    model = copy.deepcopy(model)
    model.train()

    def step() -> None:
        model(x, times=phase)["recon"].square().mean().backward()
        model.zero_grad(set_to_none=True)

    return min(time_call(step, torch.device("cpu"), repeats=3))


def layer_cost_sweep(cfg: CostConfig, kinds: list[str]) -> tuple[dict[str, Any], list[ScalingRow]]:
    """One layer of every cell kind in ``kinds`` on every ``grids`` × ``steps`` point.

    Returns:
        The sweep's configuration (with the PyTorch thread count it ran with) and its rows
        (nothing when ``enabled`` is false or no kind is given).
    """
    rows: list[ScalingRow] = []
    if cfg.enabled and kinds:
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
                    ScalingRow(
                        model=kind,
                        height=h,
                        width=w,
                        steps=t,
                        params=r["params"],
                        flops=r["flops_fwd_bwd"],
                        fwd_ms=r["fwd_ms"],
                        fwd_bwd_ms=r["fwd_bwd_ms"],
                        peak_mem_mb=r["peak_mem_mb"],
                        saved_mb=r.get("saved_mb"),
                    )
                )
    return {**dataclasses.asdict(cfg), "threads": torch.get_num_threads()}, rows
