"""Smoke test of benchmarks/threads_auto.py: a tiny row, calm and with one burner."""

from __future__ import annotations

import psutil
import torch


def test_tiny_run_chooses_measures_and_cleans_up(load_benchmark, tmp_path, capsys):
    bench = load_benchmark("threads_auto")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    threads = torch.get_num_threads()
    md = tmp_path / "t.md"
    argv = ["--grid", "8x16", "--filters", "4", "--batch", "2", "--steps", "3"]
    argv += ["--busy", "0", "1", "--repeats", "1", "--settle", "0.2", "--md", str(md)]
    assert bench.main(argv) == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "busy" not in line]
    assert len(rows) == 2  # one per busy level
    for line, busy in zip(rows, (0, 1), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == str(busy)
        default, chosen = (int(v) for v in cells[2].split(" → "))
        assert default == threads and 1 <= chosen <= default
        assert all(c.endswith("×") for c in (cells[4], cells[6]))
    # the burner of the busy row is gone and the caller's thread count is back
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()}
    assert after <= before
    assert torch.get_num_threads() == threads
    assert "threads_auto.py" in text.splitlines()[0]
