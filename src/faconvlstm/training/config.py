"""Typed run configuration: one YAML file describes data, model, optimisation and trainer.

The schema is a tree of dataclasses. :func:`load_config` reads YAML, applies ``--set``
overrides and validates every key and value *before* any data is opened or any model is
built: an unknown key or a value of the wrong type raises :class:`ConfigError` naming the
dotted key, the expected type and the keys that are accepted there.

A complete file (every section optional, defaults shown in the dataclasses below)::

    seed: 0
    task: autoencoder            # autoencoder | forecast
    data:
      source: synthetic          # synthetic | sample:sst | sample:z500 | path/URL (NetCDF, Zarr)
      synthetic: {n_years: 4}    # keyword arguments of faconvlstm.data.synthetic
      variables: null            # subset of data variables (null: all)
      window: 12                 # time steps per training sample
      horizon: 0                 # forecast lead steps (forecast task only)
      train_years: [2000, 2002]
      val_years: [2003, 2003]
      batch_size: 8
    model:                       # constructor arguments of the model (checked against it)
      cell: fa
      filters: [16, 16]
    optim: {lr: 0.001, weight_decay: 0.0, scheduler: none}
    loss: {latitude_weighted: true, regularization_weight: 1.0, teacher_forcing: 0.0,
           clustering: {weight: 0.0, warmup_epochs: 2, update_interval: epoch, n_init: 10},
           contrastive: {weight: 0.0, temperature: 0.1}}
    trainer: {max_epochs: 5, accelerator: cpu, devices: 1, strategy: auto, deterministic: true}
    checkpoint: {every_n_train_steps: 50}

The ``model`` section is not a fixed dataclass: it holds keyword arguments of the model
class chosen by ``task`` and is checked against that constructor's signature (see
:func:`validate_model_kwargs`), so every model option is available without being repeated here.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """An invalid configuration: the message names the dotted key and what was expected."""


@dataclass
class DataConfig:
    """Where the data comes from and how it is cut into samples.

    ``source``: ``"synthetic"`` (the built-in generator, with ``synthetic`` as its keyword
    arguments), ``"sample:sst"`` / ``"sample:z500"`` (the NetCDF samples shipped with
    ``eofs``), or a local path / fsspec URL to NetCDF or Zarr. Years are inclusive
    ``[first, last]`` and must not overlap. Without ``train_years`` training uses every
    year before the first validation/test year (all years if there are none); without
    ``val_years`` validation is the last ``val_fraction`` of the training period. The test
    years are never read by ``fit`` (they are for evaluation).
    ``climatology``: normalise anomalies from a day-of-year / monthly climatology of the
    training period (``true`` picks the kind from the time step).
    ``dims``: which dimension of the source is which, for names that are not recognised
    (e.g. ``{time: valid_time, lat: y, lon: x}``); passed to
    :func:`faconvlstm.data.open_gridded`.
    ``detrend``: also remove a per-channel, per-grid-point linear trend in time (least
    squares on the training period) before standardising; ``standardize``: ``"global"``
    (one σ per channel) or ``"season"`` (one per channel and DJF/MAM/JJA/SON, training
    period). Both are stored in the checkpoint's statistics and undone by
    ``denormalize_array`` (see :mod:`faconvlstm.data.stats` and docs/training.md).
    """

    source: str = "synthetic"
    dims: dict[str, str] | None = None
    synthetic: dict = field(default_factory=dict)
    variables: list[str] | None = None
    levels: list[float] | None = None
    window: int = 12
    horizon: int = 0
    stride: int = 1
    train_years: list[int] | None = None
    val_years: list[int] | None = None
    test_years: list[int] | None = None
    val_fraction: float = 0.2
    climatology: Union[bool, Literal["dayofyear", "month"]] = False  # noqa: UP007
    # non-stationarity options (issue 14), fitted on the training period
    detrend: bool = False
    standardize: Literal["global", "season"] = "global"
    batch_size: int = 8
    num_workers: int = 0
    shuffle: bool = True


@dataclass
class OptimConfig:
    """AdamW with an optional cosine learning-rate schedule (per optimiser step)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    scheduler: Literal["none", "cosine"] = "none"
    min_lr: float = 0.0


