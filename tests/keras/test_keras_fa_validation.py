"""faconvlstm.keras.FAConvLSTM2D rejects inputs it was not built for, as Keras layers do.

A layer built on C channels refuses another channel count through its ``InputSpec`` (on the
PyTorch backend a wrong count would otherwise run as a grouped convolution and return a
silently wrong answer), and a mask whose shape does not match the sequence is refused with
a message naming the expected and the received shape. The same checks on JAX run in
test_keras_fa_jax.py.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from faconvlstm.keras import FAConvLSTM2D, FAConvLSTM2DCell  # noqa: E402

B, T, H, W, C = 2, 5, 6, 8, 3


def _x(shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def _shape(data_format, channels=C, steps=T):
    if data_format == "channels_first":
        return (B, steps, channels, H, W)
    return (B, steps, H, W, channels)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_built_layer_rejects_another_channel_count(data_format):
    layer = FAConvLSTM2D(4, 3, padding="same", data_format=data_format)
    layer(_x(_shape(data_format)))
    axis = -1 if data_format == "channels_last" else 2
    for channels in (6, 1):  # 6 = 2·3 ran as a grouped convolution; 1 broadcast
        with pytest.raises(ValueError, match=rf"expected axis {axis} .* value {C}"):
            layer(_x(_shape(data_format, channels)))
    # the spatial grid is not fixed (the layer runs on any H×W), only the channels
    assert layer(_x((B, T, 4, 10, C) if axis == -1 else (B, T, C, 4, 10))).shape[0] == B


def test_channel_count_is_checked_on_symbolic_inputs_and_after_from_torch():
    layer = FAConvLSTM2D(4, 3)
    layer.build((None, None, None, None, C))
    with pytest.raises(ValueError, match=rf"expected axis -1 .* value {C}"):
        layer(keras.Input((T, H, W, 2 * C)))
    import faconvlstm

    converted = FAConvLSTM2D.from_torch(faconvlstm.FAConvLSTM2D(4, 3, in_channels=C))
    with pytest.raises(ValueError, match=rf"expected axis 2 .* value {C}"):
        converted(_x(_shape("channels_first", 2 * C)))
    # Keras' own ConvLSTM2D refuses it as well: the behaviour we match
    reference = keras.layers.ConvLSTM2D(4, 3)
    reference(_x(_shape("channels_last")))
    with pytest.raises(ValueError, match="incompatible"):
        reference(_x(_shape("channels_last", 2 * C)))


def test_cell_alone_rejects_another_channel_count():
    cell = FAConvLSTM2DCell(4, 3, padding="same")
    frame = _x((B, H, W, C))
    state = [np.zeros((B, H, W, 4), "float32")] * 2
    cell(frame, state)
    with pytest.raises(ValueError, match=rf"expected axis -1 .* value {C}"):
        cell(_x((B, H, W, 2 * C)), state)


@pytest.mark.parametrize(
    ("mask_shape", "expected"),
    [
        ((B, 7), rf"\(batch, time\) = \({B}, {T}\).*got \({B}, 7\)"),  # too long in time
        ((B, 3), rf"\(batch, time\) = \({B}, {T}\).*got \({B}, 3\)"),  # too short in time
        ((B + 1, T), rf"\(batch, time\) = \({B}, {T}\).*got \({B + 1}, {T}\)"),
        ((B, T, H, W + 1), rf"\({B}, {T}, {H}, {W}\).*got \({B}, {T}, {H}, {W + 1}\)"),
        ((B, T, 1), r"got \(2, 5, 1\)"),  # neither a step nor a pixel mask
    ],
)
def test_mask_of_the_wrong_shape_is_rejected(mask_shape, expected):
    layer = FAConvLSTM2D(4, 3, padding="same", return_sequences=True)
    x = _x(_shape("channels_last"))
    mask = np.ones(mask_shape, dtype=bool)
    with pytest.raises(ValueError, match=expected):
        layer(x, mask=mask)


@pytest.mark.parametrize("mask_shape", [(B, T), (B, T, H, W)])
def test_masks_of_the_right_shape_still_work(mask_shape):
    layer = FAConvLSTM2D(4, 3, padding="same", return_sequences=True)
    x = _x(_shape("channels_last"))
    mask = np.ones(mask_shape, dtype=bool)
    mask[:, 1] = False  # step 1 repeats the output of step 0
    y = keras.ops.convert_to_numpy(layer(x, mask=mask))
    np.testing.assert_array_equal(y[:, 1], y[:, 0])


def test_pixel_mask_is_refused_for_channels_first_data():
    layer = FAConvLSTM2D(4, 3, padding="same", data_format="channels_first")
    x = _x(_shape("channels_first"))
    with pytest.raises(ValueError, match="channels_last"):
        layer(x, mask=np.ones((B, T, H, W), dtype=bool))
