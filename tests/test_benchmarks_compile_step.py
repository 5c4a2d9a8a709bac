"""Smoke test of benchmarks/compile_step.py on a tiny model (slow: inductor compiles)."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.slow
def test_tiny_run_times_eager_and_compiled_for_both_cells(load_benchmark, tmp_path):
    threads = torch.get_num_threads()
    md = tmp_path / "c.md"
    bench = load_benchmark("compile_step")
    argv = ["--grid", "8x16", "--filters", "4", "--batch", "2", "--steps", "3"]
    assert bench.main([*argv, "--repeats", "1", "--md", str(md)]) == 0
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "ConvLSTM",
        "FA",
        "FA speed ratio over ConvLSTM",
    ]
    assert all(r.count("×") >= 1 for r in rows[1:])
    assert torch.get_num_threads() == threads
