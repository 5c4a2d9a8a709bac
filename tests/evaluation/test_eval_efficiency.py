"""Cost measurement used by benchmarks/layer_cost.py and compare (relations, not timings)."""

import pytest
import torch

from faconvlstm.evaluation.efficiency import (
    count_flops,
    layer_costs,
    make_layer,
    peak_training_memory_mb,
    ratios,
    saved_for_backward_mb,
)


def test_fa_stores_less_for_backward_and_costs_fewer_flops():
    x = torch.randn(2, 4, 8, 16, 32)
    fa, conv = make_layer("fa", 8, 64), make_layer("convlstm", 8, 64)
    assert saved_for_backward_mb(fa, x) < 0.75 * saved_for_backward_mb(conv, x)
    assert count_flops(fa, x) * 10 < count_flops(conv, x)


def test_layer_costs_reports_every_field_and_ratios():
    res = layer_costs(batch=1, steps=2, height=8, width=16, filters=16, repeats=1, memory=False)
    for kind in ("fa", "convlstm"):
        assert set(res[kind]) >= {"params", "flops_fwd_bwd", "fwd_ms", "fwd_bwd_ms", "saved_mb"}
        assert res[kind]["fwd_ms"] > 0 and res[kind]["peak_mem_mb"] is None
    r = ratios(res)
    assert r["params"] == pytest.approx(res["convlstm"]["params"] / res["fa"]["params"])
    assert r["peak_mem_mb"] is None


def test_peak_memory_subprocess_grows_with_sequence_length():
    short = peak_training_memory_mb("convlstm", (1, 2, 4, 32, 64), filters=32)
    long = peak_training_memory_mb("convlstm", (1, 16, 4, 32, 64), filters=32)
    assert 0 < short < long


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="cell must be one of"):
        make_layer("gru", 3, 4)
