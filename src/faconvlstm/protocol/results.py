"""Typed results of a comparison, and the one registry of its scalar metrics.

:data:`METRICS` lists every scalar metric once: its key, its label in the report, whether
higher is better, and its scope — ``"seed"`` (one value per seed; the summary holds the
mean and the sd over seeds as ``<key>`` and ``<key>_sd``) or ``"seeds"`` (one value from all
seeds together, e.g. seed stability). The summary (:func:`summarise`), the report's tables
and verdicts (:mod:`faconvlstm.protocol.report`) and ``results.json`` all read it, so a
metric is added with one :class:`Metric` entry (and the code that measures it).

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
                    "probe_r2_index", "probe_acc_regime", "probe_years", "probe_r2_quad",
                    "probe_r2_index_quad", "probe_acc_regime_quad",
                    "probe_r2_targets": {"<name>": R²},
                    "robustness": {"noise" | "random_mask" | "block_mask":
                    {"level": [...], "cosine": [...], "ari": [...]}}, "attribution",
                    "attention_*", "attention_gamma", "se_branch" (FA only)}, ...],
         "summary": {"stability_cka", "stability_ari", "stability_nmi", "ari_truth",
                     "silhouette", "recon_rmse", "robustness_cos": {"σ": mean cosine}, ...,
                     "probe_r2_target:<name>" (one per evaluation.targets entry),
                     and "<metric>_sd" (sd over seeds) for every averaged scalar}}},
     "variants": {"<variant name>": {"cost", "seeds", "summary"} as a model, ...},
     "forecast": {...}}       # forecast comparisons only (train.task: forecast), see
                              # faconvlstm.protocol.forecast; "models" is then empty

A per-seed key is absent where it does not apply (no ground truth, not FA, EOF has no
training history). Units: RMSE in normalised units (per-channel standard deviations of the
training period); times in s (``*_seconds``) or ms (``*_ms``); memory in MiB; null where a
number does not apply (e.g. FLOPs of EOF) or is not finite.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from faconvlstm.evaluation.stability import cluster_agreement, mean_pairwise_cka

if TYPE_CHECKING:
    from faconvlstm.protocol.forecast import ForecastResults

__all__ = [
    "METRICS",
    "SCHEMA_VERSION",
    "TARGET_PREFIX",
    "AttentionMass",
    "Budget",
    "DataInfo",
    "Evaluation",
    "FAInternals",
    "LossHistory",
    "Metric",
    "ModelCost",
    "ModelResult",
    "ModelSummary",
    "Probes",
    "Reconstruction",
    "Regimes",
    "Results",
    "RobustnessCurve",
    "ScalingRow",
    "SeedResult",
    "TrainingRecord",
    "attention_key",
    "metric",
    "metrics_of",
    "summarise",
    "target_metric",
]

SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Metric:
    """A scalar metric: ``key`` in the results, ``label`` in the report, ``higher_is_better``
    (the report's verdicts), ``scope`` (see the module doc), whether it is a row of the
    report's headline table, and its column in the report's per-seed table (``None``: not
    shown there)."""

    key: str
    label: str
    higher_is_better: bool
    scope: Literal["seed", "seeds"] = "seed"
    headline: bool = False
    per_seed: int | None = None


def _m(key: str, label: str, higher: bool, **kw: Any) -> Metric:
    return Metric(key, label, higher, **kw)


#: Every scalar metric, headline ones first in the order of the report's table.
METRICS: tuple[Metric, ...] = (
    _m("ari_truth", "ARI vs ground-truth regimes", True, headline=True, per_seed=0),
    _m("nmi_truth", "NMI vs ground-truth regimes", True, headline=True),
    _m("stability_cka", "seed stability: mean pairwise CKA", True, scope="seeds", headline=True),
    _m(
        "stability_ari",
        "seed stability: k-means ARI between seeds",
        True,
        scope="seeds",
        headline=True,
    ),
    _m(
        "drift_cka_final",
        "embedding drift in the last epoch: 1 − CKA (lower is better)",
        False,
        headline=True,
    ),
    _m("silhouette", "silhouette of k-means regimes", True, headline=True, per_seed=1),
    _m("davies_bouldin", "Davies–Bouldin (lower is better)", False, headline=True),
    _m("cluster_rmse_ratio", "intra/inter-cluster RMSE (lower is better)", False, headline=True),
    _m(
        "probe_r2",
        "linear-probe R² of the oscillator (blocked CV by year)",
        True,
        headline=True,
        per_seed=3,
    ),
    _m(
        "probe_r2_index",
        "linear-probe R² of a tropical box index (blocked CV by year)",
        True,
        headline=True,
    ),
    _m(
        "probe_acc_regime",
        "linear-probe balanced accuracy of the true regime (blocked CV by year)",
        True,
        headline=True,
    ),
    _m(
        "probe_r2_quad",
        "quadratic-probe R² of the oscillator (blocked CV by year)",
        True,
        headline=True,
    ),
    _m(
        "probe_r2_index_quad",
        "quadratic-probe R² of a tropical box index (blocked CV by year)",
        True,
        headline=True,
    ),
    _m(
        "probe_acc_regime_quad",
        "quadratic-probe balanced accuracy of the true regime (blocked CV by year)",
        True,
        headline=True,
    ),
    _m("recon_rmse", "reconstruction RMSE (normalised units)", False, headline=True, per_seed=2),
    _m("recon_acc", "reconstruction ACC", True, headline=True),
    _m(
        "train_seconds",
        "training wall time per seed (s, same budget)",
        False,
        headline=True,
        per_seed=4,
    ),
    _m(
        "robustness_cos_mean",
        "mean centred cosine to clean embeddings under noise",
        True,
        scope="seeds",
        headline=True,
    ),
    _m(
        "robustness_ari_mean", "regime ARI to clean under noise", True, scope="seeds", headline=True
    ),
    _m(
        "mask_cos_mean",
        "mean centred cosine to clean under random + block masking",
        True,
        scope="seeds",
        headline=True,
    ),
    _m("stability_nmi", "seed stability: k-means NMI between seeds", True, scope="seeds"),
    _m("calinski_harabasz", "Calinski–Harabasz", True),
    _m("attention_remote_ratio", "FA attention on the remote lobe (1 hop), × chance", True),
    _m("attention_remote_ratio_2hop", "FA attention on the remote lobe (2 hops), × chance", True),
    _m("attention_remote_mass", "FA attention mass on the remote lobe (1 hop)", True),
    _m("attention_remote_mass_2hop", "FA attention mass on the remote lobe (2 hops)", True),
    _m("attention_chance", "remote-lobe mass of uniform axial attention (1 hop)", True),
    _m("attention_chance_2hop", "remote-lobe mass of uniform axial attention (2 hops)", True),
)

_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The registry entry of ``key`` (``KeyError`` names the known keys)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no metric {key!r} in the registry; known: {', '.join(_BY_KEY)}") from None


#: Summary keys of the user-given probe targets: ``probe_r2_target:<name>``.
TARGET_PREFIX = "probe_r2_target:"


def target_metric(name: str) -> Metric:
    """The registry-style entry of user-given probe target ``name`` (``evaluation.targets``):
    a per-seed, higher-is-better headline metric whose summary key is
    ``probe_r2_target:<name>``."""
    return Metric(
        f"{TARGET_PREFIX}{name}",
        f"linear-probe R² of {name} (given target, blocked CV by year)",
        True,
        headline=True,
    )


def metrics_of(models: dict[str, Any]) -> tuple[Metric, ...]:
    """:data:`METRICS` followed by the target metrics present in any model's summary."""
    names: dict[str, None] = {}
    for m in models.values():
        for key in m.summary.scalars:
            if key.startswith(TARGET_PREFIX) and not key.endswith("_sd"):
                names[key[len(TARGET_PREFIX) :]] = None
    return (*METRICS, *(target_metric(n) for n in names))


def attention_key(quantity: str, hops: int) -> str:
    """Flat key of an attention quantity (``remote_mass``, ``remote_ratio``, ``chance``):
    ``attention_<quantity>`` for 1 hop, ``attention_<quantity>_<hops>hop`` otherwise."""
    return f"attention_{quantity}" + ("" if hops == 1 else f"_{hops}hop")


# ---------------------------------------------------------------------------------- per seed
def _plain(obj: Any) -> dict[str, Any]:
    """A flat dataclass as a dict without its ``None`` fields (absent = does not apply)."""
    return {k: v for k, v in dataclasses.asdict(obj).items() if v is not None}


def _take(cls: type, raw: dict) -> Any:
    """Pop ``cls``'s fields from ``raw``; ``None`` when none of them is there."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not any(n in raw for n in names):
        return None
    return cls(**{n: raw.pop(n) for n in names if n in raw})


@dataclass
class LossHistory:
    """Per-epoch losses (latitude-weighted MSE, normalised units; ``None``: not logged)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)


