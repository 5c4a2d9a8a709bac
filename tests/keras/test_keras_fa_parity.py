"""faconvlstm.keras.FAConvLSTM2D agrees with the PyTorch FAConvLSTM2D (the reference) to 1e-5.

Weights go both ways (PyTorch → Keras with ``from_torch``, Keras → PyTorch with
``to_torch``), in both data formats, for every code path of the step: padding, strides,
dilation, even kernels, go_backwards, return_state, masks, initial and carried states,
periodic longitude, the ablations (no SE / peephole / attention) and multi-head attention.
Keras runs on the PyTorch backend (tests/conftest.py); JAX is tested in test_keras_fa_jax.py.
"""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

if keras.backend.backend() != "torch":
    pytest.skip("these tests need KERAS_BACKEND=torch", allow_module_level=True)

import faconvlstm  # noqa: E402
from faconvlstm.keras import FAConvLSTM2D  # noqa: E402

TOL = 1e-5
B, T, C, H, W = 2, 4, 3, 6, 8

CONFIGS = [
    dict(filters=4, kernel_size=3, padding="valid"),
    dict(filters=4, kernel_size=3, padding="same", return_sequences=True, attention_every=2),
    dict(filters=3, kernel_size=(2, 4), padding="same", return_sequences=True),  # even kernel
    dict(filters=3, kernel_size=3, strides=2, padding="same", return_sequences=True),
    dict(filters=3, kernel_size=(3, 2), strides=(2, 1), padding="valid"),
    dict(filters=3, kernel_size=3, dilation_rate=2, padding="same", attention_every=3),
    dict(filters=3, kernel_size=3, padding="same", go_backwards=True, return_sequences=True,
         attention_every=3),
    dict(filters=3, kernel_size=3, padding="same", return_state=True),
    dict(filters=3, kernel_size=3, padding="same", boundary="periodic_lon",
         dilation_rates=(1, 3), return_sequences=True, attention_every=2),
    dict(filters=3, kernel_size=3, padding="same", se_ratio=0, peephole=False,
         attention_every=0, return_sequences=True),
    dict(filters=4, kernel_size=3, padding="same", bottleneck=5, attention_heads=2,
         attention_dim=4, attention_every=1, return_sequences=True),
    dict(filters=3, kernel_size=3, padding="same", activation="relu",
         recurrent_activation="hard_sigmoid", use_bias=False, return_sequences=True),
]  # fmt: skip
IDS = [",".join(f"{k}={v}" for k, v in c.items()) for c in CONFIGS]


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _inputs(data_format, seed=1, shape=(B, T, C, H, W)):
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    return np.moveaxis(x, 2, -1) if data_format == "channels_last" else x


def _random_torch_layer(cfg, data_format):
    """A PyTorch layer with every weight random (gamma and peepholes non-zero)."""
    torch.manual_seed(0)
    layer = faconvlstm.FAConvLSTM2D(data_format=data_format, in_channels=C, **cfg)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)
    return layer


def _random_keras_layer(cfg, data_format, x):
    keras.utils.set_random_seed(0)
    layer = FAConvLSTM2D(data_format=data_format, **cfg)
    layer(x)  # build
    rng = np.random.default_rng(4)
    layer.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in layer.weights])
    return layer


def _assert_close(got, expected):
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
        got = (got,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        e = e.detach().numpy()
        assert _np(g).shape == e.shape
        np.testing.assert_allclose(_np(g), e, atol=TOL, rtol=0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_from_torch_matches_torch(cfg, data_format):
    x = _inputs(data_format)
    t_layer = _random_torch_layer(cfg, data_format)
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    assert k_layer.data_format == data_format
    _assert_close(k_layer(x), t_layer(torch.from_numpy(x)))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_to_torch_matches_keras(cfg, data_format):
    x = _inputs(data_format)
    k_layer = _random_keras_layer(cfg, data_format, x)
    t_layer = k_layer.to_torch()
    assert isinstance(t_layer, faconvlstm.FAConvLSTM2D) and t_layer.data_format == data_format
    _assert_close(k_layer(x), t_layer(torch.from_numpy(x)))


def test_round_trip_keeps_every_weight():
    x = _inputs("channels_last")
    k_layer = _random_keras_layer(CONFIGS[1], "channels_last", x)
    back = FAConvLSTM2D.from_torch(k_layer.to_torch())
    assert [w.path.split("/")[-1] for w in back.weights] == [
        w.path.split("/")[-1] for w in k_layer.weights
    ]
    for a, b in zip(k_layer.weights, back.weights):
        np.testing.assert_array_equal(_np(a), _np(b))


def test_data_format_override_converts_layouts():
    t_layer = _random_torch_layer(CONFIGS[1], "channels_first")
    k_layer = FAConvLSTM2D.from_torch(t_layer, data_format="channels_last")
    x = _inputs("channels_first")
    expected = t_layer(torch.from_numpy(x)).detach().numpy()
    got = _np(k_layer(np.moveaxis(x, 2, -1)))
    np.testing.assert_allclose(got, np.moveaxis(expected, 2, -1), atol=TOL, rtol=0)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_initial_state_and_mask_match_torch(data_format, go_backwards):
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True,
               return_state=True, attention_every=2, go_backwards=go_backwards)  # fmt: skip
    t_layer = _random_torch_layer(cfg, data_format)
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    rng = np.random.default_rng(2)
    state_shape = (B, H, W, 3) if data_format == "channels_last" else (B, 3, H, W)
    h0, c0 = (rng.normal(size=state_shape).astype("float32") for _ in range(2))
    mask = np.array([[1, 0, 1, 0], [0, 1, 1, 1]], dtype=bool)  # masked first and last steps
    x = _inputs(data_format)
    got = k_layer(x, initial_state=[h0, c0], mask=mask)
    expected = t_layer(
        torch.from_numpy(x),
        initial_state=(torch.from_numpy(h0), torch.from_numpy(c0)),
        mask=torch.from_numpy(mask),
    )
    _assert_close(got, expected)


def test_zero_output_for_mask_zeroes_masked_outputs_only():
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True, return_state=True)
    t_layer = _random_torch_layer(cfg, "channels_last")
    k_layer = FAConvLSTM2D.from_torch(t_layer, zero_output_for_mask=True)
    mask = np.array([[1, 0, 1, 0], [1, 1, 1, 1]], dtype=bool)
    x = _inputs("channels_last")
    out, h, c = k_layer(x, mask=mask)
    ref_out, ref_h, ref_c = t_layer(torch.from_numpy(x), mask=torch.from_numpy(mask))
    ref_out = ref_out.detach().numpy() * mask[:, :, None, None, None]
    np.testing.assert_allclose(_np(out), ref_out, atol=TOL, rtol=0)
    _assert_close((h, c), (ref_h, ref_c))


