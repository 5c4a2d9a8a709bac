"""Whole-model training steps, FAConvLSTM vs ConvLSTM, side by side in one run.

One training step = forward + loss + backward + AdamW step of a
:class:`~faconvlstm.models.SequenceAutoencoder` (loss: MSE of the reconstruction, plus the
head's orthogonality penalty) or a :class:`~faconvlstm.models.Forecaster` (MSE of the
forecast of ``--horizon`` steps after a ``--steps``-step window), built with the same
arguments except ``cell`` and fed the same seeded random data. Per configuration the two
models take a warm-up step each, then ``--repeats`` timed steps interleaved (the order
alternates, so machine noise hits both alike); time = median (and min) in ms per step.
Peak memory of one training step (after a warm-up step) is measured per (model, cell,
configuration) in a fresh process, as :mod:`faconvlstm.evaluation.efficiency` does for one
layer (Linux VmHWM growth; CUDA ``max_memory_allocated``).

``--busy N`` starts N background processes that burn a CPU each (a bounded busy loop that
also ends on its own after ``--busy-seconds``) for the timed part of the rows marked busy,
and stops them in a ``finally`` (also on Ctrl-C) and at exit: the shared-machine setting
of docs/performance.md fact 5.

    python benchmarks/train_step.py --preset quick --md benchmarks/train_step_latest.md
    python benchmarks/train_step.py --preset full --json full.json       # the issue's sweep
    python benchmarks/train_step.py --models autoencoder --grids 16x32 --filters 16 \\
        --batch 16 --threads 1 --busy 1

Rows: model, grid, filters, batch, threads, busy. Columns: ConvLSTM and FA ms per step,
speed ratio (ConvLSTM / FA: how many times faster FA is), peak MiB of each, memory ratio
(ConvLSTM / FA). The verdict line checks the bars of issue 13: every row ≥ 1.0×, the
median row ≥ 3×, the demo row (autoencoder, 16×32 grid, 16 filters) ≥ 3×, every busy row
≥ 2×, and FA's peak ≤ 1/2 of ConvLSTM's (memory ratio ≥ 2) at every row.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from faconvlstm.evaluation.efficiency import peak_step_growth_mb, run_memory_child
from faconvlstm.files import atomic_write_text

MODELS = ("autoencoder", "forecaster")
CELLS = ("convlstm", "fa")
#: the demo's size (src/faconvlstm/configs/compare_demo.yaml): its bar is checked separately
DEMO = {"model": "autoencoder", "grid": (16, 32), "filters": 16}
BARS = {"every_row": 1.0, "median_row": 3.0, "demo_row": 3.0, "busy_rows": 2.0, "memory": 2.0}


@dataclass(frozen=True)
class Row:
    """One configuration: both cells run it, everything else identical."""

    model: str
    grid: tuple[int, int]
    filters: int
    batch: int
    threads: int
    busy: int = 0

    @property
    def label(self) -> str:
        h, w = self.grid
        return (
            f"{self.model} {h}x{w} F={self.filters} B={self.batch} "
            f"threads={self.threads} busy={self.busy}"
        )


def _sweep(models, grids, filters, batches, threads, busy) -> list[Row]:
    rows = [
        Row(m, tuple(g), f, b, t, 0)
        for m, g, f, b, t in itertools.product(models, grids, filters, batches, threads)
    ]
    if busy:
        rows += [Row(r.model, r.grid, r.filters, r.batch, r.threads, busy) for r in rows]
    return rows


def preset_rows(name: str) -> list[Row]:
    """``quick``: a handful of rows that run in about two minutes on 2 busy cores;
    ``full``: the issue's whole sweep (long: for users, not for CI)."""
    if name == "quick":
        configs = [((16, 32), 16, 1), ((16, 32), 16, 2), ((16, 32), 64, 1), ((64, 128), 16, 1)]
        rows = [Row(m, g, f, 4, t) for m in MODELS for g, f, t in configs]
        return [*rows, Row("autoencoder", (16, 32), 16, 4, 1, busy=1)]
    if name == "full":
        grids = [(16, 32), (32, 64), (64, 128), (128, 256)]
        return _sweep(MODELS, grids, (16, 32, 64), (1, 4, 16), (1, 2), busy=1)
    raise ValueError(f"--preset must be quick or full, got {name!r}")