@dataclass
class TrainingRecord:
    """How a subject was trained or fitted: wall time (s), parameter count, for learned
    subjects the loss history, the embedding drift between epochs (1 − CKA per epoch
    transition, see :func:`~faconvlstm.evaluation.stability.embedding_drift`) and the wall
    time (ms) of one forward+backward of the trained model, and which checkpoint was
    measured (``checkpoint``: ``last`` or ``best``) with the 1-based epoch its weights are
    from (``checkpoint_epoch``); for EOF the explained variance."""

    train_seconds: float | None = None
    model_params: int | None = None
    history: LossHistory | None = None
    checkpoint: str | None = None
    checkpoint_epoch: int | None = None
    drift: dict[str, list[float]] | None = None
    drift_cka_final: float | None = None
    model_fwd_bwd_ms: float | None = None
    explained_variance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def take(cls, raw: dict) -> TrainingRecord | None:
        out = _take(cls, raw)
        if out is not None and isinstance(out.history, dict):
            out.history = LossHistory(**out.history)
        return out


@dataclass
class Reconstruction:
    """Latitude-weighted RMSE (normalised units) and ACC of the reconstructions."""

    recon_rmse: float | None = None
    recon_rmse_by_channel: dict[str, float] | None = None
    recon_acc: float | None = None
    recon_acc_by_channel: dict[str, float] | None = None


