"""faconvlstm.keras.FAConvLSTM2D as a Keras layer: drop-in for ConvLSTM2D, wrappers, saving."""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from faconvlstm.keras import FAConvLSTM2D  # noqa: E402

B, T, H, W, C = 2, 4, 6, 8, 3


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _x(seed=0, shape=(B, T, H, W, C)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _model(recurrent_layer):
    """TimeDistributed encoder → Bidirectional recurrent layer → TimeDistributed head."""
    inputs = keras.Input((T, H, W, C))
    z = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, padding="same"))(inputs)
    z = keras.layers.Bidirectional(recurrent_layer)(z)
    outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 1))(z)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(padding="same"),
        dict(padding="same", return_sequences=True),
        dict(strides=2, padding="same", return_sequences=True, return_state=True),
        dict(kernel_size=(2, 3), dilation_rate=2, return_state=True),
        dict(data_format="channels_first", return_sequences=True),
    ],
)
def test_shapes_are_those_of_keras_convlstm2d(kwargs):
    kwargs = {"filters": 5, "kernel_size": 3, **kwargs}
    shape = (B, T, C, H, W) if kwargs.get("data_format") == "channels_first" else (B, T, H, W, C)
    x = _x(shape=shape)
    expected = keras.layers.ConvLSTM2D(**kwargs)(x)
    got = FAConvLSTM2D(**kwargs)(x)
    expected, got = keras.tree.flatten(expected), keras.tree.flatten(got)
    assert [tuple(g.shape) for g in got] == [tuple(e.shape) for e in expected]
    symbolic = keras.tree.flatten(FAConvLSTM2D(**kwargs)(keras.Input(shape[1:], batch_size=B)))
    assert [tuple(s.shape) for s in symbolic] == [tuple(e.shape) for e in expected]


def test_constructor_defaults_are_keras_convlstm2d_defaults():
    import inspect

    ours = inspect.signature(FAConvLSTM2D).parameters
    theirs = inspect.signature(keras.layers.ConvLSTM2D).parameters
    for name, p in theirs.items():
        if name == "kwargs":
            continue
        assert name in ours, name
        assert ours[name].default == p.default, name


def test_bidirectional_after_time_distributed_in_a_functional_model():
    layer = FAConvLSTM2D(3, 3, padding="same", return_sequences=True, attention_every=2)
    model = _model(layer)
    x = _x()
    y = _np(model(x))
    assert y.shape == (B, T, H, W, 1)
    # the swap is the only change: the ConvLSTM2D model has the same output shape
    reference = _model(keras.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True))
    assert reference(x).shape == y.shape
    # the backward half is the backward layer on the encoder features, flipped back in time
    bidi = model.layers[2]
    assert bidi.backward_layer.go_backwards and not bidi.forward_layer.go_backwards
    features = model.layers[1](x)
    merged = _np(bidi(features))
    np.testing.assert_allclose(merged[..., :3], _np(bidi.forward_layer(features)), atol=1e-6)
    backward = _np(bidi.backward_layer(features))[:, ::-1]
    np.testing.assert_allclose(merged[..., 3:], backward, atol=1e-6)


