"""ConvLSTM2D agrees with the real keras.layers.ConvLSTM2D (Keras 3, torch backend) to 1e-5."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from faconvlstm import ConvLSTM2D  # noqa: E402

if keras.backend.backend() != "torch":
    pytest.skip("these tests need KERAS_BACKEND=torch", allow_module_level=True)

TOL = 1e-5  # float32 sums of at most a few hundred products: rounding stays ~1e-6

CONFIGS = [
    dict(filters=4, kernel_size=3, padding="valid"),
    dict(filters=3, kernel_size=3, padding="same", return_sequences=True),
    dict(filters=4, kernel_size=(2, 4), padding="same", return_sequences=True),  # even, asymmetric
    dict(filters=3, kernel_size=3, strides=2, padding="same", return_sequences=True),
    dict(filters=3, kernel_size=(3, 2), strides=(2, 3), padding="valid"),
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", return_sequences=True),
    dict(filters=2, kernel_size=(3, 1), dilation_rate=(1, 2), padding="valid"),
    dict(filters=3, kernel_size=3, padding="same", go_backwards=True, return_sequences=True),
    dict(filters=3, kernel_size=3, padding="same", return_state=True),
    dict(filters=3, kernel_size=3, padding="same", activation="relu",
         recurrent_activation="hard_sigmoid", return_sequences=True),
    dict(filters=3, kernel_size=3, padding="same", use_bias=False, return_sequences=True),
]  # fmt: skip


def _keras_layer(cfg, data_format, x):
    layer = keras.layers.ConvLSTM2D(data_format=data_format, **cfg)
    layer(x)  # build
    rng = np.random.default_rng(0)
    # random non-trivial weights (the default bias is mostly 0/1)
    layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _inputs(data_format, shape=(2, 5, 3, 9, 11), seed=1):
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    if data_format == "channels_last":
        x = np.moveaxis(x, 2, -1)
    return x


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_outputs_match_keras(cfg, data_format):
    x = _inputs(data_format)
    k_layer = _keras_layer(cfg, data_format, x)
    t_layer = ConvLSTM2D.from_keras(k_layer)
    expected = k_layer(x)
    got = t_layer(torch.from_numpy(x))
    if cfg.get("return_state"):
        assert len(got) == 3
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g.detach().numpy(), _np(e), atol=TOL, rtol=0)
    else:
        assert tuple(got.shape) == tuple(expected.shape)
        np.testing.assert_allclose(got.detach().numpy(), _np(expected), atol=TOL, rtol=0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_initial_state_and_mask_match_keras(data_format):
    cfg = dict(filters=3, kernel_size=3, padding="same", return_sequences=True, return_state=True)
    x = _inputs(data_format)
    k_layer = _keras_layer(cfg, data_format, x)
    t_layer = ConvLSTM2D.from_keras(k_layer)
    rng = np.random.default_rng(2)
    state_shape = (2, 9, 11, 3) if data_format == "channels_last" else (2, 3, 9, 11)
    h0 = rng.normal(size=state_shape).astype("float32")
    c0 = rng.normal(size=state_shape).astype("float32")
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 0, 1]], dtype=bool)  # masked first step too
    expected = k_layer(x, initial_state=[h0, c0], mask=mask)
    got = t_layer(
        torch.from_numpy(x),
        initial_state=(torch.from_numpy(h0), torch.from_numpy(c0)),
        mask=torch.from_numpy(mask),
    )
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.detach().numpy(), _np(e), atol=TOL, rtol=0)


def test_from_keras_rejects_unbuilt_layer():
    with pytest.raises(ValueError, match="not built"):
        ConvLSTM2D.from_keras(keras.layers.ConvLSTM2D(2, 3))


def test_default_initialisation_matches_keras_bias_and_statistics():
    """Forget bias exactly 1, other biases 0; kernel std of glorot-uniform; orthogonal U."""
    torch.manual_seed(0)
    layer = ConvLSTM2D(8, 3, in_channels=5)
    F = 8
    assert torch.equal(layer.bias[F : 2 * F], torch.ones(F))
    assert (
        torch.count_nonzero(layer.bias[:F]) == 0 and torch.count_nonzero(layer.bias[2 * F :]) == 0
    )
    fan_in, fan_out = 5 * 9, 4 * F * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert layer.kernel.abs().max() <= bound
    assert layer.kernel.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)
    u = layer.recurrent_kernel.reshape(4 * F, -1)  # (32, 72): orthonormal rows
    torch.testing.assert_close(u @ u.T, torch.eye(4 * F), atol=1e-5, rtol=0)
