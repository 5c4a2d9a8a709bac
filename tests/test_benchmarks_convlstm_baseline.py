"""Smoke test of benchmarks/convlstm_baseline.py: the three ConvLSTMs agree and are timed."""

from __future__ import annotations

import torch


def test_the_reference_cell_is_the_same_function_as_ours(load_benchmark):
    bench = load_benchmark("convlstm_baseline")
    layers = bench.build(in_channels=3, filters=4, kernel_size=3)
    assert layers["ours"].joint_step and not layers["ours_separate"].joint_step
    x = torch.randn(2, 4, 3, 6, 10, generator=torch.Generator().manual_seed(0))
    ref = layers["ndrplz"](x)
    for name in ("ours", "ours_separate"):
        torch.testing.assert_close(layers[name](x), ref, atol=1e-6, rtol=0)


def test_tiny_run_prints_one_row_per_layer(load_benchmark, capsys):
    bench = load_benchmark("convlstm_baseline")
    argv = ["--grid", "6x10", "--filters", "4", "--in-channels", "3", "--batch", "2"]
    assert bench.main([*argv, "--steps", "3", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    names = [row.strip("|").split("|")[0].strip() for row in rows[1:]]
    assert names == ["ndrplz", "ours", "ours_separate"]
    assert rows[1].endswith("| 1.00× |")
    for row in rows[1:]:
        assert float(row.strip("|").split("|")[1]) > 0
