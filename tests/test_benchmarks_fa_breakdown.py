"""Smoke test of benchmarks/fa_breakdown.py: a tiny grid, every variant measured."""

from __future__ import annotations

import torch


def test_tiny_run_measures_every_variant(load_benchmark, tmp_path):
    bench = load_benchmark("fa_breakdown")
    threads = torch.get_num_threads()
    md = tmp_path / "b.md"
    argv = ["--grids", "8x16", "--filters", "4", "--batch", "2", "--steps", "3"]
    assert bench.main([*argv, "--repeats", "1", "--md", str(md)]) == 0
    assert torch.get_num_threads() == threads  # the caller's count is restored
    lines = md.read_text().splitlines()
    assert "fa_breakdown.py" in lines[0]
    rows = [line for line in lines if line.startswith("| 8×16 ")]
    labels = [r.strip("|").split("|")[2].strip() for r in rows]
    assert labels == ["convlstm", *(label for label, _ in bench.VARIANTS)]
    assert rows[0].strip("|").split("|")[4].strip() == "1.00×"  # ConvLSTM against itself


def test_variants_differ_only_in_the_named_parts(load_benchmark):
    bench = load_benchmark("fa_breakdown")
    layers = bench.build_layers(filters=4, in_channels=3)
    assert layers["fa"].attention is not None and layers["fa"].se is not None
    assert layers["fa, attention every step"].attention_every == 1
    minimal = layers["fa - attention - SE - rates 2, 4"]
    assert minimal.attention is None and minimal.se is None
    assert minimal.dilation_rates == (1,) and minimal.fused
    assert not layers["fa - attention - SE - rates 2, 4 - fused gates"].fused
    assert layers["fa, gradient checkpointing"].gradient_checkpointing
    # attention and SE cost memory: the saved tensors shrink as parts are switched off
    x = torch.randn(2, 3, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    saved = {k: bench.saved_for_backward_mb(v, x) for k, v in layers.items()}
    assert saved["fa, attention every step"] > saved["fa"] > saved["fa - attention"]
    assert saved["fa, gradient checkpointing"] < saved["fa"]
    assert layers["fa, attention checkpointing"].attention_checkpointing
    assert saved["fa - attention"] < saved["fa, attention checkpointing"] < saved["fa"]
