"""Efficiency of the recurrent layers: parameters, FLOPs, wall time and peak memory.

Used by ``benchmarks/layer_cost.py`` and by ``faconvlstm compare`` (the cost table), so the
numbers in the README and in a comparison report come from the same code.

Conventions:

* FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products,
  convolutions and attention, counted as 2 FLOPs per multiply-add; elementwise work is not
  counted (it is what makes the FA step memory-bound, hence the wall-time measurement).
* Times are the minimum over ``repeats`` runs after one warm-up, in milliseconds per call
  (a whole sequence of T steps), with ``return_sequences=True`` and the loss
  ``sum(outputs)``; the FA and ConvLSTM runs of one comparison are interleaved so machine
  noise hits both alike. Report ratios, not absolute times.
* Peak memory of a training step (forward + backward): on CUDA,
  ``torch.cuda.max_memory_allocated`` minus the memory held before the step; on CPU, the
  growth of the peak resident set (Linux VmHWM, reset after a one-step warm-up) over the
  step, in a fresh subprocess per layer with glibc's mmap threshold fixed, so freed
  blocks leave the resident set and one layer's peak never leaks into another's.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from faconvlstm.layers.registry import cell_class


def make_layer(kind: str, in_channels: int, filters: int, kernel_size: int = 3, **kwargs: Any):
    """A ``"fa"`` or ``"convlstm"`` layer with "same" padding returning the sequence."""
    cls = cell_class(kind)
    kwargs.setdefault("padding", "same")
    kwargs.setdefault("return_sequences", True)
    return cls(filters, kernel_size, in_channels=in_channels, **kwargs)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _train_step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    layer(x).sum().backward()


def count_flops(layer: torch.nn.Module, x: torch.Tensor, backward: bool = True) -> int:
    """FLOPs of one forward (and backward) pass over the whole sequence."""
    with FlopCounterMode(display=False) as counter:
        if backward:
            _train_step(layer, x)
        else:
            with torch.no_grad():
                layer(x)
    layer.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def saved_for_backward_mb(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """MiB of distinct tensor storage autograd keeps for the backward pass of one forward.

    Deterministic (no allocator noise): the memory a training step must hold at its peak
    on top of parameters and transient buffers. Counted with
    :func:`torch.autograd.graph.saved_tensors_hooks`, each storage once.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x)
    del out
    return sum(storages.values()) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, repeats: int = 3) -> list[float]:
    """Wall times in ms of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def peak_step_growth_mb(
    step: Callable[[], Any], warmup: Callable[[], Any] | None, device: torch.device
) -> float:
    """Peak memory growth (MiB) of one call of ``step`` in *this* process, after ``warmup``.

    On CUDA: ``max_memory_allocated`` during the step minus ``memory_allocated`` before it.
    On CPU: the peak resident set (VmHWM, reset to the current RSS after the warm-up) minus
    the RSS before the step. Meant for a fresh process started by
    :func:`run_memory_child` (glibc's mmap threshold fixed there, so freed blocks leave the
    resident set); ``warmup`` absorbs library start-up, kernel caches and lazily created
    state (optimizer moments) so they are not counted.
    """
    if warmup is not None:
        warmup()
    gc.collect()  # so no collection of earlier garbage shrinks the resident set mid-step
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    _reset_peak_rss()
    before = _rss_bytes()
    step()
    return (_peak_rss_bytes() - before) / 2**20


def run_memory_child(
    spec: dict[str, Any], argv: Sequence[str] | None = None, timeout: float = 600.0
) -> float:
    """Run a fresh Python process that measures one peak (MiB) and return it.

    ``argv`` (default: :func:`_memory_main` of this module) reads ``spec`` as JSON on its
    stdin and prints the peak, as JSON, on its last stdout line (use
    :func:`peak_step_growth_mb` there). A fresh process per measurement means one
    configuration's peak never leaks into another's; glibc's mmap threshold is fixed so
    that freed large blocks return to the OS and the resident set tracks live memory.
    """
    if argv is None:
        code = "from faconvlstm.evaluation.efficiency import _memory_main; _memory_main()"
        argv = [sys.executable, "-c", code]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(
        list(argv),
        env=env,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement {spec!r} failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1]))


def _memory_main() -> None:
    """Child-process entry: read a layer spec (JSON) on stdin, print the peak growth in MiB."""
    spec = json.loads(sys.stdin.read())
    torch.set_num_threads(spec.pop("threads"))
    device = torch.device(spec.pop("device"))
    shape = spec.pop("shape")
    layer = make_layer(**spec).to(device)
    x = torch.randn(shape, device=device)

    def warmup() -> None:  # library start-up and kernel caches (CPU only, as before)
        _train_step(layer, x[:, :1])
        layer.zero_grad(set_to_none=True)

    mb = peak_step_growth_mb(
        lambda: _train_step(layer, x), None if device.type == "cuda" else warmup, device
    )
    print(json.dumps(mb))


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak_rss() -> None:
    """Reset Linux's per-process peak RSS (VmHWM) to the current RSS, where allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """Peak resident set of this process: VmHWM on Linux (ru_maxrss would also count the
    parent's peak, which Linux carries across fork+exec), ru_maxrss elsewhere."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def peak_training_memory_mb(
    kind: str,
    shape: Sequence[int],
    device: str = "cpu",
    timeout: float = 600.0,
    **layer_kwargs: Any,
) -> float:
    """Peak memory growth (MiB) of one forward+backward of a fresh layer, in a subprocess.

    ``shape`` is the input (B, T, C, H, W); ``layer_kwargs`` go to :func:`make_layer`
    (``in_channels`` is taken from the shape).
    """
    spec = {
        "kind": kind,
        "in_channels": shape[2],
        "shape": list(shape),
        "device": device,
        "threads": torch.get_num_threads(),
        **layer_kwargs,
    }
    return run_memory_child(spec, timeout=timeout)