@dataclass
class MaskingConfig:
    """Masked spatio-temporal objective of the autoencoder task (``loss.masking``).

    During training a share ``fraction`` of the (t, lat, lon) cells of every window is
    hidden from the model's input (all channels of a cell; set to 0 in normalised units,
    i.e. the training mean, and passed to the model as invalid through its ``mask``
    argument), and the reconstruction loss is taken on the hidden cells only
    (``loss_on: hidden``) or on every valid cell (``all``). ``kind: random`` hides
    ``round(fraction·H·W)`` cells drawn uniformly at each time step; ``kind: block`` hides
    ``block = [h, w]`` rectangles of grid cells at random positions at each time step until
    at least ``fraction·H·W`` cells are hidden. ``fraction: 0`` (the default) is off: the
    objective is exactly the plain reconstruction. Masks come from a private generator
    seeded by (run seed, ``seed``, global step, micro-batch, rank), so a resumed run draws the
    same masks. Validation keeps the plain loss (``val/loss``) and logs the masked loss
    of fixed masks as ``val/masked_mse``. See docs/training.md.
    """

    fraction: float = 0.0
    kind: Literal["random", "block"] = "random"
    block: list[int] = field(default_factory=lambda: [4, 4])
    loss_on: Literal["hidden", "all"] = "hidden"
    seed: int = 0


@dataclass
class ClusteringConfig:
    r"""Joint deep clustering (DEC/IDEC) term of the autoencoder loss (``loss.clustering``).

    ``L = L_rec + weight · KL(P‖Q)``, ``Q`` the Student-t soft assignment of every
    embedding to the model's ``model.n_clusters`` centroids, ``P`` the sharpened target
    (:class:`faconvlstm.heads.ClusteringHead`). ``weight = 0`` (default): off.

    * ``warmup_epochs``: epochs of pure reconstruction; then the centroids are set by
      k-means (``seed`` of the run, ``n_init`` starts) on the embeddings of every training
      window and the KL term starts.
    * ``update_interval``: recompute ``P`` on the whole training set every this many
      optimiser steps, or ``"epoch"``: at the start of every epoch. ``P`` is held fixed in
      between (no gradient).
    """

    weight: float = 0.0
    warmup_epochs: int = 2
    update_interval: Union[int, Literal["epoch"]] = "epoch"  # noqa: UP007
    n_init: int = 10

    @property
    def enabled(self) -> bool:
        return self.weight > 0


@dataclass
class ForecastPretextConfig:
    r"""Forecasting pretext of the autoencoder task (``loss.forecast``).

    ``L = L_rec + weight · L_fc`` with

    .. math::
        L_{fc} = \frac1{\text{leads}}\sum_{\ell=1}^{\text{leads}}
            \mathrm{wMSE}\big(\hat x_{t+\ell\,|\,t},\ x_{t+\ell}\big)_{t=1..T-\ell},

    :math:`\hat x_{t+\ell|t}` the model's ``"forecast"`` output: the decoder, which reads the
    input only through the embeddings :math:`z_1..z_t`, also predicts the next ``leads``
    steps of every step inside the window (normalised units, latitude-weighted, invalid
    target cells ignored; targets after the window are not scored). The embeddings must
    then carry what is predictable about the coming days, not only what reconstructs
    today. ``weight = 0`` (default): off, the model and loss are exactly the plain
    autoencoder. On, the model gets ``forecast_leads = leads`` and a causal subspace head
    (``model.head_kwargs.causal`` is set to true unless given; ``false`` is refused, since
    the embedding of step t would then see the steps it predicts). Validation keeps
    ``val/loss`` the reconstruction objective and logs ``val/forecast_mse``.
    """

    weight: float = 0.0
    leads: int = 1

    @property
    def enabled(self) -> bool:
        return self.weight > 0


