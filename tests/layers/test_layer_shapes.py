"""Property-based: output shapes follow Keras' formula; invalid combinations raise."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faconvlstm import ConvLSTM2D, FAConvLSTM2D


def keras_out(n, k, s, d, padding):
    if padding == "same":
        return math.ceil(n / s)
    eff = (k - 1) * d + 1
    return (n - eff) // s + 1


pairs = st.tuples(st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cls=st.sampled_from([ConvLSTM2D, FAConvLSTM2D]),
    kernel=pairs,
    strides=pairs,
    dilation=pairs,
    padding=st.sampled_from(["valid", "same"]),
    hw=st.tuples(st.integers(1, 11), st.integers(1, 11)),
    data_format=st.sampled_from(["channels_first", "channels_last"]),
)
def test_output_shape_matches_keras_formula(
    cls, kernel, strides, dilation, padding, hw, data_format
):
    if max(strides) > 1 and max(dilation) > 1:
        with pytest.raises(ValueError, match="incompatible"):
            cls(3, kernel, strides, padding, data_format, dilation)
        return
    layer = cls(3, kernel, strides, padding, data_format, dilation, in_channels=2)
    expected = tuple(
        keras_out(n, k, s, d, padding) for n, k, s, d in zip(hw, kernel, strides, dilation)
    )
    shape = (1, 2, 2, *hw) if data_format == "channels_first" else (1, 2, *hw, 2)
    x = torch.randn(shape)
    if min(expected) < 1:
        with pytest.raises(ValueError, match="too small"):
            layer(x)
        return
    out = layer(x)
    want = (1, 3, *expected) if data_format == "channels_first" else (1, *expected, 3)
    assert tuple(out.shape) == want
