"""Cost of FAConvLSTM2D vs ConvLSTM2D, side by side in one run.

Prints parameters, FLOPs (torch.utils.flop_counter), forward and forward+backward wall
time, and the peak memory of a training step for both layers, plus the ConvLSTM/FA ratios
(how many times cheaper FA is), at several grid sizes. Timed runs of the two layers are
interleaved; times are the minimum of ``--repeats``.

    python benchmarks/layer_cost.py                      # the README table (docs/design.md §5 bar)
    python benchmarks/layer_cost.py --grids 32x64 64x128 128x256 --steps 12
    python benchmarks/layer_cost.py --device cuda --grids 721x1440 --batch 1 --no-flops
    python benchmarks/layer_cost.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from faconvlstm.evaluation.efficiency import layer_costs, ratios


def _grid(text: str) -> tuple[int, int]:
    try:
        h, w = text.lower().split("x")
        return int(h), int(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like 64x128, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grids", type=_grid, nargs="+", default=[(64, 128)], help="HxW grids")
    p.add_argument("--steps", type=int, nargs="+", default=[12], help="sequence lengths T")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--in-channels", type=int, default=8)
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--kernel-size", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-flops", action="store_true")
    p.add_argument("--json", help="also write all numbers to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    print(
        f"# B={args.batch} C={args.in_channels} F={args.filters} k={args.kernel_size} "
        f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"cpus={os.cpu_count()}"
    )
    header = (
        f"{'grid':>9} {'T':>3} {'layer':>9} {'params':>9} {'GFLOP f+b':>10} "
        f"{'fwd ms':>9} {'f+b ms':>9} {'saved MiB':>9} {'peak MiB':>9}"
    )
    print(header)
    for h, w in args.grids:
        for steps in args.steps:
            res = layer_costs(
                in_channels=args.in_channels,
                filters=args.filters,
                kernel_size=args.kernel_size,
                batch=args.batch,
                steps=steps,
                height=h,
                width=w,
                repeats=args.repeats,
                device=args.device,
                memory=not args.no_memory,
                flops=not args.no_flops,
            )
            rat = ratios(res)
            for kind in ("convlstm", "fa"):
                r = res[kind]
                flops = r["flops_fwd_bwd"] / 1e9 if r["flops_fwd_bwd"] is not None else float("nan")
                mem = r["peak_mem_mb"] if r["peak_mem_mb"] is not None else float("nan")
                print(
                    f"{h:>4}x{w:<4} {steps:>3} {kind:>9} {r['params']:>9,d} {flops:>10.1f} "
                    f"{r['fwd_ms']:>9.0f} {r['fwd_bwd_ms']:>9.0f} {r['saved_mb']:>9.0f} {mem:>9.0f}"
                )
            fmt = {k: (f"{v:.1f}x" if v else "n/a") for k, v in rat.items()}
            print(
                f"{'':>9} {'':>3} {'ratio':>9} {fmt['params']:>9} {fmt['flops_fwd_bwd']:>10} "
                f"{fmt['fwd_ms']:>9} {fmt['fwd_bwd_ms']:>9} {fmt['saved_mb']:>9} "
                f"{fmt['peak_mem_mb']:>9}"
            )
            sys.stdout.flush()
            rows.append({"grid": [h, w], "steps": steps, "results": res, "ratios": rat})
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(rows, fh, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