def test_save_and_load_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = _model(
        FAConvLSTM2D(
            3, 3, padding="same", return_sequences=True, attention_every=2, se_ratio=2,
            boundary="periodic_lon", kernel_regularizer="l2", dilation_rates=(1, 2),
        )
    )  # fmt: skip
    for w in model.weights:  # non-default gamma and peepholes, so every weight matters
        w.assign(np.random.default_rng(1).normal(0, 0.3, w.shape).astype("float32"))
    x = _x()
    expected = _np(model(x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the layer is registered
    np.testing.assert_allclose(_np(loaded(x)), expected, atol=1e-6, rtol=0)
    layer = loaded.layers[2].forward_layer
    assert isinstance(layer, FAConvLSTM2D) and layer.boundary == "periodic_lon"
    assert layer.dilation_rates == (1, 2) and layer.se_ratio == 2


def test_get_config_round_trip():
    layer = FAConvLSTM2D(
        6, (3, 2), strides=(1, 2), padding="same", data_format="channels_first",
        activation="relu", use_bias=True, unit_forget_bias=False,
        kernel_initializer="he_normal", bias_regularizer="l1", recurrent_constraint="non_neg",
        dropout=0.1, recurrent_dropout=0.2, seed=7, return_sequences=True, go_backwards=True,
        bottleneck=5, dilation_rates=(1, 3), se_ratio=0, peephole=False, attention_every=2,
        attention_heads=2, attention_dim=8, boundary="periodic_lon",
        depthwise_initializer="ones", expansion_regularizer="l2", zero_output_for_mask=True,
        name="fa",
    )  # fmt: skip
    config = layer.get_config()
    clone = FAConvLSTM2D.from_config(config)
    assert clone.get_config() == config
    assert config["bottleneck"] == 5 and config["seed"] == 7 and config["zero_output_for_mask"]
    assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == config


def test_default_initialisation():
    keras.utils.set_random_seed(0)
    layer = FAConvLSTM2D(8, 3, padding="same")
    layer(_x())
    cell = layer.cell
    bias = _np(cell.bias)
    np.testing.assert_array_equal(bias[8:16], 1.0)  # unit forget bias
    assert not bias[:8].any() and not bias[16:].any()
    assert not _np(cell.peephole_weight).any() and float(_np(cell.gamma)) == 0.0
    n, kh, kw = 3, 3, 3
    assert np.abs(_np(cell.depthwise_kernel)).max() <= 1 / np.sqrt(n * kh * kw)
    u = _np(cell.recurrent_kernel)  # (F, r) = (8, 8): orthogonal
    np.testing.assert_allclose(u.T @ u, np.eye(8), atol=1e-5)


def test_dropout_is_training_only_seeded_and_shared_over_time(monkeypatch):
    x = _x()

    def run(seed, training):
        keras.utils.set_random_seed(0)
        layer = FAConvLSTM2D(3, 3, padding="same", dropout=0.5, recurrent_dropout=0.5,
                             seed=seed, return_sequences=True)  # fmt: skip
        return _np(layer(x, training=training))

    inference = run(1, False)
    a, b, other = run(1, True), run(1, True), run(2, True)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - inference).max() > 1e-3 and np.abs(a - other).max() > 1e-3
    # one input and one recurrent mask per call, whatever T: drawn once, shared over time
    shapes = []
    dropout = keras.random.dropout

    def counting_dropout(inputs, rate, **kwargs):
        shapes.append(tuple(inputs.shape))
        return dropout(inputs, rate, **kwargs)

    monkeypatch.setattr(keras.random, "dropout", counting_dropout)
    run(1, True)
    assert shapes == [(B, H, W, C), (B, H, W, 3)]


def test_fit_runs_and_reduces_the_loss():
    keras.utils.set_random_seed(0)
    model = _model(FAConvLSTM2D(3, 3, padding="same", return_sequences=True, attention_every=2))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = _x(shape=(8, T, H, W, C))
    y = x[..., :1]
    history = model.fit(x, y, batch_size=4, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_errors_are_explained():
    with pytest.raises(ValueError, match="periodic_lon"):
        FAConvLSTM2D(3, 3, boundary="periodic_lon")  # valid padding cannot wrap
    with pytest.raises(ValueError, match="strides"):
        FAConvLSTM2D(3, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="bottleneck"):
        FAConvLSTM2D(3, 3, bottleneck=0)
    with pytest.raises(ValueError, match="not built"):
        FAConvLSTM2D(3, 3).to_torch()
    with pytest.raises(ValueError, match="PyTorch counterpart"):
        layer = FAConvLSTM2D(3, 3, activation="mish")
        layer(_x())
        layer.to_torch()


def test_importing_faconvlstm_does_not_import_keras():
    code = "import sys, faconvlstm; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_keras_autoencoder_example_trains_and_converts():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "keras_autoencoder.py"
    spec = importlib.util.spec_from_file_location("keras_autoencoder_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(
        ["--steps", "4", "--nlat", "8", "--nlon", "16", "--width", "8", "--epochs", "2"]
    )
    assert result["mse_after"] < result["mse_before"]
    assert result["torch_gap"] < 1e-5
