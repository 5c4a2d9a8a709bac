"""One-step cells: a loop over the cell is the layer, for every flag, with attention on."""

import itertools

import pytest
import torch

from faconvlstm import (
    CellState,
    ConvLSTM2D,
    ConvLSTM2DCell,
    FAConvLSTM2D,
    FAConvLSTM2DCell,
)

B, T, C, H, W, F = 2, 5, 3, 6, 8, 4
# T = 5 puts attention_every=4 on step 3 and on the last step 4 only, 2 on 1, 3, 4
# Both paths run the same ops in the same order on the same values, so they agree to
# float32 rounding of the one op whose batch differs (the input convolution runs over T·B
# frames in the layer, B in the cell); 1e-6 on O(1) activations is a few ulps.
TOL = {"atol": 1e-6, "rtol": 0.0}


def frames(data_format, seed=1):
    x = torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(seed))
    return x.permute(0, 1, 3, 4, 2) if data_format == "channels_last" else x


def roll(cell, x, state=None):
    outs = []
    for t in range(x.shape[1]):
        h, state = cell(x[:, t], state, last=t == x.shape[1] - 1)
        outs.append(h)
    return torch.stack(outs, dim=1), state


def switch_on(layer):
    """γ ≠ 0 and non-zero peepholes, so attention and peepholes change the numbers."""
    with torch.no_grad():
        if getattr(layer, "gamma", None) is not None:
            layer.gamma.fill_(0.8)
        if getattr(layer, "peephole_weight", None) is not None:
            layer.peephole_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
    return layer


FA_FLAGS = list(
    itertools.product(
        [True, False],  # peephole
        [0, 4],  # se_ratio
        [(1, 2), (1,)],  # dilation_rates
        [0, 1, 2, 4],  # attention_every
        ["zeros", "periodic_lon"],  # boundary
        [True, False],  # use_bias
        ["channels_first", "channels_last"],
    )
)


@pytest.mark.parametrize(
    "peephole, se_ratio, rates, every, boundary, use_bias, data_format", FA_FLAGS
)
def test_fa_cell_loop_equals_layer(
    peephole, se_ratio, rates, every, boundary, use_bias, data_format
):
    torch.manual_seed(0)
    layer = FAConvLSTM2D(
        F, 3, padding="same", data_format=data_format, use_bias=use_bias, boundary=boundary,
        dropout=0.3, recurrent_dropout=0.3, return_sequences=True, return_state=True,
        in_channels=C, peephole=peephole, se_ratio=se_ratio, dilation_rates=rates,
        attention_every=every,
    )  # fmt: skip
    switch_on(layer).eval()  # eval: dropout is off in both
    x = frames(data_format)
    seq, h, c = layer(x)
    out, state = roll(FAConvLSTM2DCell.from_layer(layer), x)
    torch.testing.assert_close(out, seq, **TOL)
    torch.testing.assert_close(state.h, h, **TOL)
    torch.testing.assert_close(state.c, c, **TOL)
    assert state.step == T


@pytest.mark.parametrize(
    "boundary, use_bias, data_format",
    list(
        itertools.product(
            ["zeros", "periodic_lon"], [True, False], ["channels_first", "channels_last"]
        )
    ),
)
def test_convlstm_cell_loop_equals_layer(boundary, use_bias, data_format):
    torch.manual_seed(0)
    layer = ConvLSTM2D(
        F, 3, padding="same", data_format=data_format, use_bias=use_bias, boundary=boundary,
        dropout=0.3, recurrent_dropout=0.3, return_sequences=True, return_state=True,
        in_channels=C,
    ).eval()  # fmt: skip
    x = frames(data_format)
    seq, h, c = layer(x)
    out, state = roll(ConvLSTM2DCell.from_layer(layer), x)
    torch.testing.assert_close(out, seq, **TOL)
    torch.testing.assert_close(state.c, c, **TOL)


