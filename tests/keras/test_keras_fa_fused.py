"""The fused PyTorch-backend step of faconvlstm.keras.FAConvLSTM2D equals the keras.ops step.

``fused=True`` (default) runs the expansion + gates in ``lstm_gates`` and the convolutions
as ``F.conv2d``; ``fused=False`` is the plain ``keras.ops`` reference. Same weights, same
data: outputs and every weight gradient agree. Tolerance 1e-5: float32, the two paths sum
the same products in another order (blocked GEMM, tanh as 2σ(2x) − 1), which moves results
by a few ulps of O(1) values, far below 1e-5.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

if keras.backend.backend() != "torch":
    pytest.skip("these tests need KERAS_BACKEND=torch", allow_module_level=True)

import torch  # noqa: E402

from faconvlstm.keras import FAConvLSTM2D  # noqa: E402

TOL = 1e-5

CONFIGS = [
    dict(filters=4, kernel_size=3, padding="same", return_sequences=True, attention_every=2),
    dict(filters=3, kernel_size=(2, 4), strides=(2, 1), padding="same", dilation_rates=(1, 2)),
    dict(filters=3, kernel_size=3, padding="same", boundary="periodic_lon", se_ratio=0,
         peephole=False, use_bias=False, return_sequences=True),
    dict(filters=3, kernel_size=3, padding="valid", data_format="channels_first",
         recurrent_dropout=0.0),
]  # fmt: skip


def _pair(cfg):
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 8, 3)).astype("float32")
    if cfg.get("data_format") == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3))
    fused, ref = FAConvLSTM2D(**cfg), FAConvLSTM2D(**cfg, fused=False)
    fused(x), ref(x)
    ref.set_weights(fused.get_weights())
    # gamma starts at 0: a nonzero one makes the attention term count
    for layer in (fused, ref):
        layer.cell.gamma.assign(0.5) if layer.cell.attention_every else None
    return x, fused, ref


@pytest.mark.parametrize("cfg", CONFIGS)
def test_fused_matches_keras_ops_outputs_and_gradients(cfg):
    x, fused, ref = _pair(cfg)
    assert fused.cell.uses_fused and not ref.cell.uses_fused
    results = []
    for layer in (fused, ref):
        out = layer(torch.as_tensor(x))
        out.pow(2).sum().backward()
        grads = [w.value.grad.detach().clone() for w in layer.trainable_weights]
        results.append((out.detach().numpy(), grads))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=TOL, rtol=TOL)
    for g_fused, g_ref, w in zip(results[0][1], results[1][1], fused.trainable_weights):
        np.testing.assert_allclose(g_fused, g_ref, atol=TOL, rtol=TOL, err_msg=w.name)


def test_non_default_activation_takes_the_keras_ops_path():
    layer = FAConvLSTM2D(3, 3, padding="same", activation="relu")
    assert not layer.cell.uses_fused  # the kernel hard-codes tanh / sigmoid


def test_config_round_trip_with_and_without_fused():
    for fused in (True, False):
        config = FAConvLSTM2D(3, 3, fused=fused).get_config()
        assert config["fused"] is fused
        assert FAConvLSTM2D.from_config(config).fused is fused
    old = FAConvLSTM2D(3, 3).get_config()
    del old["fused"]  # a config saved before the argument existed
    assert FAConvLSTM2D.from_config(old).fused is True
