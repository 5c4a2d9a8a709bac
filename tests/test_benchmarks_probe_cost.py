"""Smoke test of benchmarks/probe_cost.py: a tiny record, with the scikit-learn reference."""

from __future__ import annotations


def test_tiny_run_times_every_probe_and_checks_the_reference(load_benchmark, tmp_path):
    bench = load_benchmark("probe_cost")
    md = tmp_path / "p.md"
    argv = ["--years", "3", "--steps", "60", "--dim", "4", "--threads", "1", "2"]
    assert bench.main([*argv, "--reference", "--md", str(md)]) == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "BLAS" not in line]
    names = [line.strip("|").split("|")[0].strip() for line in rows]
    assert names == [
        "linear R²",
        "quadratic R²",
        "quadratic R², scikit-learn per fit",
        "linear accuracy",
        "quadratic accuracy",
    ]
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 4 and all(float(c) >= 0 for c in cells[1:3])
    by_name = {n: float(line.strip("|").split("|")[-1]) for n, line in zip(names, rows)}
    assert by_name["quadratic R²"] == by_name["quadratic R², scikit-learn per fit"]
    assert "probe_cost.py --years 3" in text.splitlines()[0]
