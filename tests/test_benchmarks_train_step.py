"""Smoke test of benchmarks/train_step.py on a tiny configuration, and its busy load."""

from __future__ import annotations

import gc
import importlib.util
import json
import multiprocessing
import sys
from pathlib import Path

import psutil
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_step", ROOT / "benchmarks/train_step.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_step"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("train_step", None)


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def test_one_tiny_row_with_busy_load(bench, tmp_path, capsys):
    before = {p.pid for p in _children()}
    threads = torch.get_num_threads()
    md, js = tmp_path / "t.md", tmp_path / "t.json"
    argv = [
        "--models", "autoencoder", "--grids", "8x16", "--filters", "4", "--batch", "2",
        "--threads", "1", "--steps", "3", "--repeats", "1", "--busy", "1", "--no-memory",
        "--md", str(md), "--json", str(js),
    ]  # fmt: skip
    assert bench.main(argv) == 0
    # the burners are stopped and joined: no child process of ours is left running
    assert not multiprocessing.active_children()
    assert {p.pid for p in _children()} - before == set()
    assert torch.get_num_threads() == threads  # the sweep restores the caller's setting

    payload = json.loads(js.read_text())
    rows = payload["rows"]
    assert [(r["busy"], tuple(r["grid"]), r["filters"]) for r in rows] == [
        (0, (8, 16), 4),
        (1, (8, 16), 4),
    ]
    for r in rows:
        assert r["convlstm_ms"] > 0 and r["fa_ms"] > 0
        assert r["speed_ratio"] == pytest.approx(r["convlstm_ms"] / r["fa_ms"])
        assert r["fa_mib"] is None and r["memory_ratio"] is None
        assert len(r["timing"]["fa"]["times_ms"]) == 1
    assert set(payload["verdict"]) >= {"every_row", "median_row", "demo_row", "busy_rows"}
    assert payload["verdict"]["demo_row"]["pass"] is None  # 8x16 is not the demo's size

    text = md.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].split("|")[1:-1] == [
        f" {c} "
        for c in (
            "model", "grid", "filters", "batch", "threads", "busy", "ConvLSTM ms", "FA ms",
            "speed ratio", "ConvLSTM MiB", "FA MiB", "memory ratio",
        )
    ]  # fmt: skip
    assert len(table) == 1 + len(rows)
    assert "Verdict:" in text and "demo row ≥ 3× (min): n/a not measured" in text
    assert "Verdict:" in capsys.readouterr().out


def test_busy_load_is_stopped_on_an_error(bench):
    before = {p.pid for p in _children()}
    with pytest.raises(KeyboardInterrupt):
        with bench.busy_load(2, seconds=30) as load:
            assert len(load.procs) == 2 and all(p.is_alive() for p in load.procs)
            raise KeyboardInterrupt  # what Ctrl-C raises in the timed part
    assert not any(p.is_alive() for p in load.procs)
    assert {p.pid for p in _children()} - before == set()


def test_verdict_names_the_failing_bars(bench):
    def row(model, grid, filters, busy, speed, memory):
        return {
            "model": model, "grid": grid, "filters": filters, "busy": busy,
            "speed_ratio": speed, "memory_ratio": memory, "label": f"{model}{grid}{busy}",
        }  # fmt: skip

    rows = [
        row("autoencoder", (16, 32), 16, 0, 2.5, 3.0),  # the demo row: < 3x
        row("forecaster", (64, 128), 64, 0, 4.0, 1.5),  # memory ratio < 2
        row("forecaster", (16, 32), 16, 0, 0.9, 2.5),  # slower than ConvLSTM
        row("autoencoder", (16, 32), 16, 1, 2.1, 3.0),  # busy: passes 2x
    ]
    v = bench.verdict(rows)
    assert v["every_row"] == {"value": 0.9, "threshold": 1.0, "pass": False}
    assert v["median_row"]["value"] == 2.5 and v["median_row"]["pass"] is False
    assert v["demo_row"]["pass"] is False and v["busy_rows"]["pass"] is True
    assert v["memory"]["value"] == 1.5 and v["memory"]["pass"] is False
    assert v["failing_rows"]["every_row"] == ["forecaster(16, 32)0"]
    assert v["failing_rows"]["memory"] == ["forecaster(64, 128)0"]
    line = bench.verdict_line(v)
    assert (
        "every row ≥ 1.0× (min): 0.90× FAIL" in line and "busy rows ≥ 2× (min): 2.10× PASS" in line
    )


def test_peak_step_growth_counts_what_the_step_allocates():
    from faconvlstm.evaluation.efficiency import peak_step_growth_mb

    held = []

    def step():  # 64 MiB allocated and touched, then released
        held.append(torch.ones(16 * 2**20))
        held.clear()

    gc.disable()  # a collection during the step could free earlier tests' memory
    try:
        mb = peak_step_growth_mb(step, None, torch.device("cpu"))
    finally:
        gc.enable()
    # VmHWM is page-granular and the allocator may reuse cached pages: at least most of it
    assert mb > 32


def test_lead_attention_reaches_the_forecaster_and_the_machine_line(bench, monkeypatch):
    args = bench.parse_args(["--models", "forecaster", "--lead-attention", "every"])
    row = bench.Row("forecaster", (8, 16), 4, 2, 1, 0)
    assert bench.TrainStep(row, "fa", args).model.lead_attention == "every"
    assert "lead_attention=every" in bench.machine_line(args)
    default = bench.parse_args(["--models", "forecaster"])
    assert default.lead_attention is None  # the library's default, named in the table
    expected = bench.lead_attention_default()
    assert bench.TrainStep(row, "fa", default).model.lead_attention == expected
    assert f"lead_attention={expected}" in bench.machine_line(default)
    # and the fresh process that measures peak memory builds the same forecaster
    specs = []
    monkeypatch.setattr(bench, "run_memory_child", lambda spec, **kw: specs.append(spec) or 1.0)
    bench.peak_memory_mb(row, "fa", args)
    child = bench.argparse.Namespace(**specs[0]["args"])
    assert bench.TrainStep(row, "fa", child).model.lead_attention == "every"
