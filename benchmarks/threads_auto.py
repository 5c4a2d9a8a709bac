"""``threads: auto`` against PyTorch's default thread count, on a calm and a busy machine.

For each busy level N (``--busy 0 1 2``: N background processes that burn a CPU each, the
bounded load of ``train_step.py``), the load is started first and then, as a user's run
would, :func:`faconvlstm.runtime.choose_threads` picks the count. One whole-model training
step (``train_step.py``'s :class:`TrainStep`: forward + loss + backward + AdamW) of the FA
and the ConvLSTM autoencoder is then timed at PyTorch's default count and at the chosen
one, interleaved (median of ``--repeats``). Columns: ms per step, the speed-up of ``auto``
over the default (default ms / auto ms, > 1: auto is faster) per cell, and FA's speed ratio
over ConvLSTM under each setting.

    python benchmarks/threads_auto.py --md benchmarks/threads_auto_latest.md
    python benchmarks/threads_auto.py --grid 64x128 --busy 0 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from faconvlstm.runtime import choose_threads, runnable_others

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step as ts  # benchmarks/train_step.py: TrainStep, Row, busy_load


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One result per busy level: the chosen count and the four medians (ms)."""
    default = torch.get_num_threads()
    row = ts.Row("autoencoder", args.grid, args.filters, args.batch, default)
    step_args = argparse.Namespace(
        in_channels=args.in_channels, embed_dim=args.embed_dim, horizon=4, steps=args.steps
    )
    results = []
    try:
        for busy in args.busy:
            with ts.busy_load(busy, args.busy_seconds):
                time.sleep(args.settle)  # the burners are running before the choice
                torch.set_num_threads(default)
                others = runnable_others()
                chosen = choose_threads()
                steps = {cell: ts.TrainStep(row, cell, step_args) for cell in ts.CELLS}
                times: dict[tuple[str, int], list[float]] = {}
                settings = sorted({default, chosen}, reverse=True)
                for n in settings:  # warm-up at each count
                    torch.set_num_threads(n)
                    for step in steps.values():
                        step()
                for rep in range(args.repeats):
                    for n in settings if rep % 2 == 0 else settings[::-1]:
                        torch.set_num_threads(n)
                        for cell in ts.CELLS if rep % 2 == 0 else ts.CELLS[::-1]:
                            start = time.perf_counter()
                            steps[cell]()
                            ms = (time.perf_counter() - start) * 1e3
                            times.setdefault((cell, n), []).append(ms)
            med = {k: statistics.median(v) for k, v in times.items()}
            results.append(
                {
                    "busy": busy,
                    "others": others,
                    "default": default,
                    "chosen": chosen,
                    **{f"{c}_default_ms": med[(c, default)] for c in ts.CELLS},
                    **{f"{c}_auto_ms": med[(c, chosen)] for c in ts.CELLS},
                }
            )
    finally:
        torch.set_num_threads(default)
        ts._stop_all()
    return results


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| busy processes | runnable others seen | threads: default → auto "
        "| FA ms default / auto | auto speed-up FA | ConvLSTM ms default / auto "
        "| auto speed-up ConvLSTM | FA vs ConvLSTM: default / auto |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        fa_d, fa_a = r["fa_default_ms"], r["fa_auto_ms"]
        cl_d, cl_a = r["convlstm_default_ms"], r["convlstm_auto_ms"]
        lines.append(
            f"| {r['busy']} | {r['others']:.0f} | {r['default']} → {r['chosen']} "
            f"| {fa_d:.0f} / {fa_a:.0f} | {fa_d / fa_a:.2f}× | {cl_d:.0f} / {cl_a:.0f} "
            f"| {cl_d / cl_a:.2f}× | {cl_d / fa_d:.2f}× / {cl_a / fa_a:.2f}× |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ts.add_autoencoder_args(p)
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--busy-seconds", type=float, default=600.0, help="burners' own time limit")
    p.add_argument("--settle", type=float, default=1.0, help="s between load start and choice")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.repeats < 1 or min(args.busy) < 0:
        p.error("--repeats must be >= 1 and --busy levels >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = ts.autoencoder_machine_line(args, f", repeats={args.repeats}")
    print(f"# {machine}", flush=True)
    table = markdown_table(measure(args))
    print(table)
    if args.md:
        ts.write_markdown(Path(__file__).name, argv, machine, table, args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
