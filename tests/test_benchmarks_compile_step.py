"""Smoke test of benchmarks/compile_step.py on a tiny model (slow: inductor compiles)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_run_times_eager_and_compiled_for_both_cells(tmp_path):
    path = ROOT / "benchmarks" / "compile_step.py"
    spec = importlib.util.spec_from_file_location("compile_step", path)
    bench = importlib.util.module_from_spec(spec)
    threads = torch.get_num_threads()
    md = tmp_path / "c.md"
    try:
        spec.loader.exec_module(bench)
        argv = ["--grid", "8x16", "--filters", "4", "--batch", "2", "--steps", "3"]
        assert bench.main([*argv, "--repeats", "1", "--md", str(md)]) == 0
    finally:
        sys.modules.pop("train_step", None)
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "ConvLSTM",
        "FA",
        "FA speed ratio over ConvLSTM",
    ]
    assert all(r.count("×") >= 1 for r in rows[1:])
    assert torch.get_num_threads() == threads
