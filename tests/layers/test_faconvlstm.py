"""FAConvLSTM2D: components, ablation flags, fused gates, internals, compile/AMP/export."""

import pytest
import torch

import faconvlstm.layers.fused_gates as fg
from faconvlstm import ConvLSTM2D, FAConvLSTM2D
from faconvlstm.layers.fused_gates import FusedLSTMGates, lstm_gates_reference

B, T, C, H, W, F = 2, 5, 3, 8, 12, 16


@pytest.fixture
def x():
    return torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(1))


def make(**kw):
    torch.manual_seed(0)
    kw.setdefault("padding", "same")
    return FAConvLSTM2D(F, 3, in_channels=C, **kw)


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_gates_gradcheck_over_several_blocks(monkeypatch, peephole, bias):
    monkeypatch.setattr(fg, "BLOCK_ELEMENTS", 4 * 5 * 64)  # 64-pixel blocks -> 4 blocks + a tail
    g = torch.Generator().manual_seed(0)
    n, r, f = 300, 4, 5
    args = (
        torch.randn(n, r, generator=g, dtype=torch.float64, requires_grad=True),
        torch.randn(n, f, generator=g, dtype=torch.float64, requires_grad=True),
        torch.randn(4 * f, r, generator=g, dtype=torch.float64, requires_grad=True),
        torch.randn(4 * f, generator=g, dtype=torch.float64, requires_grad=True) if bias else None,
        torch.randn(3, f, generator=g, dtype=torch.float64, requires_grad=True)
        if peephole
        else None,
    )
    assert torch.autograd.gradcheck(FusedLSTMGates.apply, args)
    for a, b in zip(FusedLSTMGates.apply(*args), lstm_gates_reference(*args)):
        torch.testing.assert_close(a, b)


