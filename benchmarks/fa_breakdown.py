"""Where one FAConvLSTM2D layer's time and memory go: its parts switched off one by one.

Issue 13 asks FA to win every whole-model row; this says which part of the FA step to
make cheaper first. One layer (``return_sequences=True``, 3×3 kernel, "same"), the same
seeded input, fwd+bwd of ``mean(y²)``, ConvLSTM2D and FA variants timed interleaved (the
order alternates per repeat, so machine noise hits all alike); ms = median (min). Memory
is what autograd saves for the backward of one forward (distinct storages,
``faconvlstm.evaluation.efficiency.saved_for_backward_mb``): deterministic, no allocator
noise; the peak of a training step is this plus parameters and transient buffers.

Variants (each a constructor argument of ``FAConvLSTM2D``, every other one the default):

* ``fa`` — the default layer (axial attention every 4 steps and at the last, SE, rates
  (1, 2, 4), peepholes, fused gates);
* ``fa, attention every step`` — ``attention_every=1``: what the forecaster's lead
  steps run (each lead time is a one-step call, and a call's last step is attended);
* ``- attention`` — ``attention_every=0``; ``- SE`` also ``se_ratio=0``; ``- rates 2, 4``
  also ``dilation_rates=(1,)``: one 3×3 depthwise branch;
* ``- fused gates`` — that minimal layer with ``fused=False`` (plain autograd gates);
* ``fa, gradient checkpointing`` — ``gradient_checkpointing=True`` (the steps are
  recomputed in the backward); ``fa, attention checkpointing`` —
  ``attention_checkpointing=True`` (only the attended steps' attention is).

Ratios are ConvLSTM / variant: how many times faster (or smaller) the variant is.

    python benchmarks/fa_breakdown.py --md benchmarks/fa_breakdown_latest.md
    python benchmarks/fa_breakdown.py --grids 64x128 --filters 64 --batch 4 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from faconvlstm import ConvLSTM2D, FAConvLSTM2D
from faconvlstm.evaluation.efficiency import saved_for_backward_mb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step as ts  # benchmarks/train_step.py: time_interleaved, load_text, write_markdown

_MINIMAL = {"attention_every": 0, "se_ratio": 0, "dilation_rates": (1,)}

#: (label, FAConvLSTM2D keyword arguments); ConvLSTM2D is the reference row
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("fa", {}),
    ("fa, attention every step", {"attention_every": 1}),
    ("fa - attention", {"attention_every": 0}),
    ("fa - attention - SE", {"attention_every": 0, "se_ratio": 0}),
    ("fa - attention - SE - rates 2, 4", _MINIMAL),
    ("fa - attention - SE - rates 2, 4 - fused gates", {**_MINIMAL, "fused": False}),
    ("fa, gradient checkpointing", {"gradient_checkpointing": True}),
    ("fa, attention checkpointing", {"attention_checkpointing": True}),
)


def build_layers(filters: int, in_channels: int) -> dict[str, torch.nn.Module]:
    """ConvLSTM2D and every FA variant, seeded, all with the same call semantics."""
    common = {"padding": "same", "return_sequences": True, "in_channels": in_channels}
    torch.manual_seed(0)
    layers: dict[str, torch.nn.Module] = {"convlstm": ConvLSTM2D(filters, 3, **common)}
    for label, kwargs in VARIANTS:
        torch.manual_seed(0)
        layers[label] = FAConvLSTM2D(filters, 3, **common, **kwargs)
    return layers


def _step(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).square().mean().backward()

    return run


def measure(
    grid: tuple[int, int], filters: int, batch: int, steps: int, in_channels: int, repeats: int
) -> list[dict[str, Any]]:
    """One row per layer: label, median and min ms, saved MiB, ratios to ConvLSTM."""
    layers = build_layers(filters, in_channels)
    x = torch.randn(batch, steps, in_channels, *grid, generator=torch.Generator().manual_seed(0))
    times = ts.time_interleaved({k: _step(v, x) for k, v in layers.items()}, repeats)
    saved = {k: saved_for_backward_mb(v, x) for k, v in layers.items()}
    ref_ms, ref_mb = statistics.median(times["convlstm"]), saved["convlstm"]
    rows = []
    for key in layers:
        ms = statistics.median(times[key])
        rows.append(
            {
                "grid": grid, "filters": filters, "batch": batch, "steps": steps,
                "layer": key, "ms": ms, "ms_min": min(times[key]), "saved_mb": saved[key],
                "speed_ratio": ref_ms / ms, "memory_ratio": ref_mb / saved[key],
            }
        )  # fmt: skip
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| grid | filters | layer | fwd+bwd ms | ConvLSTM / layer time | saved MiB "
        "| ConvLSTM / layer memory |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        h, w = r["grid"]
        lines.append(
            f"| {h}×{w} | {r['filters']} | {r['layer']} | {r['ms']:.1f} ({r['ms_min']:.1f}) "
            f"| {r['speed_ratio']:.2f}× | {r['saved_mb']:.1f} | {r['memory_ratio']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grids", nargs="+", type=ts._grid, default=[(16, 32), (64, 128)])
    p.add_argument("--filters", nargs="+", type=int, default=[16, 64])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=12, help="T")
    p.add_argument("--in-channels", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--md", type=Path, default=None, help="also write the table here")
    a = p.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(a.threads)
    machine = (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {a.threads} thread(s), "
        f"{ts.load_text()} at start; B={a.batch}, T={a.steps}, C={a.in_channels}; ms are "
        f"median (min) of {a.repeats} interleaved runs"
    )
    print(markdown([]), flush=True)  # the header; rows follow as they are measured
    try:
        rows = []
        for grid in a.grids:
            for filters in a.filters:
                block = measure(grid, filters, a.batch, a.steps, a.in_channels, a.repeats)
                print(markdown(block).split("\n", 2)[2], flush=True)
                rows += block
    finally:
        torch.set_num_threads(threads)
    table = markdown(rows) + f"\n\n{ts.load_text()} at the end."
    print(table.rsplit("\n", 1)[1])
    if a.md is not None:
        ts.write_markdown("fa_breakdown.py", argv, machine, table, a.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