def test_one_frame_layer_calls_attend_every_frame_but_the_cell_does_not():
    """The habit the cells replace: feeding a layer one frame at a time makes every call's
    single step its last, so attention runs every frame and the result drifts."""
    torch.manual_seed(0)
    layer = switch_on(FAConvLSTM2D(F, 3, padding="same", return_state=True, in_channels=C))
    x = frames("channels_first")
    full, _, _ = layer(x)
    state = None
    for t in range(T):
        y, h, c = layer(x[:, t : t + 1], initial_state=state)
        state = (h, c)
    assert (y - full).abs().max() > 1e-3  # the drift is real
    out, _ = roll(FAConvLSTM2DCell.from_layer(layer), x)
    torch.testing.assert_close(out[:, -1], full, **TOL)


def test_cell_resumes_from_a_state_and_from_a_layer_state():
    torch.manual_seed(0)
    layer = switch_on(
        FAConvLSTM2D(
            F,
            3,
            padding="same",
            attention_every=2,
            return_sequences=True,
            return_state=True,
            in_channels=C,
        )
    )
    cell = FAConvLSTM2DCell.from_layer(layer)
    x = frames("channels_first")
    seq, _, _ = layer(x)
    first, state = roll(cell, x[:, :2])  # last=True on step 1 is also a scheduled step
    rest, _ = roll(cell, x[:, 2:], state)  # resumes at step 2: the schedule continues
    torch.testing.assert_close(torch.cat([first, rest], dim=1), seq, **TOL)
    # a pair (h, c) starts at step 0, exactly as a layer's initial_state
    h0 = torch.randn(B, F, H, W, generator=torch.Generator().manual_seed(5))
    c0 = torch.randn(B, F, H, W, generator=torch.Generator().manual_seed(6))
    seq0, _, _ = layer(x, initial_state=(h0, c0))
    out0, _ = roll(cell, x, (h0, c0))
    torch.testing.assert_close(out0, seq0, **TOL)
    assert isinstance(state, CellState) and state.step == 2


def test_cell_shares_the_layers_parameters_and_trains_them():
    layer = FAConvLSTM2D(F, 3, padding="same", in_channels=C)
    cell = FAConvLSTM2DCell.from_layer(layer)
    assert cell.layer is layer
    assert [id(p) for p in cell.parameters()] == [id(p) for p in layer.parameters()]
    h, _ = cell(frames("channels_first")[:, 0])
    h.sum().backward()
    assert layer.input_kernel.grad is not None and layer.expansion.grad.abs().sum() > 0


def test_cell_built_from_arguments_is_lazy_and_equals_its_layer():
    torch.manual_seed(0)
    cell = FAConvLSTM2DCell(F, 3, padding="same", attention_every=2)
    x = frames("channels_first")
    out, _ = roll(cell, x)  # builds on the first frame
    assert cell.layer.in_channels == C and out.shape == (B, T, F, H, W)
    seq = cell.layer.run_sequence(x)[0]
    torch.testing.assert_close(out, seq, **TOL)


def test_cell_capture_internals_counts_cell_steps():
    torch.manual_seed(0)
    layer = FAConvLSTM2D(F, 3, padding="same", attention_every=2, in_channels=C)
    with layer.capture_internals() as rec:
        roll(FAConvLSTM2DCell.from_layer(layer), frames("channels_first"))
    assert rec["se_weights"].shape == (B, T, layer.bottleneck)
    assert [a["step"] for a in rec["attention"]] == [1, 3, 4]


def test_cell_errors_say_what_to_fix():
    with pytest.raises(ValueError, match="return_sequences do not apply"):
        FAConvLSTM2DCell(F, 3, return_sequences=True)
    with pytest.raises(TypeError, match="needs a FAConvLSTM2D"):
        FAConvLSTM2DCell.from_layer(ConvLSTM2D(F, 3))
    cell = ConvLSTM2DCell(F, 3, padding="same", in_channels=C)
    x = frames("channels_first")
    with pytest.raises(ValueError, match=r"one frame \(B, C, H, W\).*call the layer"):
        cell(x)
    with pytest.raises(ValueError, match="state must be None, a CellState"):
        cell(x[:, 0], (torch.zeros(B, F, H, W),))
    with pytest.raises(ValueError, match=r"initial_state h must have shape \(2, 4, 6, 8\)"):
        cell(x[:, 0], (torch.zeros(B, F, H, W + 1), torch.zeros(B, F, H, W)))
