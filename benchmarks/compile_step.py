"""``torch.compile`` of whole-model training steps, FA and ConvLSTM, eager and compiled.

The four steps (``train_step.py``'s :class:`TrainStep`: forward + loss + backward + AdamW of
a one-layer autoencoder; for the compiled ones the model's forward is
``torch.compile(model)``, default inductor backend) are built, compiled on their first
calls (the compile time is reported, from a fresh inductor cache unless ``--warm-cache``),
then timed interleaved in one run (median of ``--repeats``). Ratios: eager ms / compiled
ms per cell (> 1: compiling helps), and FA's speed ratio over ConvLSTM (ConvLSTM ms / FA
ms), eager and compiled.

    python benchmarks/compile_step.py --md benchmarks/compile_step_latest.md   # demo's size
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step as ts  # benchmarks/train_step.py: TrainStep, Row


class CompiledStep:
    """A :class:`TrainStep` whose model forward runs through ``torch.compile``."""

    def __init__(self, step: Any) -> None:
        self.step = step
        self.forward = torch.compile(step.model)

    def __call__(self) -> float:
        s = self.step
        s.opt.zero_grad(set_to_none=True)
        out = self.forward(s.x, times=s.times)
        loss = (out["recon"] - s.x).square().mean() + s.model.regularization_loss()
        loss.backward()
        s.opt.step()
        return float(loss.detach())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    row = ts.Row("autoencoder", args.grid, args.filters, args.batch, args.threads)
    step_args = argparse.Namespace(
        in_channels=args.in_channels, embed_dim=args.embed_dim, horizon=4, steps=args.steps
    )
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        steps: dict[tuple[str, str], Any] = {}
        first_s: dict[str, float] = {}
        for cell in ts.CELLS:
            steps[(cell, "eager")] = ts.TrainStep(row, cell, step_args)
            steps[(cell, "compiled")] = CompiledStep(ts.TrainStep(row, cell, step_args))
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            step()  # the second call: a recompile on changed grad state would show here
            first_s["/".join(key)] = time.perf_counter() - start
        times: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
        keys = list(steps)
        for rep in range(args.repeats):
            for key in keys if rep % 2 == 0 else keys[::-1]:
                start = time.perf_counter()
                steps[key]()
                times[key].append((time.perf_counter() - start) * 1e3)
    finally:
        torch.set_num_threads(before)
    return {
        "ms": {"/".join(k): statistics.median(v) for k, v in times.items()},
        "first_two_steps_s": first_s,
    }


def markdown_table(res: dict[str, Any]) -> str:
    ms, first = res["ms"], res["first_two_steps_s"]
    lines = [
        "| cell | eager ms | compiled ms | eager / compiled | compile (first two steps) s |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell, label in (("convlstm", "ConvLSTM"), ("fa", "FA")):
        e, c = ms[f"{cell}/eager"], ms[f"{cell}/compiled"]
        lines.append(
            f"| {label} | {e:.0f} | {c:.0f} | {e / c:.2f}× | {first[f'{cell}/compiled']:.0f} |"
        )
    eager = ms["convlstm/eager"] / ms["fa/eager"]
    compiled = ms["convlstm/compiled"] / ms["fa/compiled"]
    lines.append(f"| FA speed ratio over ConvLSTM | {eager:.2f}× | {compiled:.2f}× | | |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ts.add_autoencoder_args(p)
    p.add_argument("--threads", type=int, default=1, help="the demo's one thread")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument(
        "--warm-cache",
        action="store_true",
        help="use inductor's usual cache (default: a fresh one, so compile time is a first run's)",
    )
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = ts.autoencoder_machine_line(args, f", threads={args.threads}, repeats={args.repeats}")
    print(f"# {machine}", flush=True)
    cache = None if args.warm_cache else tempfile.mkdtemp(prefix="inductor-")
    if cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    try:
        table = markdown_table(measure(args))
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    print(table)
    if args.md:
        ts.write_markdown(Path(__file__).name, argv, machine, table, args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