@dataclass
class Regimes:
    """k-means regimes of the embeddings: internal scores, composite scores in the fields'
    normalised units (``cluster_*``), and agreement with the true regimes (if known)."""

    silhouette: float | None = None
    davies_bouldin: float | None = None
    calinski_harabasz: float | None = None
    cluster_rmse_ratio: float | None = None
    cluster_intra_rmse: list[float] | None = None
    cluster_inter_rmse: list[list[float]] | None = None
    cluster_spatial_correlation: list[list[float]] | None = None
    ari_truth: float | None = None
    nmi_truth: float | None = None


@dataclass
class Probes:
    """R² of linear probes (``probe_r2*``) and the balanced accuracy of a linear regime
    classifier (``probe_acc_regime``), blocked cross-validated by calendar year over the
    training and held-out windows (``probe_years`` folds; ``None``: no truth), and the
    same three scored by quadratic probes (``*_quad``: the same readouts on the embeddings
    and all their pairwise products), which read what lies in the size of a feature rather
    than its sign."""

    probe_r2: float | None = None
    probe_r2_index: float | None = None
    probe_acc_regime: float | None = None
    probe_r2_quad: float | None = None
    probe_r2_index_quad: float | None = None
    probe_acc_regime_quad: float | None = None
    probe_years: int | None = None
    probe_r2_targets: dict[str, float] | None = None


@dataclass
class RobustnessCurve:
    """Centred cosine and regime ARI to the clean embeddings per perturbation level."""

    level: list[float]
    cosine: list[float]
    ari: list[float]


@dataclass
class Evaluation:
    """Everything measured on the held-out windows for one subject and seed."""

    reconstruction: Reconstruction = field(default_factory=Reconstruction)
    regimes: Regimes = field(default_factory=Regimes)
    probes: Probes = field(default_factory=Probes)
    robustness: dict[str, RobustnessCurve] = field(default_factory=dict)
    attribution: dict[str, float] = field(default_factory=dict)


@dataclass
class AttentionMass:
    """Attention mass of a query on the tropical lobe onto the remote lobe after ``hops``
    propagation steps, that of a uniform axial attention (``chance``) and their ratio."""

    hops: int
    mass: float
    ratio: float | None
    chance: float