def test_fused_and_unfused_layers_agree(x):
    fused, plain = make(fused=True, return_sequences=True), make(fused=False, return_sequences=True)
    with torch.no_grad():
        for layer in (fused, plain):
            layer.peephole_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
            layer.gamma.fill_(0.3)
    a, b = fused(x), plain(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    a.square().sum().backward()
    b.square().sum().backward()
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_parameter_count_far_below_convlstm():
    fa = FAConvLSTM2D(64, 3, in_channels=8)
    conv = ConvLSTM2D(64, 3, in_channels=8)
    n_fa = sum(p.numel() for p in fa.parameters())
    n_conv = sum(p.numel() for p in conv.parameters())
    assert n_conv == 4 * 64 * (8 * 9 + 64 * 9 + 1)
    assert n_fa * 10 <= n_conv


def test_defaults_follow_the_spec():
    layer = FAConvLSTM2D(64, 3)
    assert layer.bottleneck == 16 and layer.attention_dim == 16 and layer.attention_heads == 1
    assert layer.dilation_rates == (1, 2, 4) and layer.se_ratio == 4 and layer.peephole
    assert layer.attention_every == 4 and float(layer.gamma.detach()) == 0.0
    assert FAConvLSTM2D(8, 3).bottleneck == 8  # max(8, filters // 4)
    assert torch.equal(layer.bias[64:128], torch.ones(64))  # unit forget bias
    assert [t for t in range(12) if layer.attends_at(t, t == 11)] == [3, 7, 11]
    assert [t for t in range(6) if layer.attends_at(t, t == 5)] == [3, 5]


@pytest.mark.parametrize(
    "flags, absent",
    [
        ({"se_ratio": 0}, "se"),
        ({"peephole": False}, "peephole_weight"),
        ({"attention_every": 0}, "attention"),
    ],
)
def test_each_component_switches_off(x, flags, absent):
    layer = make(**flags)
    assert getattr(layer, absent) is None
    assert layer(x).shape == (B, F, H, W)
    assert sum(p.numel() for p in layer.parameters()) < sum(p.numel() for p in make().parameters())


def test_single_branch_mixing(x):
    layer = make(dilation_rates=(1,))
    assert layer.mixing.weight.shape[0] == 1
    assert layer(x).shape == (B, F, H, W)


def test_attention_changes_the_recurrence_only_at_its_steps(x):
    layer = make(attention_every=2, return_sequences=True)
    base = layer(x)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    attended = layer(x)
    # steps 0 (before the first attention step at t=1) are identical; t=1 onwards differ
    torch.testing.assert_close(attended[:, 0], base[:, 0])
    assert not torch.allclose(attended[:, 1], base[:, 1])


def test_gamma_receives_gradient_at_init(x):
    layer = make()
    layer(x).sum().backward()
    assert layer.gamma.grad is not None and layer.gamma.grad.abs() > 0


def test_capture_internals_shapes_and_zero_cost_when_off(x):
    layer = make(attention_every=2)
    with layer.capture_internals() as rec:
        layer(x)
    r = layer.bottleneck
    assert rec["se_weights"].shape == (B, T, r)
    assert ((rec["se_weights"] > 0) & (rec["se_weights"] < 1)).all()
    assert rec["branch_energy"].shape == (B, T, 3) and (rec["branch_energy"] >= 0).all()
    assert [a["step"] for a in rec["attention"]] == [1, 3, 4]
    row, col = rec["attention"][0]["row"], rec["attention"][0]["col"]
    assert row.shape == (B, H, 1, W, W) and col.shape == (B, W, 1, H, H)
    torch.testing.assert_close(row.sum(-1), torch.ones(B, H, 1, W))
    assert layer._recorder is None  # off again after the block, hooks removed
    for module in (layer.mixing, layer.se, layer.attention):
        assert not module._forward_hooks


def test_attention_checkpointing_same_values_and_grads_less_saved(x):
    from faconvlstm.evaluation.efficiency import saved_for_backward_mb

    layers = [
        make(attention_every=2, return_sequences=True, attention_checkpointing=ck)
        for ck in (False, True)
    ]
    for layer in layers:
        with torch.no_grad():
            layer.gamma.fill_(0.5)  # attention on, so its gradients are exercised
    outs = [layer(x) for layer in layers]
    torch.testing.assert_close(outs[1], outs[0])
    for out in outs:
        out.square().sum().backward()
    for (name, a), b in zip(layers[0].named_parameters(), layers[1].parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    plain, ck = (saved_for_backward_mb(layer, x) for layer in layers)
    # 3 attended steps x (B·H·W = 192 px) x ~11 saved F- or d-wide maps of 16 floats ≈ 0.4 MiB
    assert plain - ck > 0.25, (plain, ck)
    assert FAConvLSTM2D.from_config(layers[1].get_config()).attention_checkpointing


def test_attention_checkpointing_records_each_attention_once(x):
    from torch.utils.checkpoint import set_checkpoint_early_stop

    layer = make(attention_every=2, attention_checkpointing=True)
    # without early stop a recompute runs the attention module whole, hooks included
    with set_checkpoint_early_stop(False), layer.capture_internals() as rec:
        layer(x).sum().backward()
    assert [a["step"] for a in rec["attention"]] == [1, 3, 4]


def test_attention_maps_match_attention_output(x):
    """The maps returned are the weights the layer actually used (recompute the output)."""
    from faconvlstm.layers.axial_attention import AxialAttention

    torch.manual_seed(0)
    att = AxialAttention(F, dim=16, heads=2)
    h = torch.randn(B, H, W, F)
    delta, maps = att(h), att.attention_maps(h)
    q, k, v = att.qkv(h).chunk(3, -1)
    v_row = v.reshape(B, H, W, 2, 16).permute(0, 1, 3, 2, 4)  # (B, H, n, W, d)
    v_col = v.reshape(B, H, W, 2, 16).permute(0, 2, 3, 1, 4)  # (B, W, n, H, d)
    row_out = (maps["row"] @ v_row).permute(0, 1, 3, 2, 4).reshape(B, H, W, 32)
    col_out = (maps["col"] @ v_col).permute(0, 3, 1, 2, 4).reshape(B, H, W, 32)
    torch.testing.assert_close(att.proj(row_out + col_out), delta, atol=1e-5, rtol=1e-5)


def test_strides_and_valid_padding_give_keras_grid():
    layer = FAConvLSTM2D(F, (3, 5), strides=2, padding="valid", in_channels=C)
    out = layer(torch.randn(1, 3, C, 17, 23))
    assert out.shape == (1, F, 8, 10)  # (17-3)//2+1, (23-5)//2+1


def test_autocast_bfloat16_cpu(x):
    layer = make(return_sequences=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    ref = layer(x)
    assert y.shape == ref.shape and torch.isfinite(y).all()
    assert (y.float() - ref).abs().max() < 0.1  # bf16 has ~3 significant digits
    y.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_export_inference(x):
    layer = make(return_sequences=True).eval()
    program = torch.export.export(layer, (x,))
    torch.testing.assert_close(program.module()(x), layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_torch_compile_matches_eager(x):
    layer = make(return_sequences=True)
    compiled = torch.compile(layer)
    torch.testing.assert_close(compiled(x), layer(x), atol=1e-4, rtol=1e-4)


def test_torch_compile_aot_eager_matches_eager(x):
    layer = make(return_sequences=True)
    compiled = torch.compile(layer, backend="aot_eager")
    y = compiled(x)
    torch.testing.assert_close(y, layer(x), atol=1e-5, rtol=1e-5)
    y.sum().backward()
    assert layer.expansion.grad is not None


def test_fa_extras_are_validated():
    with pytest.raises(ValueError, match="bottleneck"):
        FAConvLSTM2D(F, 3, bottleneck=0)
    with pytest.raises(ValueError, match="attention_every"):
        FAConvLSTM2D(F, 3, attention_every=-1)
    with pytest.raises(ValueError, match="dilation_rates"):
        FAConvLSTM2D(F, 3, dilation_rates=())


def test_stacked_layers_keep_signal_like_convlstm():
    """At initialisation a 2-layer FA stack passes at least half the signal a ConvLSTM2D
    stack does (guards the near-identity depthwise / He expansion initialisation)."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 4, 16, 32)
    stds = {}
    for cls in (FAConvLSTM2D, ConvLSTM2D):
        torch.manual_seed(1)
        l1 = cls(16, 3, padding="same", return_sequences=True, in_channels=4)
        l2 = cls(16, 3, padding="same", return_sequences=True, in_channels=16)
        with torch.no_grad():
            stds[cls] = l2(l1(x)).std().item()
    assert stds[FAConvLSTM2D] >= 0.5 * stds[ConvLSTM2D]
