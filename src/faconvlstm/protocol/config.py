"""The compare configuration: subjects × seeds, one training configuration, one evaluation.

Read and validated by the same typed loader as ``faconvlstm fit`` configs
(:func:`faconvlstm.training.config.read_config_mapping` and
:func:`~faconvlstm.training.config.build_dataclass`): the same YAML reading, the same
``--set dotted.key=value`` merge rule, and an unknown key or a value of the wrong type
raises :class:`~faconvlstm.training.config.ConfigError` naming the dotted key. A complete
file (defaults in the dataclasses below)::

    out: runs/compare
    seeds: [0, 1, 2]                 # >= 2: seed stability is a headline metric
    models: [fa, convlstm, eof]      # names of faconvlstm.protocol.subjects.SUBJECTS
    data_seed: 0                     # fixes the synthetic data; only the model seed varies
    train: {...}                     # a `faconvlstm fit` run configuration (task autoencoder,
                                     # or forecast: see faconvlstm.protocol.forecast)
    model_overrides: {fa: {...}}     # merged into train.model per subject
    variants:                        # ablations: each one more learned subject
      - {name: no_attention, model: {layer_kwargs: {attention_every: 0}}}
    eof_n_eofs: null                 # EOFs kept (null: the learned models' embed_dim)
    threads: auto                    # PyTorch threads: auto (for the machine's load), N or null
    evaluation: {...}                # EvaluationConfig (targets: [TargetConfig], labels)
    cost: {...}                      # CostConfig
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from faconvlstm.protocol.subjects import SUBJECTS
from faconvlstm.training.config import (
    ConfigError,
    RunConfig,
    build_dataclass,
    check_threads,
    config_from_dict,
    read_config_mapping,
)

__all__ = [
    "REFERENCE_SUBJECT",
    "CompareConfig",
    "CostConfig",
    "EvaluationConfig",
    "LabelsConfig",
    "TargetConfig",
    "VariantConfig",
    "load_compare_config",
    "run_config",
]

#: The subject whose run configuration stands for the shared data, budget and
#: ``embed_dim`` (the data section is the same for every subject; only ``cell`` differs).
REFERENCE_SUBJECT = "fa"


@dataclass
class EvaluationConfig:
    """What is measured on the held-out windows.

    ``n_clusters``: k of k-means (null: the number of ground-truth regimes, else 4).
    ``noise_sigmas``: Gaussian noise levels in units of each channel's std.
    ``mask_fractions``: hidden shares for random-point and block masking (``block`` = h, w).
    ``attention_hops``: propagation steps of the attention maps (see ``attention_map``).
    ``lobe_radius_deg``: radius of the teleconnection lobe regions, in degrees.
    ``probe_windows``: evaluation windows embedded after every epoch (embedding drift) and
    used for the FA internals.
    ``climatology_smooth_days``: pooling window (days) of the ACC day-of-year climatology.
    ``checkpoint``: the weights of each learned run that are measured: ``last`` (the end of
    the budget, ``last.ckpt``) or ``best`` (``best.ckpt``, the epoch of the lowest
    ``train.checkpoint.monitor``, by default the validation loss: early stopping on the
    validation years, which the evaluation period never enters).
    """

    n_clusters: int | None = None
    noise_sigmas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0])
    mask_fractions: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    block: list[int] = field(default_factory=lambda: [4, 8])
    attention_hops: list[int] = field(default_factory=lambda: [1, 2])
    lobe_radius_deg: float = 20.0
    probe_windows: int = 8
    climatology_smooth_days: int = 31
    checkpoint: Literal["last", "best"] = "last"
    targets: list[TargetConfig] = field(default_factory=list)
    labels: LabelsConfig | None = None


@dataclass
class TargetConfig:
    """A probe target of ``evaluation.targets``: a time series the embeddings should predict
    linearly (R² blocked cross-validated by year, like the built-in probes).

    ``name``: its name in the results and the report (letters, digits, ``_``, ``-``);
    ``index``: a built-in index computed from data channel ``channel`` (null: the only
    channel) — ``nino34`` (Niño-3.4 box mean, e.g. of SST), ``nao`` (leading EOF of z500
    over the North Atlantic, fitted on the training period), ``jet`` (maximum zonal-mean
    zonal wind, e.g. of ``u@250``) — or ``file``: variable ``variable`` of a NetCDF/Zarr
    file or a CSV with a ``time`` column, given at the data's time stamps. ``lat_range`` /
    ``lon_range`` (degrees) replace a built-in index's box, sector or band.
    """

    name: str
    index: Literal["nino34", "nao", "jet", "file"] = "file"
    channel: str | None = None
    file: str | None = None
    variable: str | None = None
    lat_range: list[float] | None = None
    lon_range: list[float] | None = None


@dataclass
class LabelsConfig:
    """``evaluation.labels``: known regime (cluster) labels per time step, scored like the
    synthetic climate's planted regimes (ARI / NMI of the k-means regimes against them).
    ``variable`` of a NetCDF/Zarr file or a CSV with a ``time`` column, integer or string
    labels, given at the data's time stamps."""

    file: str
    variable: str