def layer_costs(
    kinds: Sequence[str] = ("fa", "convlstm"),
    *,
    in_channels: int = 8,
    filters: int = 64,
    kernel_size: int = 3,
    batch: int = 4,
    steps: int = 12,
    height: int = 64,
    width: int = 128,
    repeats: int = 3,
    device: str = "cpu",
    memory: bool = True,
    flops: bool = True,
    seed: int = 0,
    **layer_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Measure every layer kind on one configuration, interleaving the timed runs.

    Returns ``{kind: {"params", "flops_fwd", "flops_fwd_bwd", "fwd_ms", "fwd_bwd_ms",
    "saved_mb", "peak_mem_mb", "config"}}``; times are the minimum over ``repeats``.
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    shape = (batch, steps, in_channels, height, width)
    x = torch.randn(shape, device=dev)
    layers = {
        k: make_layer(k, in_channels, filters, kernel_size, **layer_kwargs).to(dev) for k in kinds
    }
    results: dict[str, dict[str, Any]] = {}
    for kind, layer in layers.items():
        results[kind] = {
            "params": count_parameters(layer),
            "flops_fwd": count_flops(layer, x, backward=False) if flops else None,
            "flops_fwd_bwd": count_flops(layer, x, backward=True) if flops else None,
            "saved_mb": saved_for_backward_mb(layer, x),
            "fwd_ms": [],
            "fwd_bwd_ms": [],
        }

    def forward(layer):
        def run():
            with torch.no_grad():
                layer(x)

        return run

    def train(layer):
        def run():
            _train_step(layer, x)
            layer.zero_grad(set_to_none=True)

        return run

    for _ in range(repeats):  # interleave: noise hits every kind alike
        for kind, layer in layers.items():
            results[kind]["fwd_ms"] += time_call(forward(layer), dev, repeats=1)
            results[kind]["fwd_bwd_ms"] += time_call(train(layer), dev, repeats=1)
    for kind in layers:
        r = results[kind]
        r["fwd_ms"] = min(r["fwd_ms"])
        r["fwd_bwd_ms"] = min(r["fwd_bwd_ms"])
        r["peak_mem_mb"] = (
            peak_training_memory_mb(
                kind, shape, device=device, filters=filters, kernel_size=kernel_size, **layer_kwargs
            )
            if memory
            else None
        )
        r["config"] = {
            "shape_BTCHW": list(shape),
            "filters": filters,
            "kernel_size": kernel_size,
            "device": device,
            "threads": torch.get_num_threads(),
            **{k: v for k, v in layer_kwargs.items() if isinstance(v, (int, float, str, bool))},
        }
    return results


def ratios(
    results: dict[str, dict[str, Any]], numerator: str = "convlstm", denominator: str = "fa"
):
    """``numerator / denominator`` for every numeric cost (how many times cheaper FA is)."""
    out = {}
    keys = (
        "params",
        "flops_fwd",
        "flops_fwd_bwd",
        "fwd_ms",
        "fwd_bwd_ms",
        "saved_mb",
        "peak_mem_mb",
    )
    for key in keys:
        a, b = results[numerator].get(key), results[denominator].get(key)
        out[key] = (a / b) if a is not None and b else None
    return out


def to_json(results: Any) -> str:
    return json.dumps(results, indent=2, sort_keys=True)
