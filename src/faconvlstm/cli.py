"""The ``faconvlstm`` command.

Subcommands::

    faconvlstm fit --config FILE [--out DIR] [--resume] [--set key=value ...]
    faconvlstm embed --ckpt CKPT [--data SOURCE] --out FILE.nc|FILE.zarr
    faconvlstm predict --ckpt CKPT [--data SOURCE] --out FILE.nc|FILE.zarr
    faconvlstm compare --config FILE [--out DIR] [--set key=value ...]
    faconvlstm demo [--out DIR]

``faconvlstm SUBCOMMAND --help`` lists every option with examples. Exit status: 0 done,
2 invalid configuration or arguments (nothing was trained or written), 1 training failed
(e.g. NaN loss; checkpoints written so far are intact), 143 stopped by SIGTERM after
saving ``last.ckpt`` (continue with ``--resume``).

Adding a subcommand: write ``_add_NAME(parser)`` (argparse only) and ``_run_NAME(args) ->
int`` functions here and register them with one ``register_subcommand`` line. ``_run_NAME``
imports what it needs inside the function, so ``faconvlstm --help`` imports nothing heavy;
an ``ImportError`` while a subcommand builds its options disables only that subcommand.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["main", "register_subcommand"]

_Fn = Callable[..., Any]


@dataclass
class _Subcommand:
    help: str
    add_arguments: _Fn
    run: _Fn
    examples: str = ""


_SUBCOMMANDS: dict[str, _Subcommand] = {}


def register_subcommand(
    name: str, help: str, add_arguments: _Fn, run: _Fn, examples: str = ""
) -> None:
    """Add ``faconvlstm NAME``: ``add_arguments(parser)`` defines its options, ``run(args)``
    executes it and returns the exit status (import heavy modules inside ``run``)."""
    if not (callable(add_arguments) and callable(run)):
        raise TypeError(f"subcommand {name!r}: add_arguments and run must be functions")
    _SUBCOMMANDS[name] = _Subcommand(help, add_arguments, run, textwrap.dedent(examples))


# ---------------------------------------------------------------------------------------
# fit / embed / predict


def _add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="run configuration (YAML), or the name of a shipped config (quick)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default: 'out' in the config, else runs/<task>)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from DIR/checkpoints/last.ckpt after an interruption",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a config value, e.g. --set trainer.max_epochs=2 (repeatable)",
    )
    p.add_argument(
        "--check", action="store_true", help="validate the configuration and exit without training"
    )


def _run_fit(args: argparse.Namespace) -> int:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from faconvlstm.training.config import load_config, validate_model_kwargs
    from faconvlstm.training.fit import fit, model_class

    cfg = load_config(args.config, args.overrides)
    if args.check:
        validate_model_kwargs(model_class(cfg.task), cfg.model)
        print(f"{args.config}: configuration is valid")
        return 0
    _quiet_lightning()
    try:
        fit(cfg, out=args.out, resume=args.resume)  # prints its start and closing lines
    except SIGTERMException:
        print(
            "faconvlstm fit: stopped by SIGTERM; last.ckpt saved, continue with --resume",
            file=sys.stderr,
        )
        return 143
    return 0


def _quiet_lightning() -> None:
    """Keep Lightning's warnings, drop its info banners (accelerator availability, tips,
    ``limit_*_batches`` notes, restore messages): ``fit`` prints its own summary."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # on --resume the checkpoint folder is expected to hold checkpoints
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # Lightning's own use of a torch pytree API torch deprecated: nothing the user can fix
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _add_inference(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, metavar="CKPT", help="checkpoint from `fit`")
    p.add_argument(
        "--data",
        metavar="SOURCE",
        help="NetCDF/Zarr path or URL, 'synthetic' or 'sample:sst' "
        "(default: the data the checkpoint was trained on)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file, .nc (NetCDF) or .zarr (Zarr); written atomically",
    )
    p.add_argument(
        "--years", type=int, nargs=2, metavar=("FIRST", "LAST"), help="only these years (inclusive)"
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda:0")


def _add_embed(p: argparse.ArgumentParser) -> None:
    _add_inference(p)
    p.add_argument(
        "--hidden",
        action="store_true",
        help="also write the last layer's hidden states to FILE.hidden.nc",
    )
    p.add_argument(
        "--attention",
        action="store_true",
        help="also write temporal and axial attention maps to FILE.attention.nc",
    )


def _run_embed(args: argparse.Namespace) -> int:
    from faconvlstm.training.infer import embed

    def run() -> str:
        paths = embed(
            args.ckpt,
            args.out,
            data=args.data,
            years=args.years,
            batch_size=args.batch_size,
            hidden=args.hidden,
            attention=args.attention,
            device=args.device,
        )
        return "\n".join(str(p) for p in paths)

    return _run_inference("embed", run)


def _run_inference(command: str, run: Callable[[], str]) -> int:
    """Run an inference command: its output on stdout and 0, or one line on stderr and
    2 (cannot write), 130 (Ctrl-C) or 143 (SIGTERM); nothing half-written either way."""
    from faconvlstm.training.infer import Terminated

    try:
        print(run())
    except Terminated:
        print(f"faconvlstm {command}: stopped by SIGTERM; nothing new written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"faconvlstm {command}: interrupted; nothing new written", file=sys.stderr)
        return 130
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise  # a missing input: main() reports it (exit 2)
        print(f"faconvlstm {command}: error: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0


def _add_predict(p: argparse.ArgumentParser) -> None:
    _add_inference(p)
    p.add_argument(
        "--stride", type=int, help="steps between forecast initialisations (default: the horizon)"
    )


def _run_predict(args: argparse.Namespace) -> int:
    from faconvlstm.training.infer import predict

    return _run_inference(
        "predict",
        lambda: str(
            predict(
                args.ckpt,
                args.out,
                data=args.data,
                years=args.years,
                batch_size=args.batch_size,
                stride=args.stride,
                device=args.device,
            )
        ),
    )


register_subcommand(
    "fit",
    "train a model from a YAML config",
    _add_fit,
    _run_fit,
    """
    examples:
      faconvlstm fit --config quick --out runs/quick      # a shipped config by name
      faconvlstm fit --config my_run.yaml --out runs/mine
      faconvlstm fit --config cfg.yaml --out runs/a --resume
      faconvlstm fit --config cfg.yaml --set trainer.max_epochs=2 --set model.cell=convlstm
      faconvlstm fit --config cfg.yaml --check            # validate only
    writes DIR/checkpoints/{last,best}.ckpt, DIR/csv/, DIR/tensorboard/, DIR/config.yaml
    """,
)
register_subcommand(
    "embed",
    "write per-time-step embeddings",
    _add_embed,
    _run_embed,
    """
    examples:
      faconvlstm embed --ckpt runs/quick/checkpoints/last.ckpt --out emb.nc
      faconvlstm embed --ckpt best.ckpt --data era5.zarr --years 2018 2020 --out emb.zarr
      faconvlstm embed --ckpt best.ckpt --out emb.nc --hidden --attention
    """,
)
register_subcommand(
    "predict",
    "write reconstructions / forecasts",
    _add_predict,
    _run_predict,
    """
    examples:
      faconvlstm predict --ckpt runs/quick/checkpoints/best.ckpt --out recon.nc
      faconvlstm predict --ckpt forecaster.ckpt --data test.nc --stride 1 --out fc.zarr
    """,
)


# ---------------------------------------------------------------------------------------
# compare / demo (faconvlstm.protocol)


def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="compare configuration (YAML), or a shipped name (compare_synthetic)",
    )
    p.add_argument("--out", metavar="DIR", help="output directory (default: 'out' in the config)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a value, e.g. --set train.trainer.max_epochs=2 (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _interruptible(run: Callable[[], int], name: str) -> int:
    """Run ``run()``; on SIGTERM (Lightning saved ``last.ckpt``) say how to resume."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    _quiet_lightning()
    try:
        return run()
    except SIGTERMException:
        print(
            f"faconvlstm {name}: stopped by SIGTERM; finished runs and the interrupted "
            "training's last.ckpt are kept: rerun the same command to resume",
            file=sys.stderr,
        )
        return 143


def _run_compare(args: argparse.Namespace) -> int:
    from faconvlstm.protocol.runs import compare

    command = "faconvlstm " + " ".join(sys.argv[1:]) if sys.argv[1:] else None

    def run() -> int:
        path = compare(
            args.config,
            args.out,
            overrides=args.overrides,
            command=command,
            progress=not args.no_progress,
        )
        print(f"results: {path}\nreport:  {path.parent / 'report.md'}")
        return 0

    return _interruptible(run, "compare")


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default="demo_out", metavar="DIR", help="output directory (default: demo_out)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_demo(args: argparse.Namespace) -> int:
    """The shipped ``compare_demo`` configuration (synthetic data, 3 seeds, a budget that
    finishes in about ten minutes on 2 CPU cores)."""
    import time

    from faconvlstm.protocol.runs import compare

    def run() -> int:
        start = time.perf_counter()
        path = compare(
            "compare_demo",
            args.out,
            command=f"faconvlstm demo --out {args.out}",
            progress=not args.no_progress,
        )
        minutes = (time.perf_counter() - start) / 60
        print(
            f"demo finished in {minutes:.1f} min\nresults: {path}\n"
            f"report:  {path.parent / 'report.md'}"
        )
        return 0

    return _interruptible(run, "demo")


register_subcommand(
    "compare",
    "FA vs ConvLSTM side by side (evaluation protocol)",
    _add_compare,
    _run_compare,
    """
    examples:
      faconvlstm compare --config compare_synthetic --out runs/compare
      faconvlstm compare --config compare_sst --out runs/sst          # observed SST, ENSO
      faconvlstm compare --config compare_forecast --out runs/forecast  # forecasters, WB2
      faconvlstm compare --config compare_ablation --out runs/ablation  # FA parts, one off each
      faconvlstm compare --config benchmark --out runs/benchmark        # longer record, ~1 h
      faconvlstm compare --config my_compare.yaml --set train.trainer.max_epochs=2
    writes DIR/results.json, DIR/report.md (rerun the same command to resume)
    """,
)
register_subcommand(
    "demo",
    "end-to-end demo on synthetic data",
    _add_demo,
    _run_demo,
    """
    examples:
      faconvlstm demo                       # writes demo_out/report.md
      faconvlstm demo --out runs/demo --no-progress
    """,
)


# ---------------------------------------------------------------------------------------


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the options of subcommand ``only`` are added (or all of
    them with ``only="*"``): the top-level ``--help`` then imports nothing heavy."""
    parser = argparse.ArgumentParser(
        prog="faconvlstm",
        description="FAConvLSTM: train, embed and forecast multivariate gridded climate data.",
        epilog="run `faconvlstm SUBCOMMAND --help` for a subcommand's options and examples",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, spec in _SUBCOMMANDS.items():
        p = sub.add_parser(
            name,
            help=spec.help,
            description=spec.help,
            epilog=spec.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if only in (name, "*"):
            spec.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``faconvlstm`` console script; returns the exit status."""
    from faconvlstm._optional import missing_dependency_message

    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if a in _SUBCOMMANDS), None)
    try:
        args = build_parser(chosen).parse_args(argv)
    except (ImportError, AttributeError) as err:
        reason = missing_dependency_message(err, extra="train") or err
        print(f"faconvlstm {chosen}: not available ({reason})", file=sys.stderr)
        return 2
    try:
        return int(_SUBCOMMANDS[args.command].run(args) or 0)
    except ImportError as err:  # the train extra is not installed: say so, no traceback
        hint = missing_dependency_message(err, extra="train")
        if hint is None:
            raise
        print(f"faconvlstm {args.command}: {hint}", file=sys.stderr)
        return 2
    except Exception as err:
        status = _exit_status(err)
        if status is None:
            raise
        kind = {1: "training stopped", 2: "error"}[status]
        print(f"faconvlstm {args.command}: {kind}: {err}", file=sys.stderr)
        return status


def _exit_status(err: Exception) -> int | None:
    """Exit status for an expected failure (None: a bug, let the traceback show)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from faconvlstm.training.checkpoint import CheckpointError
    from faconvlstm.training.modules import NonFiniteLossError

    if isinstance(err, NonFiniteLossError):
        return 1
    # a path the user gave that cannot be used (no permission, a file where a folder should
    # be, ...) is invalid input, like a missing file
    expected = (
        CheckpointError,
        FileNotFoundError,
        PermissionError,
        NotADirectoryError,
        FileExistsError,
        IsADirectoryError,
        KeyError,
        ValueError,
        MisconfigurationException,
    )  # ConfigError is a ValueError
    if isinstance(err, expected):
        return 2
    return None


if __name__ == "__main__":
    sys.exit(main())
