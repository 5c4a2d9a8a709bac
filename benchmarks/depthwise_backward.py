"""The depthwise mixing's one-node backward against plain autograd, side by side in one run.

``MultiScaleDepthwise(fused=True)`` (the default) runs the dilated branches as one autograd
node whose backward is forward convolutions plus the weight gradient on the d×d phase
sub-grids; ``fused=False`` is one autograd convolution per branch. The size threshold
``FUSED_MIN_PIXELS`` is set to 0 here, so both paths are timed at every size (the library
uses plain autograd below it, where this benchmark found the fused path slower). Both are
timed interleaved (the order alternates per repeat), first the mixing alone
(fwd+bwd of the (B, H, W, r) map), then a whole FA training step of the benchmark's
autoencoder (``benchmarks/train_step.py``, same model, only the flag toggled). Medians and
minima in ms; ratio = plain / fused (how many times faster the fused path is).

    python benchmarks/depthwise_backward.py --md benchmarks/depthwise_backward_latest.md
    python benchmarks/depthwise_backward.py --grids 16x32 64x128 --filters 16 64 --repeats 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

from faconvlstm.files import atomic_write_text
from faconvlstm.layers import depthwise
from faconvlstm.layers.depthwise import MultiScaleDepthwise

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step as ts  # benchmarks/train_step.py: TrainStep, Row


def mixing_row(grid, r, batch, repeats):
    torch.manual_seed(0)
    module = MultiScaleDepthwise(r, (3, 3), (1, 2, 4))
    b = torch.randn(batch, *grid, r, requires_grad=True)
    g = torch.randn(batch, *grid, r)

    def run(fused):
        def fn():
            module.fused = fused
            b.grad = module.weight.grad = None
            module(b).backward(g)

        return fn

    return ts.time_interleaved({False: run(False), True: run(True)}, repeats)


def model_row(grid, filters, batch, repeats):
    args = argparse.Namespace(in_channels=3, embed_dim=16, horizon=4, steps=12)
    step = ts.TrainStep(ts.Row("autoencoder", grid, filters, batch, 1), "fa", args)
    mixings = [m for m in step.model.modules() if isinstance(m, MultiScaleDepthwise)]

    def run(fused):
        def fn():
            for m in mixings:
                m.fused = fused
            step()

        return fn

    return ts.time_interleaved({False: run(False), True: run(True)}, repeats)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grids", nargs="+", default=["16x32", "64x128", "128x256"])
    p.add_argument("--filters", nargs="+", type=int, default=[16, 64])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--md", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    depthwise.FUSED_MIN_PIXELS = 0  # time both paths at every size
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        "<!-- python benchmarks/depthwise_backward.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + " -->",
        "",
        f"Machine: torch {torch.__version__}, {os.cpu_count()} CPUs, {a.threads} thread(s), "
        f"load average {load} at start; batch {a.batch}, T = 12, rates (1, 2, 4), r = "
        "max(8, F // 4); ms are median (min) of "
        f"{a.repeats} interleaved runs; ratio = plain / fused medians.",
        "",
        "| what | grid | filters | r | plain ms | fused ms | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for grid_s in a.grids:
        grid = tuple(int(v) for v in grid_s.split("x"))
        for filters in a.filters:
            r = max(8, filters // 4)
            for what, times in (
                ("mixing fwd+bwd", mixing_row(grid, r, a.batch, a.repeats)),
                ("FA autoencoder step", model_row(grid, filters, a.batch, a.repeats)),
            ):
                plain, fused = statistics.median(times[False]), statistics.median(times[True])
                line = (
                    f"| {what} | {grid[0]}×{grid[1]} | {filters} | {r} | "
                    f"{plain:.2f} ({min(times[False]):.2f}) | {fused:.2f} "
                    f"({min(times[True]):.2f}) | {plain / fused:.2f}× |"
                )
                print(line, flush=True)
                lines.append(line)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines += ["", f"Load average at the end: {load}.", ""]
    if a.md is not None:
        atomic_write_text("\n".join(lines), a.md)


if __name__ == "__main__":
    main()