def test_stateful_carry_matches_torch():
    cfg = dict(filters=3, kernel_size=3, padding="same", stateful=True, attention_every=2)
    t_layer = _random_torch_layer(cfg, "channels_last")
    k_layer = FAConvLSTM2D.from_torch(t_layer, input_shape=(B, T, H, W, C))
    x1, x2 = _inputs("channels_last", seed=5), _inputs("channels_last", seed=6)
    for x in (x1, x2):
        _assert_close(k_layer(x), t_layer(torch.from_numpy(x)))
    k_layer.reset_state()
    t_layer.reset_state()
    _assert_close(k_layer(x2), t_layer(torch.from_numpy(x2)))
    with pytest.raises(ValueError, match="batch size"):
        k_layer(x2[:1])


def test_attention_runs_on_the_schedule_only():
    """gamma ≠ 0 changes the output only through the attention steps (t = 1, 3 for k = 2)."""
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True, attention_every=2)
    t_layer = _random_torch_layer(cfg, "channels_last")
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    x = _inputs("channels_last")
    with_attention = _np(k_layer(x))
    k_layer.cell.gamma.assign(0.0)
    without = _np(k_layer(x))
    changed = np.abs(with_attention - without).max(axis=(0, 2, 3, 4)) > 1e-6
    assert changed.tolist() == [False, True, True, True]  # step 1 attends, step 2 inherits it


def test_layer_runs_on_another_grid_than_it_was_built_on():
    t_layer = _random_torch_layer(CONFIGS[1], "channels_last")
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    x = _inputs("channels_last", shape=(1, 3, C, 5, 12))
    _assert_close(k_layer(x), t_layer(torch.from_numpy(x)))


def test_gradients_match_torch():
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True, attention_every=2)
    t_layer = _random_torch_layer(cfg, "channels_last")
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    x = _inputs("channels_last")
    t_layer(torch.from_numpy(x)).square().sum().backward()
    k_out = k_layer(x)
    k_out.square().sum().backward()  # the torch backend: Keras variables are torch Parameters
    from faconvlstm.keras.convert import weight_pairs

    for variable, param, perm in weight_pairs(k_layer, t_layer):
        grad = variable.value.grad.numpy()
        expected = np.transpose(param.grad.numpy(), perm)
        np.testing.assert_allclose(grad, expected, atol=1e-4, rtol=1e-4, err_msg=variable.path)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_cell_call_is_one_step_of_the_layer(data_format):
    """cell.call(x_t, [h, c], attend=True) is the layer on a one-step sequence (T = 1 is the
    last step, so it attends), in the layer's data format."""
    cfg = dict(filters=3, kernel_size=3, padding="same", return_state=True)
    t_layer = _random_torch_layer(cfg, data_format)
    k_layer = FAConvLSTM2D.from_torch(t_layer)
    x = _inputs(data_format)[:, :1]
    rng = np.random.default_rng(7)
    state_shape = (B, H, W, 3) if data_format == "channels_last" else (B, 3, H, W)
    h0, c0 = (rng.normal(size=state_shape).astype("float32") for _ in range(2))
    out, (h, c) = k_layer.cell(x[:, 0], [h0, c0], attend=True)
    expected = t_layer(
        torch.from_numpy(x), initial_state=(torch.from_numpy(h0), torch.from_numpy(c0))
    )
    _assert_close((out, h, c), expected)


def test_pixel_mask_of_a_masking_layer_acts_per_pixel():
    """A (B, T, H, W) mask, as keras.layers.Masking gives ConvLSTM2D: constant over the grid it
    is the (B, T) mask; where a pixel is masked its output and state are carried over."""
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True, attention_every=0)
    k_layer = FAConvLSTM2D.from_torch(_random_torch_layer(cfg, "channels_last"))
    x = _inputs("channels_last")
    steps = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=bool)
    pixels = np.broadcast_to(steps[:, :, None, None], (B, T, H, W))
    np.testing.assert_allclose(_np(k_layer(x, mask=pixels)), _np(k_layer(x, mask=steps)))
    pixels = np.ones((B, T, H, W), dtype=bool)
    pixels[:, 2, :3] = False  # the northern half skips step 2
    out = _np(k_layer(x, mask=pixels))
    np.testing.assert_array_equal(out[:, 2, :3], out[:, 1, :3])
    assert np.abs(out[:, 2, 3:] - out[:, 1, 3:]).max() > 1e-3
    inputs = keras.Input((T, H, W, C))
    model = keras.Model(inputs, k_layer(keras.layers.Masking(0.0)(inputs)))
    x[:, 2, :3] = 0.0
    np.testing.assert_allclose(_np(model(x)), _np(k_layer(x, mask=np.any(x != 0, axis=-1))))