@dataclass
class ContrastiveConfig:
    r"""Window-contrastive term of the autoencoder loss (``loss.contrastive``).

    ``L = L_rec + weight · L_con``, :math:`L_{con}` the InfoNCE loss of
    :func:`faconvlstm.losses.window_contrastive_loss` on the model's per-step
    ``"embeddings"`` ``(B, T, E)``: the steps of one window are positives, the steps of the
    batch's other windows negatives, cosine similarity at ``temperature`` :math:`\tau`.
    It asks the code for what persists over a window and tells windows apart (a
    persistent regime, a slow oscillation), which reconstructing each day does not.
    ``weight = 0`` (default): off, exactly the plain autoencoder. Validation keeps
    ``val/loss`` the reconstruction objective and logs ``val/contrastive``. Steps whose
    every cell is missing do not take part. Needs ``data.batch_size >= 2``.
    """

    weight: float = 0.0
    temperature: float = 0.1

    @property
    def enabled(self) -> bool:
        return self.weight > 0


@dataclass
class LossConfig:
    """Training objective: latitude-weighted masked MSE + model regularisation
    (+ the joint clustering term ``clustering``, see :class:`ClusteringConfig`; + the
    forecasting pretext ``forecast``, see :class:`ForecastPretextConfig`; + the
    window-contrastive term ``contrastive``, see :class:`ContrastiveConfig`).

    ``teacher_forcing`` is the probability of feeding the true previous step to an
    autoregressive forecaster during training (scheduled sampling; forecast task only).
    """

    latitude_weighted: bool = True
    regularization_weight: float = 1.0
    teacher_forcing: float = 0.0
    # masked spatio-temporal objective (autoencoder task; issue 14), see MaskingConfig
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    forecast: ForecastPretextConfig = field(default_factory=ForecastPretextConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)

    def __post_init__(self) -> None:
        # rebuilt from a checkpoint's plain hyperparameters
        if isinstance(self.masking, dict):
            self.masking = MaskingConfig(**self.masking)
        if isinstance(self.clustering, dict):
            self.clustering = ClusteringConfig(**self.clustering)
        if isinstance(self.forecast, dict):
            self.forecast = ForecastPretextConfig(**self.forecast)
        if isinstance(self.contrastive, dict):
            self.contrastive = ContrastiveConfig(**self.contrastive)


@dataclass
class TrainerConfig:
    """Arguments of ``lightning.Trainer``, with the defaults of a faconvlstm run.

    The fields below are the common ones. Any other argument of ``lightning.Trainer`` may
    be given too (checked against its signature, e.g. ``benchmark: true``, ``profiler:
    simple``, ``max_time: "00:12:00:00"``); they are kept in ``extra`` and written back
    inline by :meth:`RunConfig.to_dict`. ``callbacks``, ``logger`` (added to the CSV and
    TensorBoard loggers) and ``profiler`` also take LightningCLI-style specs
    ``{class_path: lightning.pytorch.callbacks.EarlyStopping, init_args: {...}}``; the
    class must live in ``lightning.pytorch.callbacks`` / ``.loggers`` / ``.profilers`` (see
    :data:`SPEC_MODULES`): a configuration file never imports other code. Your own callbacks
    go to :func:`faconvlstm.training.fit` (``callbacks=[...]``). Arguments faconvlstm sets
    itself (:data:`TRAINER_RESERVED`) are refused.

    ``strategy: ddp`` with ``devices: N`` trains on N processes (GPUs, or CPU with gloo);
    ``num_nodes`` for multi-node jobs launched by torchrun or SLURM (see the README).
    """

    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = "auto"  # noqa: UP007 (readable in error messages)
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Union[str, int] = "32-true"  # noqa: UP007
    deterministic: bool = True
    limit_train_batches: Union[int, float] = 1.0  # noqa: UP007
    limit_val_batches: Union[int, float] = 1.0  # noqa: UP007
    val_check_interval: Union[int, float] | None = None  # noqa: UP007
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0
    log_every_n_steps: int = 10
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    enable_progress_bar: bool = True
    extra: dict = field(default_factory=dict)


#: ``lightning.Trainer`` arguments a run file may not set: faconvlstm owns the output
#: directory, the checkpoints (``checkpoint`` section), the atomic checkpoint I/O and the
#: data sharding.
TRAINER_RESERVED = (
    "default_root_dir",
    "enable_checkpointing",
    "plugins",
    "use_distributed_sampler",
)

#: Where ``class_path`` specs of ``trainer.callbacks`` / ``logger`` / ``profiler`` may
#: point: Lightning's own classes only, so a configuration file cannot run arbitrary code.
SPEC_MODULES = {
    "callbacks": ("lightning.pytorch.callbacks",),
    "logger": ("lightning.pytorch.loggers",),
    "profiler": ("lightning.pytorch.profilers",),
}


