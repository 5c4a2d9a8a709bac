"""MultiScaleDepthwise: the one-node backward (_DepthwiseSum) against plain autograd."""

import pytest
import torch

import faconvlstm.layers.depthwise as dw
from faconvlstm import FAConvLSTM2D
from faconvlstm.layers.depthwise import (
    MultiScaleDepthwise,
    _DepthwiseSum,
    _geometry,
    _phase_split,
)

GEOMETRIES = [
    # (kernel, rates, boundary): symmetric zero pads take the unpadded path, the others
    # (even kernels: asymmetric "same"; periodic_lon: wrapped) the padded-window one
    ((3, 3), (1, 2, 4), "zeros"),
    ((3, 5), (1, 3), "zeros"),
    ((2, 4), (1, 2), "zeros"),
    ((3, 3), (1, 2, 4), "periodic_lon"),
    ((2, 3), (1, 3), "periodic_lon"),
]


def _module(kernel, rates, boundary, channels=3, dtype=torch.float64):
    torch.manual_seed(0)
    m = MultiScaleDepthwise(channels, kernel, rates, boundary).to(dtype)
    with torch.no_grad():  # not the near-identity start: every tap matters in the checks
        m.weight.normal_(generator=torch.Generator().manual_seed(1))
    return m


@pytest.mark.parametrize("kernel,rates,boundary", GEOMETRIES)
def test_gradcheck(kernel, rates, boundary):
    # 7x13: neither side a multiple of the rates, so the phase sub-grids are zero-padded
    m = _module(kernel, rates, boundary)
    b = torch.randn(2, 7, 13, 3, dtype=torch.float64, requires_grad=True)
    x = b.permute(0, 3, 1, 2)
    xp, windows, pads, rates_ = _geometry(x, kernel, rates, boundary)
    weight = m.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda b, w: _DepthwiseSum.apply(_geometry(b.permute(0, 3, 1, 2), kernel, rates,
                                                   boundary)[0], w, windows, pads, rates_),
        (b, weight),
    )  # fmt: skip


@pytest.mark.parametrize("kernel,rates,boundary", GEOMETRIES)
def test_fused_matches_plain_autograd(monkeypatch, kernel, rates, boundary):
    monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 0)
    m = _module(kernel, rates, boundary, channels=4, dtype=torch.float32)
    b = torch.randn(3, 9, 14, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
    g = torch.randn(3, 9, 14, 4, generator=torch.Generator().manual_seed(3))
    results = []
    for fused in (True, False):
        m.fused = fused
        b.grad = m.weight.grad = None
        y = m(b)
        y.backward(g)
        results.append((y.detach(), b.grad.clone(), m.weight.grad.clone()))
    # float32 sums of up to 3x3x(B·H·W) products in a different order: 1e-5 relative
    for a, c in zip(*results):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


def _node(m, b):
    return type(m(b).grad_fn.next_functions[0][0]).__name__


def test_the_fused_path_is_one_autograd_node_from_the_size_threshold_up(monkeypatch):
    m = _module((3, 3), (1, 2, 4), "zeros", dtype=torch.float32)
    b = torch.randn(2, 6, 8, 3, requires_grad=True)  # 96 pixels
    monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 96)
    assert "DepthwiseSum" in _node(m, b)
    monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 97)
    assert "DepthwiseSum" not in _node(m, b)
    monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 0)
    m.fused = False
    assert "DepthwiseSum" not in _node(m, b)


def test_phase_split_holds_the_interleaved_subgrids():
    t = torch.arange(2 * 3 * 7 * 10, dtype=torch.float32).view(2, 3, 7, 10)
    d = 3
    s = _phase_split(t, d).view(2, d, d, 3, 3, 4)  # ceil(7/3) = 3, ceil(10/3) = 4
    for a in range(d):
        for c in range(d):
            sub = t[..., a::d, c::d]
            h, w = sub.shape[-2:]
            torch.testing.assert_close(s[:, a, c, :, :h, :w], sub)
            assert (s[:, a, c, :, h:, :] == 0).all() and (s[:, a, c, :, :, w:] == 0).all()


def test_fused_backward_under_bfloat16_autocast_returns_float32_grads(monkeypatch):
    monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 0)
    m = _module((3, 3), (1, 2, 4), "zeros", dtype=torch.float32)
    b = torch.randn(2, 6, 8, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(b)
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    assert b.grad.dtype == torch.float32 and m.weight.grad.dtype == torch.float32
    m.fused, ref = False, m.weight.grad.clone()
    m.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(b).float().square().sum().backward()
    # the fused backward runs in float32, autograd's in bfloat16 (~3 significant digits)
    torch.testing.assert_close(ref, m.weight.grad, rtol=0.05, atol=0.05)


def test_layer_flag_reaches_the_mixing():
    assert FAConvLSTM2D(8, 3, in_channels=2).mixing.fused
    assert not FAConvLSTM2D(8, 3, in_channels=2, fused=False).mixing.fused