@dataclass
class CostConfig:
    """The layer cost sweep (:mod:`faconvlstm.evaluation.efficiency`).

    One layer of every learned subject, with ``filters`` and ``in_channels``, is measured
    on every ``grids`` × ``steps`` input of batch ``batch``; the largest point is the cost
    table. ``repeats`` interleaved timings (the minimum is kept); ``memory``: measure the
    peak memory of a training step in a fresh process; ``device``: a torch device.
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
class VariantConfig:
    """An ablation (or any other variant) of a learned subject, trained and measured like
    one: the same seeds, data and budget, unless ``train`` says otherwise.

    ``name``: its name in the results and the report (letters, digits, ``_``, ``-``; not a
    subject's name); ``base``: the learned subject it varies (default ``fa``); ``model``:
    merged (recursively: ``layer_kwargs`` keys are merged, not replaced) into the base's
    model section; ``train``: merged recursively into the ``train`` section (any run
    configuration key, e.g. ``optim: {lr: 0.001}``).
    """

    name: str
    base: str = "fa"
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


@dataclass
class CompareConfig:
    """A comparison: subjects × seeds, one training configuration, one evaluation.

    ``train`` is a `faconvlstm fit` run configuration (see
    :mod:`faconvlstm.training.config`) shared by the learned subjects; ``model_overrides``
    is merged into its ``model`` section per subject (``cell`` is set from the subject's
    name). ``data_seed`` fixes the synthetic data, so only the model seed varies between
    seeds. ``eof_n_eofs``: EOFs kept (null: the learned models' ``embed_dim``).
    ``threads``: PyTorch intra-op threads during the comparison: ``auto`` (the default;
    PyTorch's count lowered by the cores other running jobs hold,
    :func:`faconvlstm.runtime.choose_threads`), an integer, or null (unchanged). On a busy
    shared machine 1 thread can be many times faster than spinning thread pools.
    ``variants`` are ablations, each trained and measured like a learned subject and
    reported in one ablation table beside its base (:class:`VariantConfig`).
    The derived run configuration of a (subject or variant, seed) is :func:`run_config`;
    the plan (:mod:`faconvlstm.protocol.plan`) builds it once per run.
    """

    out: str = "runs/compare"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    models: list[str] = field(default_factory=lambda: ["fa", "convlstm", "eof"])
    data_seed: int = 0
    train: dict = field(default_factory=dict)
    model_overrides: dict = field(default_factory=dict)
    variants: list[VariantConfig] = field(default_factory=list)
    eof_n_eofs: int | None = None
    threads: int | Literal["auto"] | None = "auto"
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    cost: CostConfig = field(default_factory=CostConfig)


def load_compare_config(
    source: str | Path | dict, overrides: list[str] | None = None
) -> CompareConfig:
    """Read and validate a compare config: a YAML path, a shipped name (``compare_demo``)
    or a dict; ``overrides`` are dotted ``key=value`` strings (``train.trainer.max_epochs=2``).

    Besides keys and types this checks what the protocol needs: known subject names, at
    least 2 seeds, and a ``train`` section that is a valid run configuration (checked now,
    before any data is opened or any model trained). With ``train.task: forecast`` the
    comparison scores forecasters (:mod:`faconvlstm.protocol.forecast`): ``eof`` is refused
    (it does not forecast) and ``train.data.test_years`` must be named.
    """
    raw = read_config_mapping(
        copy.deepcopy(source) if isinstance(source, dict) else source, overrides
    )
    variants = raw.pop("variants", None) or []
    if not isinstance(variants, list):
        raise ConfigError(
            "compare config key 'variants': expected a list of {name, base, model, train} "
            f"mappings, got {type(variants).__name__}"
        )
    evaluation = raw.get("evaluation") if isinstance(raw.get("evaluation"), dict) else {}
    targets = evaluation.pop("targets", None) or []
    labels = evaluation.pop("labels", None)
    cfg = build_dataclass(CompareConfig, raw)
    cfg.variants = [
        build_dataclass(VariantConfig, v, f"variants[{i}]") for i, v in enumerate(variants)
    ]
    cfg.evaluation.targets = _targets(targets)
    if labels is not None:
        cfg.evaluation.labels = build_dataclass(LabelsConfig, labels, "evaluation.labels")
    bad = [m for m in cfg.models if m not in SUBJECTS]
    if bad:
        raise ConfigError(
            f"compare config key 'models': unknown model {bad[0]!r}; "
            f"accepted: {', '.join(SUBJECTS)}"
        )
    if len(cfg.seeds) < 2:
        raise ConfigError("compare config key 'seeds': stability needs at least 2 seeds")
    check_threads(cfg.threads, "threads")
    _check_variants(cfg)
    _check_models(cfg)
    reference = run_config(cfg, REFERENCE_SUBJECT, cfg.seeds[0])
    if cfg.evaluation.checkpoint == "best" and reference.trainer.limit_val_batches == 0:
        raise ConfigError(
            "compare config key 'evaluation.checkpoint': 'best' is the epoch of lowest "
            "validation loss, but train.trainer.limit_val_batches is 0 (no validation); "
            "allow validation batches or set evaluation.checkpoint: last"
        )
    if reference.task == "forecast":
        _check_forecast(cfg, reference)
    return cfg


def _check_forecast(cfg: CompareConfig, reference: RunConfig) -> None:
    """A forecast comparison (``train.task: forecast``, :mod:`faconvlstm.protocol.forecast`)
    scores forecasters on the test years: no closed-form subject, test years named, every
    variant a forecaster too."""
    if "eof" in cfg.models:
        raise ConfigError(
            "compare config key 'models': 'eof' is a representation baseline and does not "
            "forecast; with train.task: forecast list learned subjects only (e.g. [fa, "
            "convlstm]): persistence and climatology are the forecast baselines, always scored"
        )
    if reference.data.test_years is None:
        raise ConfigError(
            "compare config key 'train.data.test_years': the forecast comparison scores the "
            "held-out test years; name them (e.g. [2007, 2007])"
        )
    for i, v in enumerate(cfg.variants):
        if run_config(cfg, v.name, cfg.seeds[0]).task != "forecast":
            raise ConfigError(
                f"compare config key 'variants[{i}].train.task': a forecast comparison "
                "compares forecasters; remove the task override"
            )


_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _targets(raw: object) -> list[TargetConfig]:
    """``evaluation.targets`` validated: a list of :class:`TargetConfig` mappings with
    unique path-safe names, ``file`` + ``variable`` for file targets, ranges of 2 numbers."""
    if not isinstance(raw, list):
        raise ConfigError(
            "compare config key 'evaluation.targets': expected a list of {name, index, "
            f"channel, file, variable}} mappings, got {type(raw).__name__}"
        )
    out: list[TargetConfig] = []
    for i, item in enumerate(raw):
        key = f"evaluation.targets[{i}]"
        t = build_dataclass(TargetConfig, item, key)
        if not _NAME.fullmatch(t.name) or t.name in {o.name for o in out}:
            raise ConfigError(
                f"compare config key '{key}.name': {t.name!r} must be unique and made of "
                "letters, digits, '_' or '-'"
            )
        if t.index == "file" and (t.file is None or t.variable is None):
            raise ConfigError(
                f"compare config key '{key}': a file target needs 'file' and 'variable' "
                "(or set 'index' to nino34, nao or jet)"
            )
        for name in ("lat_range", "lon_range"):
            value = getattr(t, name)
            if value is not None and len(value) != 2:
                raise ConfigError(
                    f"compare config key '{key}.{name}': expected [first, last] in degrees, "
                    f"got {value}"
                )
        out.append(t)
    return out


def _check_models(cfg: CompareConfig) -> None:
    """Every learned subject's and variant's run configuration, including its ``model``
    section against the model's and layer's signatures, is valid before anything runs."""
    from faconvlstm.training.config import validate_model_kwargs
    from faconvlstm.training.fit import model_class

    learned = [m for m in cfg.models if SUBJECTS[m].learned]
    for name in [*learned, *(v.name for v in cfg.variants)]:
        try:
            run = run_config(cfg, name, cfg.seeds[0])
            validate_model_kwargs(model_class(run.task), run.model)
        except ConfigError as err:
            where = "model_overrides" if variant(cfg, name) is None else "variants[].model"
            raise ConfigError(
                f"{err} (in the run configuration of {name!r}: options of one model belong "
                f"under {where})"
            ) from None


def _check_variants(cfg: CompareConfig) -> None:
    """Variant names are unique, path-safe and not subjects; bases are learned subjects;
    every variant's run configuration is valid (checked before anything is trained)."""
    seen: set[str] = set()
    for i, v in enumerate(cfg.variants):
        key = f"compare config key 'variants[{i}]"
        if not _NAME.fullmatch(v.name) or v.name in SUBJECTS or v.name in seen:
            raise ConfigError(
                f"{key}.name': {v.name!r} must be unique, made of letters, digits, '_' or "
                f"'-', and not a subject's name ({', '.join(SUBJECTS)})"
            )
        seen.add(v.name)
        if v.base not in SUBJECTS or not SUBJECTS[v.base].learned:
            learned = [n for n, k in SUBJECTS.items() if k.learned]
            raise ConfigError(
                f"{key}.base': {v.base!r} is not a learned subject; accepted: {', '.join(learned)}"
            )
        try:
            run_config(cfg, v.name, cfg.seeds[0])
        except ConfigError as err:
            raise ConfigError(f"{key}' ({v.name}): {err}") from None


def variant(cfg: CompareConfig, name: str) -> VariantConfig | None:
    """The variant called ``name`` (``None``: ``name`` is a subject)."""
    return next((v for v in cfg.variants if v.name == name), None)


def _merged(base: dict, update: dict) -> dict:
    """``base`` with ``update`` merged in recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_config(cfg: CompareConfig, model: str, seed: int) -> RunConfig:
    """The validated `fit` configuration of learned subject or variant ``model`` and ``seed``.

    ``train`` with ``seed``, ``task`` defaulting to autoencoder, ``model`` =
    ``train.model`` ∪ ``model_overrides[model]`` ∪ ``{cell: model}``, and the synthetic
    generator's seed set to ``data_seed``. A variant (:class:`VariantConfig`) is its base's
    configuration with the variant's ``train`` and ``model`` merged in recursively.
    """
    var = variant(cfg, model)
    raw = copy.deepcopy(cfg.train) if var is None else _merged(cfg.train, var.train)
    raw["seed"] = seed
    raw.setdefault("task", "autoencoder")
    if var is None:
        raw["model"] = {**raw.get("model", {}), **cfg.model_overrides.get(model, {}), "cell": model}
    else:
        base = {**raw.get("model", {}), **cfg.model_overrides.get(var.base, {})}
        raw["model"] = {**_merged(base, var.model), "cell": var.base}
    data = raw.setdefault("data", {})
    if data.get("source", "synthetic") == "synthetic":
        data["synthetic"] = {**data.get("synthetic", {}), "seed": cfg.data_seed}
    try:
        return config_from_dict(raw)
    except ConfigError as err:  # its keys are relative to 'train': say so
        raise ConfigError(f"compare config section 'train': {err}") from None
