"""Semantics of the shared time loop, checked on both cells (the drop-in contract)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from faconvlstm import Bidirectional, ConvLSTM2D, FAConvLSTM2D, RecurrentStack

CELLS = [ConvLSTM2D, FAConvLSTM2D]
B, T, C, H, W, F = 2, 5, 3, 8, 12, 6


def make(cls, **kw):
    torch.manual_seed(0)
    kw.setdefault("padding", "same")
    kw.setdefault("in_channels", C)
    if cls is FAConvLSTM2D:
        kw.setdefault("attention_every", 2)
    layer = cls(F, 3, **kw)
    if cls is FAConvLSTM2D:  # switch on attention and peepholes so they are exercised
        with torch.no_grad():
            layer.gamma.fill_(0.5)
            layer.peephole_weight.normal_(0, 0.3)
    return layer


@pytest.fixture
def x():
    return torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("cls", CELLS)
def test_return_flags_shapes(cls, x):
    out = make(cls)(x)
    assert out.shape == (B, F, H, W)
    seq = make(cls, return_sequences=True)(x)
    assert seq.shape == (B, T, F, H, W)
    torch.testing.assert_close(seq[:, -1], out)
    y, h, c = make(cls, return_state=True)(x)
    torch.testing.assert_close(y, h)
    assert c.shape == h.shape == (B, F, H, W)


@pytest.mark.parametrize("cls", CELLS)
def test_channels_last_equals_channels_first(cls, x):
    first = make(cls, return_sequences=True)(x)
    last = make(cls, return_sequences=True, data_format="channels_last")(x.permute(0, 1, 3, 4, 2))
    torch.testing.assert_close(last, first.permute(0, 1, 3, 4, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CELLS)
def test_go_backwards_is_forward_on_reversed_input(cls, x):
    back = make(cls, return_sequences=True, go_backwards=True)(x)
    fwd = make(cls, return_sequences=True)(x.flip(1))
    torch.testing.assert_close(back, fwd)


@pytest.mark.parametrize("cls", CELLS)
def test_stateful_carry_equals_one_long_sequence(cls, x):
    whole = make(cls, return_sequences=True)(x)
    layer = make(cls, return_sequences=True, stateful=True)
    parts = torch.cat([layer(x[:, :2]), layer(x[:, 2:])], dim=1)
    if cls is FAConvLSTM2D:  # attention fires at chunk ends, so compare the first chunk only
        torch.testing.assert_close(parts[:, :2], whole[:, :2])
    else:
        torch.testing.assert_close(parts, whole)
    with pytest.raises(ValueError, match="batch size"):
        layer(x[:1])
    layer.reset_state()
    torch.testing.assert_close(layer(x[:, :2]), whole[:, :2])


@pytest.mark.parametrize("cls", CELLS)
def test_initial_state_is_used_and_validated(cls, x):
    layer = make(cls, return_state=True)
    h0 = torch.randn(B, F, H, W)
    y0, _, _ = layer(x)
    y1, _, _ = layer(x, initial_state=(h0, torch.randn(B, F, H, W)))
    assert not torch.allclose(y0, y1)
    with pytest.raises(ValueError, match=r"initial_state h must have shape \(2, 6, 8, 12\)"):
        layer(x, initial_state=(torch.zeros(B, F, H, W + 1), torch.zeros(B, F, H, W)))


@pytest.mark.parametrize("cls", CELLS)
def test_mask_carries_state_and_repeats_output(cls, x):
    layer = make(cls, return_sequences=True, return_state=True)
    mask = torch.tensor([[True, False, True, True, False], [False, True, True, False, True]])
    seq, h, c = layer(x, mask=mask)
    torch.testing.assert_close(seq[0, 1], seq[0, 0])  # masked step repeats previous output
    assert torch.count_nonzero(seq[1, 0]) == 0  # masked first step: zeros
    torch.testing.assert_close(h[0], seq[0, 3])  # last valid output is the final h
    # a sequence with the masked steps removed gives the same final state
    _, ref_h, ref_c = make(cls, return_sequences=True, return_state=True)(x[:1, [0, 2, 3]])
    if cls is ConvLSTM2D:  # (FA attention step indices depend on T, so only the baseline)
        torch.testing.assert_close(h[:1], ref_h)
        torch.testing.assert_close(c[:1], ref_c)


@pytest.mark.parametrize("cls", CELLS)
def test_dropout_masks_fixed_over_time_and_only_in_training(cls, x):
    layer = make(cls, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    layer.eval()
    torch.testing.assert_close(layer(x), make(cls, return_sequences=True)(x))
    layer.train()
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(4)
    b = layer(x)
    assert not torch.allclose(a, b)  # fresh masks per call
    # Masks are shared across time: a constant-in-time input zeroed by the input mask at a
    # pixel/channel stays zeroed at every step -> the per-step masks must be identical.
    from faconvlstm.layers.recurrent import dropout_mask

    masks = dropout_mask(x[:, 0], 0.5, 4)
    assert len(masks) == 4 and all(m.shape == x[:, 0].shape for m in masks)
    assert set(torch.unique(masks[0]).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("cls", CELLS)
def test_state_created_on_input_dtype(cls, x):
    layer = make(cls, return_state=True).double()
    _, h, c = layer(x.double())
    assert h.dtype == c.dtype == torch.float64


@pytest.mark.parametrize("cls", CELLS)
def test_config_and_state_dict_round_trip(cls, x):
    layer = make(cls, return_sequences=True)
    clone = cls.from_config(layer.get_config())
    clone.load_state_dict(layer.state_dict())
    torch.testing.assert_close(clone(x), layer(x))
    lazy = cls.from_config({**layer.get_config(), "in_channels": None})
    lazy.load_state_dict(layer.state_dict())  # builds from the state dict
    torch.testing.assert_close(lazy(x), layer(x))


@pytest.mark.parametrize("cls", CELLS)
def test_lazy_build_infers_channels(cls, x):
    layer = cls(F, 3, padding="same")
    assert layer.in_channels is None
    layer(x)
    assert layer.in_channels == C
    with pytest.raises(ValueError, match="built for 3 input channels but the input has 4"):
        layer(torch.randn(B, T, 4, H, W))


@pytest.mark.parametrize("cls", CELLS)
def test_runs_at_any_resolution(cls):
    layer = make(cls)
    for hw in [(8, 12), (16, 32), (5, 7)]:
        assert layer(torch.randn(1, 3, C, *hw)).shape == (1, F, *hw)


@pytest.mark.parametrize("cls", CELLS)
def test_periodic_lon_rolls_with_the_input(cls, x):
    layer = make(cls, boundary="periodic_lon", return_sequences=True)
    y = layer(x)
    y_rolled = layer(x.roll(5, dims=-1))
    torch.testing.assert_close(y_rolled, y.roll(5, dims=-1), atol=1e-5, rtol=1e-5)
    zeros = make(cls, return_sequences=True)  # zero padding breaks the symmetry
    assert not torch.allclose(zeros(x.roll(5, dims=-1)), zeros(x).roll(5, dims=-1), atol=1e-3)


@pytest.mark.parametrize("cls", CELLS)
def test_gradient_checkpointing_same_values_and_grads(cls, x):
    ref = make(cls, return_sequences=True)
    ck = make(cls, return_sequences=True, gradient_checkpointing=True)
    ref(x).square().sum().backward()
    ck(x).square().sum().backward()
    for (name, a), b in zip(ref.named_parameters(), ck.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


@pytest.mark.parametrize("cls", CELLS)
def test_bidirectional_concat_and_states(cls, x):
    bi = Bidirectional(make(cls, return_sequences=True, return_state=True))
    out, hf, cf, hb, cb = bi(x)
    assert out.shape == (B, T, 2 * F, H, W)
    fwd = bi.forward_layer(x)[0]
    bwd = bi.backward_layer(x)[0]
    torch.testing.assert_close(out[:, :, :F], fwd)
    torch.testing.assert_close(out[:, :, F:], bwd.flip(1))  # back in input order
    summed = Bidirectional(make(cls), merge_mode="sum")(x)
    assert summed.shape == (B, F, H, W)


@pytest.mark.parametrize("cls", CELLS)
def test_stack_returns_every_layers_state(cls, x):
    l1 = make(cls, return_sequences=True)
    l2 = cls(4, 3, padding="same", in_channels=F)
    seq, states = RecurrentStack([l1, l2])(x)
    assert seq.shape == (B, T, 4, H, W)
    assert [s[0].shape[1] for s in states] == [F, 4]
    torch.testing.assert_close(states[0][0], l1(x)[:, -1])


@pytest.mark.parametrize("cls", CELLS)
def test_clear_errors(cls, x):
    with pytest.raises(ValueError, match="5-D input"):
        make(cls)(x[0])
    with pytest.raises(ValueError, match="incompatible with dilation_rate"):
        cls(F, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding must be one of"):
        cls(F, 3, padding="full")
    with pytest.raises(ValueError, match="too small"):
        cls(F, 5, padding="valid")(torch.randn(1, 2, C, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        bad = x.clone()
        bad[0, 1, 0, 2, 2] = float("nan")
        make(cls, check_finite=True)(bad)
    with pytest.raises(ValueError, match="mask must have shape"):
        make(cls)(x, mask=torch.ones(B, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="periodic_lon"):
        cls(F, 3, padding="valid", boundary="periodic_lon")
    with pytest.raises(ValueError, match="dropout"):
        cls(F, 3, dropout=1.0)
    with pytest.raises(ValueError, match="kernel_size"):
        cls(F, (3, 3, 3))


class _SelectBackwardElements(TorchDispatchMode):
    """Counts the elements written by ``aten.select_backward`` (each call materialises a
    zero-filled tensor the size of the whole input it indexed)."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.select_backward.default:
            self.elements += out.numel()
        return out


@pytest.mark.parametrize("cls", CELLS)
def test_backward_of_the_time_loop_does_not_rebuild_the_sequence_per_step(cls, x):
    # Indexing the time-major input sequence xs[t] in the loop made backward write T
    # zero-filled copies of the whole (T, B, 4F, H, W) gradient (half of ConvLSTM's
    # training step at the demo's size); unbind's backward is one stack. Gradients equal.
    layer = make(cls, return_sequences=True)
    x = x.requires_grad_()
    loss = layer(x).square().sum()
    counter = _SelectBackwardElements()
    with counter:
        loss.backward()
    assert counter.elements == 0
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