@dataclass
class FAInternals:
    """FA layers' learned attention scales γ, the first layer's SE/branch statistics by
    season, and its teleconnection attention per number of hops."""

    attention_gamma: list[float]
    se_branch: dict[str, list] | None = None
    attention: list[AttentionMass] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attention_gamma": self.attention_gamma}
        if self.se_branch is not None:
            out["se_branch"] = self.se_branch
        for a in self.attention:
            out[attention_key("remote_mass", a.hops)] = a.mass
            out[attention_key("remote_ratio", a.hops)] = a.ratio
            out[attention_key("chance", a.hops)] = a.chance
        return out

    @classmethod
    def take(cls, raw: dict) -> FAInternals | None:
        if "attention_gamma" not in raw:
            return None
        out = cls(raw.pop("attention_gamma"), raw.pop("se_branch", None))
        pattern = re.compile(r"attention_remote_mass(?:_(\d+)hop)?$")
        for key in [k for k in raw if pattern.match(k)]:
            hops = int(pattern.match(key).group(1) or 1)
            out.attention.append(
                AttentionMass(
                    hops,
                    raw.pop(key),
                    raw.pop(attention_key("remote_ratio", hops), None),
                    raw.pop(attention_key("chance", hops), None),
                )
            )
        out.attention.sort(key=lambda a: a.hops)
        return out


@dataclass
class SeedResult:
    """One (subject, seed) run: ``result.json`` of the run, an element of ``seeds``."""

    seed: int
    training: TrainingRecord = field(default_factory=TrainingRecord)
    evaluation: Evaluation | None = None
    eval_seconds: float | None = None
    internals: FAInternals | None = None

    def to_dict(self) -> dict[str, Any]:
        """The flat dict of the results schema (keys that do not apply are absent)."""
        out: dict[str, Any] = {"seed": self.seed, **self.training.to_dict()}
        if self.evaluation is not None:
            ev = self.evaluation
            out.update(_plain(ev.reconstruction))
            out.update(_plain(ev.regimes))
            out.update(_plain(ev.probes))
            out["robustness"] = {k: dataclasses.asdict(c) for k, c in ev.robustness.items()}
            out["attribution"] = dict(ev.attribution)
        if self.eval_seconds is not None:
            out["eval_seconds"] = self.eval_seconds
        if self.internals is not None:
            out.update(self.internals.to_dict())
        return out

    def get(self, key: str) -> Any:
        """A flat value by its results key (``None`` where it does not apply)."""
        return self.to_dict().get(key)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "result") -> SeedResult:
        """Inverse of :meth:`to_dict`; a key it does not know raises ``ValueError``
        naming ``where`` (a file written by another schema)."""
        raw = dict(d)
        seed = raw.pop("seed")
        training = TrainingRecord.take(raw) or TrainingRecord()
        internals = FAInternals.take(raw)
        parts = (
            _take(Reconstruction, raw),
            _take(Regimes, raw),
            _take(Probes, raw),
            raw.pop("robustness", None),
            raw.pop("attribution", None),
        )
        evaluation = None
        if any(p is not None for p in parts):
            rec, reg, probes, robustness, attribution = parts
            evaluation = Evaluation(
                rec or Reconstruction(),
                reg or Regimes(),
                probes or Probes(),
                {k: RobustnessCurve(**c) for k, c in (robustness or {}).items()},
                attribution or {},
            )
        eval_seconds = raw.pop("eval_seconds", None)
        if raw:
            raise ValueError(
                f"{where}: unknown key '{sorted(raw)[0]}' (results schema {SCHEMA_VERSION}); "
                "delete that run's folder to recompute it"
            )
        return cls(seed, training, evaluation, eval_seconds, internals)


# ---------------------------------------------------------------------------------- per model
@dataclass
class ScalingRow:
    """One point of the layer cost sweep (ms, MiB; FLOPs of forward+backward)."""

    model: str
    height: int
    width: int
    steps: int
    params: int | None
    flops: float | None
    fwd_ms: float | None
    fwd_bwd_ms: float | None
    peak_mem_mb: float | None
    saved_mb: float | None


@dataclass
class ModelCost:
    """One layer at the largest swept point, and the trained model (see the schema)."""

    params: int | None = None
    flops: float | None = None
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    peak_mem_mb: float | None = None
    saved_mb: float | None = None
    model_params: int | None = None
    model_fwd_bwd_ms: float | None = None

    @classmethod
    def of(cls, model: str, scaling: list[ScalingRow], seeds: list[SeedResult]) -> ModelCost:
        """The cost row of ``model``: its largest grid (then longest sequence) of the sweep,
        its trained parameter count and fastest measured training step."""
        rows = [r for r in scaling if r.model == model]
        ref = max(rows, key=lambda r: (r.height * r.width, r.steps)) if rows else None
        step_ms = [s.training.model_fwd_bwd_ms for s in seeds if s.training.model_fwd_bwd_ms]
        layer = {}
        if ref is not None:
            layer = {
                k: getattr(ref, k)
                for k in ("params", "flops", "fwd_ms", "fwd_bwd_ms", "peak_mem_mb", "saved_mb")
            }
        return cls(
            **layer,
            model_params=seeds[0].training.model_params if seeds else None,
            model_fwd_bwd_ms=min(step_ms) if step_ms else None,
        )


