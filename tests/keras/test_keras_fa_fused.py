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
    dict(filters=4, kernel_size=3, padding="same", attention_every=3, attention_heads=2,
         attention_dim=3, go_backwards=True, return_sequences=True),
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


def _graph_nodes(tensor):
    """Names of every autograd node behind ``tensor``."""
    seen, stack, names = set(), [tensor.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("one_node_depthwise", [False, True])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_fused_matches_keras_ops_outputs_and_gradients(monkeypatch, cfg, one_node_depthwise):
    # the PyTorch layer's one-node depthwise backward runs from FUSED_MIN_PIXELS up
    # (64x128-sized batches); a threshold of 0 puts these small grids on it too
    import faconvlstm.layers.depthwise as dw

    if one_node_depthwise:
        monkeypatch.setattr(dw, "FUSED_MIN_PIXELS", 0)
    x, fused, ref = _pair(cfg)
    assert fused.cell.uses_fused and not ref.cell.uses_fused
    results = []
    for layer in (fused, ref):
        out = layer(torch.as_tensor(x))
        nodes = _graph_nodes(out)
        if layer is fused:
            assert any("DepthwiseSum" in n for n in nodes) == one_node_depthwise
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


@pytest.mark.parametrize("mask_kind", ["steps", "pixels"])
def test_fused_matches_keras_ops_with_a_mask(mask_kind):
    cfg = dict(filters=3, kernel_size=3, padding="same", attention_every=2,
               return_sequences=True, go_backwards=True)  # fmt: skip
    x, fused, ref = _pair(cfg)
    rng = np.random.default_rng(4)
    shape = (2, 4) if mask_kind == "steps" else (2, 4, 6, 8)
    mask = torch.as_tensor(rng.random(shape) > 0.3)
    results = []
    for layer in (fused, ref):
        out = layer(torch.as_tensor(x), mask=mask)
        out.pow(2).sum().backward()
        grads = [w.value.grad.detach().clone() for w in layer.trainable_weights]
        results.append((out.detach().numpy(), grads))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=TOL, rtol=TOL)
    for g_fused, g_ref in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(g_fused, g_ref, atol=TOL, rtol=TOL)


def test_the_time_loop_reads_the_steps_through_unbind_not_indexing():
    # Keras' torch scan indexes the (T, ...) inputs at each step; each index's backward
    # (SelectBackward0) writes a zero-filled gradient of the whole sequence. The layer's
    # loop unbinds them instead.
    layer = FAConvLSTM2D(3, 3, padding="same", return_sequences=True)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 6, 5, 7, 2)).astype("float32"))
    nodes = _graph_nodes(layer(x))
    assert "SelectBackward0" not in nodes
    assert "UnbindBackward0" in nodes