@dataclass
class CheckpointConfig:
    """``best.ckpt`` (lowest ``monitor``) and ``last.ckpt`` (every ``every_n_train_steps``
    optimiser steps, every epoch end, and on SIGTERM) under ``<out>/checkpoints``."""

    monitor: str = "val/loss"
    every_n_train_steps: int | None = 50


@dataclass
class RunConfig:
    """The whole run. ``out`` is the output directory (``--out`` on the command line wins).

    ``threads``: PyTorch CPU threads per process during the run (``torch.set_num_threads``,
    restored afterwards). ``auto`` (the default): PyTorch's count lowered by the cores other
    running jobs hold now (:func:`faconvlstm.runtime.choose_threads`), unless
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is set; an integer: that many; ``null``: leave
    PyTorch's setting as it is. On a busy machine spinning OpenMP threads can slow training
    up to tenfold, and FA's many small ops suffer most.
    """

    seed: int = 0
    task: Literal["autoencoder", "forecast"] = "autoencoder"
    out: str | None = None
    threads: int | Literal["auto"] | None = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (YAML/JSON/``weights_only`` safe); ``trainer.extra`` inline."""
        out = dataclasses.asdict(self)
        out["trainer"].update(out["trainer"].pop("extra"))
        return out


# ---------------------------------------------------------------------------------------
# type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Whether a YAML value fits an annotation (ints are accepted for floats, not bools)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):  # a str is a Sequence, but never a list
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and Ellipsis not in typing.get_args(tp):
            return len(value) == len(args) and all(map(_matches, value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # an annotation we cannot check (a class, a callable...): accept


def _check(value: Any, tp: Any, key: str) -> None:
    if not _matches(value, tp):
        raise ConfigError(
            f"config key '{key}': expected {_type_name(tp)}, got {type(value).__name__} ({value!r})"
        )


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating keys and types recursively."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config section '{prefix or '<top level>'}': expected a mapping, "
            f"got {type(raw).__name__} ({raw!r})"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is TrainerConfig:
        raw = dict(raw)
        extra = {k: raw.pop(k) for k in list(raw) if k not in fields or k == "extra"}
        fields.pop("extra")
        raw["extra"] = _trainer_extra(extra, list(fields))
        fields["extra"] = None
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"section '{prefix}'" if prefix else "the top level"
        raise ConfigError(
            f"unknown config key '{_join(prefix, unknown[0])}' in {where}; "
            f"accepted keys: {', '.join(fields)}"
        )
    missing = [
        n
        for n, f in fields.items()
        if f is not None
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and n not in raw
    ]
    if missing:
        raise ConfigError(f"config key '{_join(prefix, missing[0])}' is required; it is missing")
    kwargs = {}
    for name, value in raw.items():
        tp = hints[name]
        key = _join(prefix, name)
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        else:
            _check(value, tp, key)
            kwargs[name] = value
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _trainer_extra(extra: dict, fields: list[str]) -> dict:
    """Validate ``trainer`` keys beyond the :class:`TrainerConfig` fields against
    ``lightning.Trainer.__init__`` (names, simple types, ``class_path`` specs)."""
    if not extra:
        return {}
    import lightning as L

    params = [n for n in inspect.signature(L.Trainer.__init__).parameters if n != "self"]
    accepted = fields + [n for n in params if n not in fields and n not in TRAINER_RESERVED]
    try:
        hints = typing.get_type_hints(L.Trainer.__init__)
    except Exception:  # unresolvable annotations: names are still checked
        hints = {}
    for name, value in extra.items():
        key = f"trainer.{name}"
        if name in TRAINER_RESERVED:
            raise ConfigError(
                f"config key '{key}' is set by faconvlstm itself (the output directory, "
                "checkpoints and data sharding are its job); remove it (--out, the "
                "'checkpoint' section)"
            )
        if name not in accepted:
            raise ConfigError(
                f"unknown config key '{key}' in section 'trainer' (not an argument of "
                f"lightning.Trainer); accepted keys: {', '.join(accepted)}"
            )
        if name in SPEC_MODULES and (isinstance(value, (dict, list))):
            for i, spec in enumerate(value if isinstance(value, list) else [value]):
                resolve_spec(spec, name, f"{key}[{i}]" if isinstance(value, list) else key)
        elif name in ("callbacks", "logger") and value is not None and not isinstance(value, bool):
            raise ConfigError(
                f"config key '{key}': expected a list of {{class_path: ..., init_args: ...}} "
                f"mappings, got {type(value).__name__} ({value!r})"
            )
        elif name in hints:
            _check(value, hints[name], key)
    return dict(extra)


def resolve_spec(spec: Any, kind: str, key: str) -> tuple[type, dict]:
    """``{class_path, init_args}`` -> (class, init_args), checked: the class must live in
    one of :data:`SPEC_MODULES` ``[kind]`` and the init_args must be its arguments."""
    import importlib

    if (
        not isinstance(spec, dict)
        or "class_path" not in spec
        or not set(spec) <= {"class_path", "init_args"}
    ):
        raise ConfigError(
            f"config key '{key}': expected a mapping {{class_path: ..., init_args: {{...}}}}, "
            f"got {spec!r}"
        )
    path, init_args = str(spec["class_path"]), spec.get("init_args") or {}
    allowed = SPEC_MODULES[kind]
    module_name, _, attr = path.rpartition(".")
    if not any(module_name == m or module_name.startswith(m + ".") for m in allowed):
        raise ConfigError(
            f"config key '{key}.class_path': {path!r} is not in {', '.join(allowed)}; a "
            "configuration file only instantiates Lightning's own classes (pass your own "
            "callbacks to faconvlstm.training.fit(callbacks=[...]))"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"config key '{key}.class_path': no class {path!r}") from None
    if not isinstance(init_args, dict):
        raise ConfigError(f"config key '{key}.init_args': expected a mapping, got {init_args!r}")
    _check_signature(cls.__init__, init_args, f"{key}.init_args", path, skip=())
    return cls, init_args


# ---------------------------------------------------------------------------------------
# loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps
    the last one silently, so a forgotten earlier line would win without a word)."""

    where = "the configuration"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    raise ConfigError(
                        f"{self.where}: key '{key}' is given twice (lines {first[key]} and "
                        f"{line}); keep one"
                    )
                first[key] = line
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` that also refuses duplicate keys; errors name ``where``.

    Raises:
        ConfigError: invalid YAML, a tag that is not plain data (``!!python/...``), or a
            key given twice in one mapping.
    """
    loader = _UniqueKeyLoader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_reason(err)}") from None
    finally:
        loader.dispose()


def _yaml_reason(err: yaml.YAMLError) -> str:
    """PyYAML's multi-line report as one line: the problem and where it is."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    hint = (
        "; only plain values (numbers, strings, lists, mappings) are accepted"
        if "constructor for the tag" in problem
        else ""
    )
    return f"{problem}{where}{hint}"


def parse_overrides(overrides: list[str] | None) -> dict:
    """``["trainer.max_epochs=2", "model.filters=[8, 8]"]`` -> nested dict (values YAML-parsed)."""
    tree: dict = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form dotted.key=value")
        key, text = item.split("=", 1)
        node = tree
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_yaml(text, f"override '{item}'")
    return tree


def _merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, recursively: a nested mapping (``data.synthetic``
    included) is merged key by key, so ``--set data.synthetic.nlat=8`` changes one key and
    keeps the others; a non-mapping value replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config_path(name: str | Path) -> Path:
    """A config path as given, or the name of a shipped config (``quick`` -> ``quick.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    from importlib import resources

    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    shipped = resources.files("faconvlstm") / "configs" / f"{stem}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(f"config file '{name}' not found (and no shipped config named '{stem}')")


def config_from_dict(raw: dict) -> RunConfig:
    """Validate a nested dict into a :class:`RunConfig` (raises :class:`ConfigError`)."""
    cfg = _build(RunConfig, raw, "")
    _check_consistency(cfg)
    return cfg


def load_config(source: str | Path | dict, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file (or take a dict), apply dotted ``overrides`` and validate."""
    return config_from_dict(read_config_mapping(source, overrides))


def read_config_mapping(source: str | Path | dict, overrides: list[str] | None = None) -> dict:
    """The raw mapping of a config file (path or shipped name) or dict, with the dotted
    ``overrides`` merged in: the reading and merge rule every faconvlstm config shares
    (validate it with :func:`build_dataclass`)."""
    if isinstance(source, dict):
        raw = source
    else:
        path = resolve_config_path(source)
        raw = parse_yaml(path.read_text(), str(path)) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return _merge(raw, parse_overrides(overrides))


def build_dataclass(cls: type, raw: dict | None, prefix: str = "") -> Any:
    """Validate a mapping into the config dataclass ``cls`` (nested dataclasses too): an
    unknown key or a wrong type raises :class:`ConfigError` naming the dotted key."""
    return _build(cls, raw, prefix)


def _check_consistency(cfg: RunConfig) -> None:
    d = cfg.data
    for name in ("window", "stride", "batch_size"):
        if getattr(d, name) < 1:
            raise ConfigError(f"config key 'data.{name}': must be >= 1, got {getattr(d, name)}")
    if cfg.task == "forecast" and d.horizon < 1:
        raise ConfigError("config key 'data.horizon': the forecast task needs horizon >= 1")
    if cfg.task == "autoencoder" and d.horizon != 0:
        raise ConfigError("config key 'data.horizon': must be 0 for the autoencoder task")
    for name in ("train_years", "val_years", "test_years"):
        years = getattr(d, name)
        if years is not None and (len(years) != 2 or years[0] > years[1]):
            raise ConfigError(f"config key 'data.{name}': expected [first, last], got {years}")
    check_threads(cfg.threads, "threads")
    if not 0.0 <= cfg.loss.teacher_forcing <= 1.0:
        raise ConfigError("config key 'loss.teacher_forcing': must lie in [0, 1]")
    _check_masking(cfg)
    if not 0.0 < d.val_fraction < 1.0:
        raise ConfigError(
            f"config key 'data.val_fraction': the share of the training period held out for "
            f"validation must lie strictly between 0 and 1, got {d.val_fraction}"
        )
    if d.dims is not None and not set(d.dims) <= {"time", "lat", "lon", "level"}:
        raise ConfigError(
            f"config key 'data.dims': keys are the roles time, lat, lon, level (values: the "
            f"dimension names in the data), got {sorted(d.dims)}"
        )
    _check_budget(cfg.trainer)
    _check_clustering(cfg)
    _check_forecast_pretext(cfg)
    _check_contrastive(cfg)
    _check_signature(
        _synthetic_fn(), d.synthetic, "data.synthetic", "faconvlstm.data.synthetic", skip=()
    )


def check_threads(threads: object, key: str) -> None:
    """``threads`` is an integer ≥ 1, ``auto`` or null."""
    ok = threads is None or threads == "auto"
    ok = ok or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1)
    if not ok:
        raise ConfigError(
            f"config key '{key}': must be an integer >= 1, 'auto' (chosen for the machine's "
            f"load) or null (PyTorch's setting unchanged), got {threads!r}"
        )


def _check_masking(cfg: RunConfig) -> None:
    """``loss.masking``: a share in [0, 1), a block of two sizes >= 1, autoencoder only."""
    m = cfg.loss.masking
    if not 0.0 <= m.fraction < 1.0:
        raise ConfigError(
            f"config key 'loss.masking.fraction': the share of input cells hidden must lie "
            f"in [0, 1) (0 = off), got {m.fraction}"
        )
    if len(m.block) != 2 or min(m.block) < 1:
        raise ConfigError(
            f"config key 'loss.masking.block': expected [h, w], two grid-cell counts >= 1, "
            f"got {m.block}"
        )
    if m.fraction > 0 and cfg.task != "autoencoder":
        raise ConfigError(
            f"config key 'loss.masking.fraction': masking is an objective of the autoencoder "
            f"task; set it to 0 for task {cfg.task!r}"
        )


def _check_budget(t: TrainerConfig) -> None:
    """A run must train at least one step and must end."""
    if t.max_epochs == 0 or t.max_epochs < -1:
        raise ConfigError(
            f"config key 'trainer.max_epochs': must be >= 1 (or -1 with trainer.max_steps > 0), "
            f"got {t.max_epochs}; a run of no epochs trains nothing and writes no checkpoint"
        )
    if t.max_steps == 0 or t.max_steps < -1:
        raise ConfigError(
            f"config key 'trainer.max_steps': must be >= 1, or -1 for no step limit, got "
            f"{t.max_steps}"
        )
    if t.max_epochs == -1 and t.max_steps == -1:
        raise ConfigError(
            "config keys 'trainer.max_epochs' and 'trainer.max_steps' are both -1: the run "
            "would never end; set one of them"
        )
    if t.limit_train_batches == 0:
        raise ConfigError(
            "config key 'trainer.limit_train_batches': 0 trains nothing; use a positive "
            "number of batches or a fraction in (0, 1]"
        )


def _check_clustering(cfg: RunConfig) -> None:
    """``loss.clustering`` and ``model.n_clusters`` go together (one switch: both or none)."""
    c = cfg.loss.clustering
    key = "loss.clustering"
    if c.weight < 0:
        raise ConfigError(f"config key '{key}.weight': must be >= 0 (0: off), got {c.weight}")
    if c.warmup_epochs < 0:
        raise ConfigError(f"config key '{key}.warmup_epochs': must be >= 0, got {c.warmup_epochs}")
    if c.update_interval != "epoch" and c.update_interval < 1:
        raise ConfigError(
            f"config key '{key}.update_interval': optimiser steps >= 1 or 'epoch', got "
            f"{c.update_interval}"
        )
    if c.n_init < 4:
        raise ConfigError(f"config key '{key}.n_init': k-means starts >= 4, got {c.n_init}")
    n_clusters = cfg.model.get("n_clusters")
    if c.enabled and cfg.task != "autoencoder":
        raise ConfigError(
            f"config key '{key}.weight': joint clustering trains the autoencoder task only; "
            f"set it to 0 for task {cfg.task!r}"
        )
    if c.enabled and n_clusters is None:
        raise ConfigError(
            f"config key '{key}.weight' is {c.weight} but 'model.n_clusters' is not set: "
            "give the number of clusters k (e.g. --set model.n_clusters=4), or set the "
            "weight to 0"
        )
    if not c.enabled and n_clusters is not None:
        raise ConfigError(
            f"config key 'model.n_clusters' is {n_clusters} but '{key}.weight' is 0, so the "
            "centroids would never be trained or even initialised: set "
            f"{key}.weight > 0 (e.g. 0.1), or remove model.n_clusters"
        )
    epochs = cfg.trainer.max_epochs
    if c.enabled and epochs != -1 and c.warmup_epochs >= epochs:
        raise ConfigError(
            f"config key '{key}.warmup_epochs': {c.warmup_epochs} warm-up epochs leave none of "
            f"trainer.max_epochs = {epochs} for clustering; lower it or train longer"
        )


def _check_forecast_pretext(cfg: RunConfig) -> None:
    """``loss.forecast``: weight >= 0, 1 <= leads < window, autoencoder only, causal head."""
    f = cfg.loss.forecast
    key = "loss.forecast"
    if f.weight < 0:
        raise ConfigError(f"config key '{key}.weight': must be >= 0 (0: off), got {f.weight}")
    if "forecast_leads" in cfg.model:
        raise ConfigError(
            "config key 'model.forecast_leads': set by the forecasting pretext itself; use "
            f"{key}.weight (> 0 turns it on) and {key}.leads instead"
        )
    if not f.enabled:
        return
    if cfg.task != "autoencoder":
        raise ConfigError(
            f"config key '{key}.weight': the forecasting pretext trains the autoencoder task "
            f"(task {cfg.task!r} forecasts already); set it to 0"
        )
    if not 1 <= f.leads < cfg.data.window:
        raise ConfigError(
            f"config key '{key}.leads': the steps predicted after each step must lie in "
            f"[1, data.window - 1] = [1, {cfg.data.window - 1}] (a target must fall inside "
            f"the window), got {f.leads}"
        )
    head = cfg.model.get("head_kwargs") or {}
    if isinstance(head, dict) and head.get("causal", True) is not True:
        raise ConfigError(
            f"config key 'model.head_kwargs.causal' is {head.get('causal')!r} but "
            f"{key}.weight is {f.weight}: with bidirectional temporal attention the "
            "embedding of step t sees the steps it is asked to predict. Remove the key "
            f"(the pretext makes the head causal) or set {key}.weight to 0"
        )


def _check_contrastive(cfg: RunConfig) -> None:
    """``loss.contrastive``: weight >= 0, temperature > 0, autoencoder only, batch >= 2."""
    c = cfg.loss.contrastive
    key = "loss.contrastive"
    if c.weight < 0:
        raise ConfigError(f"config key '{key}.weight': must be >= 0 (0: off), got {c.weight}")
    if not c.temperature > 0:
        raise ConfigError(
            f"config key '{key}.temperature': must be > 0 (0.1 is the usual value), "
            f"got {c.temperature}"
        )
    if not c.enabled:
        return
    if cfg.task != "autoencoder":
        raise ConfigError(
            f"config key '{key}.weight': the window-contrastive term trains the autoencoder "
            f"task's embeddings (task {cfg.task!r} has none); set it to 0"
        )
    if cfg.data.batch_size < 2:
        raise ConfigError(
            f"config key 'data.batch_size' is {cfg.data.batch_size} but {key}.weight is "
            f"{c.weight}: the contrastive term needs other windows in the batch as "
            "negatives; use a batch of 2 or more"
        )


def _synthetic_fn() -> Any:
    from faconvlstm.data.synthetic import synthetic

    return synthetic


# ---------------------------------------------------------------------------------------
# model section


_FROM_DATA = {"in_channels", "horizon", "grid"}

#: Arguments of a recurrent layer that the encoder sets itself (not ``layer_kwargs``).
_SET_BY_ENCODER = (
    "filters",
    "kernel_size",
    "padding",
    "return_sequences",
    "return_state",
    "in_channels",
    "boundary",
)


def _check_signature(
    fn: Any, kwargs: dict, section: str, target: str, skip: tuple[str, ...]
) -> None:
    """Check a mapping of keyword arguments against ``fn``'s signature (names and simple
    types), naming the dotted key and the accepted names."""
    params = {n: p for n, p in inspect.signature(fn).parameters.items() if n != "self"}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if n not in skip
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: names are still checked
        hints = {}
    for name, value in kwargs.items():
        key = f"{section}.{name}"
        if name in skip:
            raise ConfigError(f"config key '{key}' is set by faconvlstm itself; remove it")
        if name not in accepted:
            raise ConfigError(
                f"unknown config key '{key}' for {target}; accepted keys: {', '.join(accepted)}"
            )
        if name in hints:
            _check(value, hints[name], key)


def validate_layer_kwargs(model: dict) -> None:
    """Check ``model.layer_kwargs`` against the constructor of the chosen cell's layer
    (``model.cell``, default ``"fa"``), so a typo fails before any data are opened."""
    from faconvlstm.layers.registry import CELLS, cell_class

    layer_kwargs = model.get("layer_kwargs") or {}
    if not isinstance(layer_kwargs, dict) or not layer_kwargs:
        return
    cell = model.get("cell", "fa")
    if cell not in CELLS:
        raise ConfigError(
            f"config key 'model.cell': unknown cell {cell!r}; accepted: {', '.join(CELLS)}"
        )
    cls = cell_class(cell)
    _check_signature(
        cls.__init__, layer_kwargs, "model.layer_kwargs", cls.__name__, skip=_SET_BY_ENCODER
    )


def validate_model_kwargs(model_cls: type, kwargs: dict) -> None:
    """Check the ``model`` section against ``model_cls.__init__`` (names and simple types),
    and ``model.layer_kwargs`` against the chosen cell's layer (:func:`validate_layer_kwargs`).

    ``in_channels``, ``horizon`` and ``grid`` come from the data and may not be given here.
    """
    for name in sorted(_FROM_DATA & set(kwargs)):
        raise ConfigError(
            f"config key 'model.{name}' is set from the data (channels / data.horizon / the "
            "grid); remove it"
        )
    _check_signature(
        model_cls.__init__, kwargs, "model", model_cls.__name__, skip=tuple(sorted(_FROM_DATA))
    )
    validate_layer_kwargs(kwargs)