@dataclass
class ModelSummary:
    """Across-seed summary of one subject: ``scalars`` holds every registry metric that
    applies (``<key>`` and, for per-seed metrics, ``<key>_sd``); the curves map a level
    (``f"{level:g}"``) to the mean over seeds; ``attribution`` is the mean per variable."""

    scalars: dict[str, float | None] = field(default_factory=dict)
    robustness_cos: dict[str, float] = field(default_factory=dict)
    robustness_ari: dict[str, float] = field(default_factory=dict)
    mask_cos: dict[str, dict[str, float]] = field(default_factory=dict)
    attribution: dict[str, float] = field(default_factory=dict)

    _CURVES = ("robustness_cos", "robustness_ari", "mask_cos", "attribution")

    def get(self, key: str) -> float | None:
        return self.scalars.get(key)

    def to_dict(self) -> dict[str, Any]:
        return {**self.scalars, **{k: getattr(self, k) for k in self._CURVES}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSummary:
        raw = dict(d)
        curves = {k: raw.pop(k) for k in cls._CURVES if k in raw}
        return cls(scalars=raw, **curves)


def summarise(seeds: list[SeedResult], embeddings: list[np.ndarray], k: int) -> ModelSummary:
    """Across-seed summary of one subject: seed stability from the embeddings (``k``
    clusters), mean ± sd of every per-seed metric of the registry, mean curves."""
    flat = [s.to_dict() for s in seeds]
    out: dict[str, Any] = {"stability_cka": mean_pairwise_cka(embeddings)}
    agree = cluster_agreement(embeddings, k)
    out["stability_ari"], out["stability_nmi"] = agree["ari"], agree["nmi"]
    for m in METRICS:
        if m.scope != "seed":
            continue
        values = [s[m.key] for s in flat if s.get(m.key) is not None]
        if values:
            out[m.key], out[f"{m.key}_sd"] = float(np.mean(values)), float(np.std(values))
    for name in flat[0].get("probe_r2_targets") or {}:
        values = [s["probe_r2_targets"][name] for s in flat if s.get("probe_r2_targets")]
        key = f"{TARGET_PREFIX}{name}"
        out[key], out[f"{key}_sd"] = float(np.mean(values)), float(np.std(values))

    def curve(kind: str, what: str) -> dict[str, float]:
        curves = [s["robustness"][kind] for s in flat]
        mean = np.mean([c[what] for c in curves], axis=0)
        return {f"{lvl:g}": float(v) for lvl, v in zip(curves[0]["level"], mean)}

    summary = ModelSummary(
        robustness_cos=curve("noise", "cosine"),
        robustness_ari=curve("noise", "ari"),
        mask_cos={kind: curve(kind, "cosine") for kind in ("random_mask", "block_mask")},
    )
    noisy = [v for lvl, v in summary.robustness_cos.items() if float(lvl) > 0]
    out["robustness_cos_mean"] = float(np.mean(noisy)) if noisy else None
    noisy_ari = [v for lvl, v in summary.robustness_ari.items() if float(lvl) > 0]
    out["robustness_ari_mean"] = float(np.mean(noisy_ari)) if noisy_ari else None
    out["mask_cos_mean"] = float(
        np.mean([v for c in summary.mask_cos.values() for v in c.values()])
    )
    variables = flat[0].get("attribution") or {}
    summary.attribution = {
        v: float(np.mean([s["attribution"][v] for s in flat])) for v in variables
    }
    summary.scalars = out
    return summary


@dataclass
class ModelResult:
    """One subject: its cost, every seed's result and the across-seed summary."""

    cost: ModelCost
    seeds: list[SeedResult]
    summary: ModelSummary


def _model_dict(m: ModelResult) -> dict[str, Any]:
    return {
        "cost": dataclasses.asdict(m.cost),
        "seeds": [s.to_dict() for s in m.seeds],
        "summary": m.summary.to_dict(),
    }


# ---------------------------------------------------------------------------------- top level
@dataclass
class Budget:
    """The training budget every learned subject gets, and which of its checkpoints is
    measured (``checkpoint``: ``last``, the end of the budget, or ``best``, the lowest
    validation loss)."""

    max_epochs: int
    max_steps: int
    batch_size: int
    window: int
    lr: float
    checkpoint: str = "last"

    @classmethod
    def of(cls, run: Any, checkpoint: str = "last") -> Budget:
        """The budget of a run configuration (:class:`~faconvlstm.training.config.RunConfig`)
        measured at ``checkpoint``."""
        return cls(
            max_epochs=run.trainer.max_epochs,
            max_steps=run.trainer.max_steps,
            batch_size=run.data.batch_size,
            window=run.data.window,
            lr=run.optim.lr,
            checkpoint=checkpoint,
        )


@dataclass
class DataInfo:
    """The data of the comparison: grid, period lengths (time steps), regimes, k, the given
    targets / labels, and the reconstruction RMSE of the climatology baseline (every held-out
    window "reconstructed" as the training period's day-of-year climatology, normalised
    units: what a model must beat to know anything of the anomalies), and the balanced
    accuracy of the single-day linear baseline of the regime probe (a linear classifier of
    the regime on each day's whole normalised field, scored like ``probe_acc_regime``: what
    an embedding that integrates the recent past must beat)."""

    source: str
    channels: list[str]
    height: int
    width: int
    n_train_steps: int
    n_eval_steps: int
    eval_period: list[str]
    n_regimes: int | None
    n_clusters: int
    targets: list[str] = field(default_factory=list)
    labels: str | None = None
    recon_rmse_climatology: float | None = None
    probe_acc_regime_field: float | None = None


@dataclass
class Results:
    """Everything a comparison produced: ``results.json`` (see the module doc)."""

    config: dict[str, Any]
    seeds: list[int]
    budget: Budget
    data: DataInfo
    cost_config: dict[str, Any]
    scaling: list[ScalingRow]
    models: dict[str, ModelResult]
    variants: dict[str, ModelResult] = field(default_factory=dict)
    forecast: ForecastResults | None = None
    command: str | None = None
    created: str = ""
    faconvlstm_version: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schema_version": self.schema_version,
            "faconvlstm_version": self.faconvlstm_version,
            "created": self.created,
            "command": self.command,
            "config": self.config,
            "seeds": list(self.seeds),
            "budget": dataclasses.asdict(self.budget),
            "data": dataclasses.asdict(self.data),
            "cost_config": self.cost_config,
            "scaling": [dataclasses.asdict(r) for r in self.scaling],
            "models": {name: _model_dict(m) for name, m in self.models.items()},
            "variants": {name: _model_dict(m) for name, m in self.variants.items()},
        }
        if self.forecast is not None:  # absent from autoencoder comparisons
            out["forecast"] = self.forecast.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Results:
        """Read ``results.json`` back (``ValueError`` for another schema version)."""
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"results schema {d.get('schema_version')!r} is not {SCHEMA_VERSION}: "
                "rerun the comparison with this faconvlstm version"
            )

        def read(section: str) -> dict[str, ModelResult]:
            return {
                name: ModelResult(
                    ModelCost(**m["cost"]),
                    [SeedResult.from_dict(s, f"results.json {section}.{name}") for s in m["seeds"]],
                    ModelSummary.from_dict(m["summary"]),
                )
                for name, m in d.get(section, {}).items()
            }

        models = read("models")
        forecast = None
        if d.get("forecast") is not None:
            from faconvlstm.protocol.forecast import ForecastResults  # imports this module

            forecast = ForecastResults.from_dict(d["forecast"])
        return cls(
            config=d["config"],
            seeds=d["seeds"],
            budget=Budget(**d["budget"]),
            data=DataInfo(**d["data"]),
            cost_config=d["cost_config"],
            scaling=[ScalingRow(**r) for r in d["scaling"]],
            models=models,
            variants=read("variants"),
            forecast=forecast,
            command=d.get("command"),
            created=d.get("created", ""),
            faconvlstm_version=d.get("faconvlstm_version", ""),
        )