# ---------------------------------------------------------------------- the training step
def build_model(
    model: str,
    cell: str,
    in_channels: int,
    filters: int,
    embed_dim: int,
    horizon: int,
    lead_attention: str | None = None,
) -> torch.nn.Module:
    """A one-layer model of ``cell``; every other argument is the same for both cells.

    ``lead_attention``: the forecaster's (None: the library default; ConvLSTM's forecast
    does not depend on it)."""
    from faconvlstm.models import Forecaster, SequenceAutoencoder

    common = {"filters": (filters,), "cell": cell, "embed_dim": embed_dim}
    if model == "autoencoder":
        return SequenceAutoencoder(in_channels, **common)
    if model == "forecaster":
        leads = {} if lead_attention is None else {"lead_attention": lead_attention}
        return Forecaster(in_channels, horizon=horizon, **common, **leads)
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


class TrainStep:
    """A model, its AdamW optimizer and a seeded random batch; calling it runs one step.

    Shapes: x (B, T, C, H, W), phases (B, T) in [0, 1); the forecaster also gets y
    (B, N, C, H, W) and the N future phases. The same ``seed`` gives both cells the same
    data (the weights differ: the cells have different parameters).
    """

    def __init__(self, row: Row, cell: str, args: argparse.Namespace, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = build_model(
            row.model,
            cell,
            args.in_channels,
            row.filters,
            args.embed_dim,
            args.horizon,
            getattr(args, "lead_attention", None),
        )
        self.model.train()
        gen = torch.Generator().manual_seed(seed)
        b, t, c = row.batch, args.steps, args.in_channels
        self.x = torch.randn(b, t, c, *row.grid, generator=gen)
        self.times = torch.rand(b, t, generator=gen)
        self.forecast = row.model == "forecaster"
        if self.forecast:
            self.y = torch.randn(b, args.horizon, c, *row.grid, generator=gen)
            self.future = torch.rand(b, args.horizon, generator=gen)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)

    def __call__(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        if self.forecast:
            out = self.model(self.x, times=self.times, future_times=self.future)
            loss = (out["forecast"] - self.y).square().mean()
        else:
            out = self.model(self.x, times=self.times)
            loss = (out["recon"] - self.x).square().mean()
        loss = loss + self.model.regularization_loss()
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def time_interleaved(
    fns: dict[Any, Callable[[], object]], repeats: int, warmup: bool = True
) -> dict[Any, list[float]]:
    """ms of each function over ``repeats`` rounds, in the dict's order and reversed every
    other round (so machine noise hits all alike); a warm-up call of each first unless
    ``warmup=False``. The interleaving of every side-by-side benchmark here."""
    if warmup:
        for fn in fns.values():
            fn()  # lazy init, kernel caches, optimizer moments
    times: dict[Any, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for rep in range(repeats):
        for key in keys if rep % 2 == 0 else keys[::-1]:
            start = time.perf_counter()
            fns[key]()
            times[key].append((time.perf_counter() - start) * 1e3)
    return times


def time_row(row: Row, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median and min ms per training step of both cells, timed runs interleaved."""
    steps = {cell: TrainStep(row, cell, args) for cell in CELLS}
    for step in steps.values():
        step()  # warm-up: kernel caches, AdamW's moments
    with busy_load(row.busy, args.busy_seconds):
        times = time_interleaved(steps, args.repeats, warmup=False)
    return {
        cell: {"median_ms": statistics.median(t), "min_ms": min(t), "times_ms": t}
        for cell, t in times.items()
    }


# ---------------------------------------------------------------------- peak memory
def _memory_child() -> None:
    """Child entry (``--memory-child``): spec on stdin, peak MiB of one step on stdout."""
    spec = json.loads(sys.stdin.read())
    torch.set_num_threads(spec["threads"])
    args = argparse.Namespace(**spec["args"])
    row = Row(**{**spec["row"], "grid": tuple(spec["row"]["grid"])})
    step = TrainStep(row, spec["cell"], args)
    print(json.dumps(peak_step_growth_mb(step, step, torch.device("cpu"))))


def peak_memory_mb(row: Row, cell: str, args: argparse.Namespace) -> float:
    """Peak MiB of one training step of ``cell`` on ``row`` in a fresh process."""
    spec = {
        "row": asdict(row),
        "cell": cell,
        "threads": row.threads,
        "args": {
            k: getattr(args, k, None)
            for k in ("in_channels", "embed_dim", "horizon", "steps", "lead_attention")
        },
    }
    argv = [sys.executable, str(Path(__file__).resolve()), "--memory-child"]
    return run_memory_child(spec, argv=argv, timeout=args.memory_timeout)


# ---------------------------------------------------------------------- busy machine
def _burn(stop, seconds: float) -> None:  # pragma: no cover - runs in a child process
    """Busy-loop on one CPU until ``stop`` is set or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    x = 0
    while not stop.is_set() and time.monotonic() < deadline:
        for _ in range(10_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


_LIVE: list[Any] = []  # running burners, so atexit can stop whatever a crash left behind


def _stop_all() -> None:
    for stop, procs in list(_LIVE):
        stop.set()
        for p in procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
        _LIVE.remove((stop, procs))


atexit.register(_stop_all)


class busy_load:
    """Context manager: ``n`` CPU-burning processes while the block runs (none for n = 0).

    Bounded: each burner also stops by itself after ``seconds``. Stopped when the block
    exits (normally, on an error or on KeyboardInterrupt) and, failing that, at exit.
    """

    def __init__(self, n: int, seconds: float = 600.0) -> None:
        self.n, self.seconds = n, seconds
        self.procs: list[Any] = []

    def __enter__(self) -> busy_load:
        if self.n <= 0:
            return self
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        self.stop = ctx.Event()
        try:
            for _ in range(self.n):
                p = ctx.Process(target=_burn, args=(self.stop, self.seconds), daemon=True)
                p.start()
                self.procs.append(p)
        finally:
            _LIVE.append((self.stop, self.procs))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.procs:
            _stop_all()


# ---------------------------------------------------------------------- report
def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    head = (
        "| model | grid | filters | batch | threads | busy | ConvLSTM ms | FA ms | speed ratio "
        "| ConvLSTM MiB | FA MiB | memory ratio |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in results:
        h, w = r["grid"]
        lines.append(
            f"| {r['model']} | {h}×{w} | {r['filters']} | {r['batch']} | {r['threads']} "
            f"| {r['busy']} | {r['convlstm_ms']:.0f} | {r['fa_ms']:.0f} "
            f"| {r['speed_ratio']:.2f}× | {_fmt(r['convlstm_mib'], '.0f')} "
            f"| {_fmt(r['fa_mib'], '.0f')} | {_fmt(r['memory_ratio'], '.2f')}"
            f"{'' if r['memory_ratio'] is None else '×'} |"
        )
    return "\n".join(lines)


def verdict(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each bar of issue 13: measured value, threshold, pass (None = not measured)."""
    calm = [r for r in results if r["busy"] == 0]
    busy = [r for r in results if r["busy"] > 0]
    demo = [
        r
        for r in calm
        if r["model"] == DEMO["model"]
        and tuple(r["grid"]) == DEMO["grid"]
        and r["filters"] == DEMO["filters"]
    ]
    mem = [r["memory_ratio"] for r in results if r["memory_ratio"] is not None]

    def bar(values: list[float], threshold: float) -> dict[str, Any]:
        if not values:
            return {"value": None, "threshold": threshold, "pass": None}
        return {"value": min(values), "threshold": threshold, "pass": min(values) >= threshold}

    out = {
        "every_row": bar([r["speed_ratio"] for r in results], BARS["every_row"]),
        "median_row": bar(
            [statistics.median(r["speed_ratio"] for r in calm)] if calm else [],
            BARS["median_row"],
        ),
        "demo_row": bar([r["speed_ratio"] for r in demo], BARS["demo_row"]),
        "busy_rows": bar([r["speed_ratio"] for r in busy], BARS["busy_rows"]),
        "memory": bar(mem, BARS["memory"]),
    }
    out["failing_rows"] = {
        name: [
            r["label"]
            for r in (busy if name == "busy_rows" else demo if name == "demo_row" else results)
            if (r["memory_ratio"] if name == "memory" else r["speed_ratio"]) is not None
            and (r["memory_ratio"] if name == "memory" else r["speed_ratio"]) < BARS[name]
        ]
        for name in ("every_row", "demo_row", "busy_rows", "memory")
    }
    return out


def verdict_line(v: dict[str, Any]) -> str:
    names = {
        "every_row": "every row ≥ 1.0× (min)",
        "median_row": "median row ≥ 3×",
        "demo_row": "demo row ≥ 3× (min)",
        "busy_rows": "busy rows ≥ 2× (min)",
        "memory": "memory ≤ 1/2 (min ratio ≥ 2×)",
    }
    parts = []
    for key, text in names.items():
        b = v[key]
        state = "not measured" if b["pass"] is None else ("PASS" if b["pass"] else "FAIL")
        value = "n/a" if b["value"] is None else f"{b['value']:.2f}×"
        parts.append(f"{text}: {value} {state}")
    failing = sorted({lab for rows in v["failing_rows"].values() for lab in rows})
    tail = f"; failing rows: {', '.join(failing)}" if failing else ""
    return "Verdict: " + "; ".join(parts) + tail


def load_text() -> str:
    """The machine's 1-, 5- and 15-minute load averages, as the tables' machine lines say."""
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"


def lead_attention_default() -> str:
    """The library's default ``Forecaster(lead_attention=...)``."""
    import inspect

    from faconvlstm.models import Forecaster

    return inspect.signature(Forecaster).parameters["lead_attention"].default


def machine_line(args: argparse.Namespace) -> str:
    return (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {load_text()} at start; "
        f"T={args.steps}, C={args.in_channels}, E={args.embed_dim}, horizon={args.horizon}, "
        f"lead_attention={getattr(args, 'lead_attention', None) or lead_attention_default()}, "
        f"repeats={args.repeats}, one recurrent layer per stack"
    )


# ---------------------------------------------------------------------- shared
def add_autoencoder_args(p: argparse.ArgumentParser) -> None:
    """The one-row autoencoder options of the sibling benchmarks (threads_auto.py,
    compile_step.py), defaulting to the demo's size."""
    p.add_argument("--grid", type=_grid, default=(16, 32), help="HxW (the demo's 16x32)")
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--batch", type=int, default=16, help="B (the demo's 16)")
    p.add_argument("--steps", type=int, default=8, help="T (the demo's window 8)")
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--embed-dim", type=int, default=16)
    p.add_argument("--md", help="also write the table to this markdown file")


def autoencoder_machine_line(args: argparse.Namespace, extra: str = "") -> str:
    """torch, CPUs, load and the row of :func:`add_autoencoder_args`."""
    return (
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {load_text()} at start; autoencoder "
        f"{args.grid[0]}x{args.grid[1]}, filters {args.filters}, B={args.batch}, "
        f"T={args.steps}, C={args.in_channels}, E={args.embed_dim}{extra}"
    )


def write_markdown(script: str, argv: Sequence[str] | None, machine: str, table: str, path):
    """The table under its command line and machine line, written atomically to ``path``."""
    command = f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    text = f"<!-- {command.strip()} -->\n\nMachine: {machine}.\n\n{table}\n"
    atomic_write_text(text, path)


# ---------------------------------------------------------------------- main
def _grid(text: str) -> tuple[int, int]:
    try:
        h, w = text.lower().replace("×", "x").split("x")
        return int(h), int(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must look like 16x32, got {text!r}") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=("quick", "full"), help="a ready sweep (else the axes)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--grids", type=_grid, nargs="+", default=[(16, 32)], help="HxW grids")
    p.add_argument("--filters", type=int, nargs="+", default=[16])
    p.add_argument("--batch", type=int, nargs="+", default=[4])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument(
        "--busy", type=int, default=0, help="also run every row with N CPU-burning processes"
    )
    p.add_argument("--busy-seconds", type=float, default=600.0, help="burners' own time limit")
    p.add_argument("--steps", type=int, default=12, help="T, input steps")
    p.add_argument("--horizon", type=int, default=4, help="forecaster lead steps N")
    p.add_argument(
        "--lead-attention",
        choices=("every", "schedule"),
        help="the forecaster's lead_attention (default: the library's)",
    )
    p.add_argument("--in-channels", type=int, default=3, help="C (the demo's 3 variables)")
    p.add_argument("--embed-dim", type=int, default=16, help="E (the demo's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--memory-timeout", type=float, default=900.0)
    p.add_argument("--md", help="also write the table and verdict to this markdown file")
    p.add_argument("--json", help="also write every number to this JSON file")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("repeats", "steps", "horizon", "in_channels", "embed_dim"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.busy < 0:
        p.error("--busy must be >= 0")
    return args


def run(args: argparse.Namespace, rows: Sequence[Row]) -> Iterator[dict[str, Any]]:
    threads0 = torch.get_num_threads()
    # measured once per (model, cell, grid, filters, batch), at the first row's thread
    # count: busy load does not change memory and threads barely do, and each measurement
    # is a fresh process (seconds of start-up)
    memory: dict[tuple, float] = {}
    try:
        for row in rows:
            torch.set_num_threads(row.threads)
            t = time_row(row, args)
            res: dict[str, Any] = {**asdict(row), "label": row.label, "timing": t}
            for cell in CELLS:
                key = (row.model, row.grid, row.filters, row.batch, cell)
                if not args.no_memory and key not in memory:
                    memory[key] = peak_memory_mb(row, cell, args)
                res[f"{cell}_mib"] = memory.get(key)
                res[f"{cell}_ms"] = t[cell]["median_ms"]
            res["speed_ratio"] = _ratio(res["convlstm_ms"], res["fa_ms"])
            res["memory_ratio"] = _ratio(res["convlstm_mib"], res["fa_mib"])
            yield res
    finally:
        torch.set_num_threads(threads0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        _memory_child()
        return 0
    rows = (
        preset_rows(args.preset)
        if args.preset
        else _sweep(args.models, args.grids, args.filters, args.batch, args.threads, args.busy)
    )
    machine = machine_line(args)
    print(f"# {machine}", flush=True)
    results = []
    try:
        for res in run(args, rows):
            results.append(res)
            print(
                f"{res['label']}: ConvLSTM {res['convlstm_ms']:.0f} ms, FA {res['fa_ms']:.0f} ms, "
                f"{res['speed_ratio']:.2f}x; MiB {_fmt(res['convlstm_mib'], '.0f')} / "
                f"{_fmt(res['fa_mib'], '.0f')}",
                flush=True,
            )
    finally:
        _stop_all()
    table = markdown_table(results)
    v = verdict(results)
    line = verdict_line(v)
    print(table)
    print(line)
    command = "python benchmarks/train_step.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.md:
        atomic_write_text(
            f"<!-- {command.strip()} -->\n\nMachine: {machine}.\n\n{table}\n\n{line}\n",
            args.md,
        )
    if args.json:
        payload = {"command": command.strip(), "machine": machine, "rows": results, "verdict": v}
        atomic_write_text(json.dumps(payload, indent=2) + "\n", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
