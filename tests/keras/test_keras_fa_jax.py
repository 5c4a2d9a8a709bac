"""faconvlstm.keras.FAConvLSTM2D on the JAX backend (CPU), against the PyTorch reference.

The Keras backend is fixed per process, so the checks run in subprocesses with
``KERAS_BACKEND=jax``: a light one, where ``import faconvlstm.keras`` must load neither
PyTorch nor the training stack and the layer validates its inputs without them; and the
parity one: 1e-5 against PyTorch for several configurations, mask and initial state
included, a jit-compiled ``model.fit`` of a Bidirectional model with dropout, and a
``.keras`` save/load round trip. jax comes with the ``test`` extra.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip(
    "jax", reason="jax is not installed: pip install 'faconvlstm[test]' (CPU jax) to test "
    "the Keras layer on the JAX backend"
)  # fmt: skip

JAX_ENV = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}

LIGHT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from faconvlstm.keras import FAConvLSTM2D

    # (not matplotlib: Keras itself imports it where it is installed)
    heavy = ("torch", "xarray", "lightning", "dask", "einops")
    loaded = sorted(m for m in heavy if m in sys.modules)
    sys.modules["torch"] = None  # from here on, as if PyTorch were not installed

    def error(fn):
        try:
            fn()
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    x = np.zeros((2, 5, 6, 8, 3), "float32")
    layer = FAConvLSTM2D(4, 3, padding="same", return_sequences=True)
    shape = tuple(layer(x).shape)
    errors = {
        "channels": error(lambda: layer(np.zeros((2, 5, 6, 8, 6), "float32"))),
        "mask": error(lambda: layer(x, mask=np.ones((2, 7), bool))),
        "to_torch": error(layer.to_torch),
    }
    print(json.dumps({"backend": keras.backend.backend(), "loaded": loaded,
                      "shape": shape, "errors": errors}))
    """
)


@pytest.fixture(scope="module")
def light_run():
    run = subprocess.run(
        [sys.executable, "-c", LIGHT_SCRIPT], capture_output=True, text=True, env=JAX_ENV,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_import_on_jax_loads_neither_torch_nor_the_training_stack(light_run):
    assert light_run["backend"] == "jax"
    assert light_run["loaded"] == []
    assert light_run["shape"] == [2, 5, 6, 8, 4]


def test_jax_layer_refuses_wrong_channels_and_masks(light_run):
    errors = light_run["errors"]
    assert "expected axis -1 of input shape to have value 3" in errors["channels"]
    assert "mask must be (batch, time) = (2, 5)" in errors["mask"]
    assert "to match the input sequences; got (2, 7)" in errors["mask"]


def test_to_torch_without_pytorch_names_the_torch_extra(light_run):
    assert light_run["errors"]["to_torch"] == (
        "MissingDependencyError: the optional dependency 'torch' is not installed: "
        "pip install 'faconvlstm[torch]'"
    )


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch, keras
    import faconvlstm
    from faconvlstm.keras import FAConvLSTM2D

    assert keras.backend.backend() == "jax"
    B, T, C, H, W = 2, 4, 3, 6, 8
    configs = [
        dict(filters=4, kernel_size=3, padding="valid"),
        dict(filters=3, kernel_size=(2, 4), strides=(1, 2), padding="same",
             return_sequences=True, attention_every=2),
        dict(filters=3, kernel_size=3, padding="same", go_backwards=True,
             return_sequences=True, return_state=True, attention_every=3,
             boundary="periodic_lon"),
        dict(filters=4, kernel_size=3, padding="same", se_ratio=0, peephole=False,
             attention_heads=2, attention_dim=4, return_sequences=True,
             data_format="channels_first"),
    ]
    diffs = []
    rng = np.random.default_rng(0)
    mask = np.array([[1, 0, 1, 0], [0, 1, 1, 1]], dtype=bool)
    for cfg in configs:
        fmt = cfg.setdefault("data_format", "channels_last")
        torch.manual_seed(0)
        ref = faconvlstm.FAConvLSTM2D(in_channels=C, **cfg)
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(torch.from_numpy(rng.normal(0, 0.4, p.shape).astype("float32")))
        layer = FAConvLSTM2D.from_torch(ref)
        shape = (B, T, H, W, C) if fmt == "channels_last" else (B, T, C, H, W)
        x = rng.normal(size=shape).astype("float32")
        for kwargs in ({}, {"mask": mask}):
            got = keras.tree.flatten(layer(x, **kwargs))
            t_kwargs = {k: torch.from_numpy(v) for k, v in kwargs.items()}
            expected = keras.tree.flatten(ref(torch.from_numpy(x), **t_kwargs))
            diffs += [float(np.abs(np.asarray(g) - e.detach().numpy()).max())
                      for g, e in zip(got, expected)]
        if cfg.get("return_state"):
            out_shape = tuple(np.asarray(got[1]).shape)
            h0, c0 = (rng.normal(size=out_shape).astype("float32") for _ in range(2))
            got = layer(x, initial_state=[h0, c0])
            expected = ref(torch.from_numpy(x), initial_state=(torch.from_numpy(h0),
                                                               torch.from_numpy(c0)))
            diffs += [float(np.abs(np.asarray(g) - e.detach().numpy()).max())
                      for g, e in zip(got, expected)]
    # Keras -> PyTorch on this backend too (the last layer, no state outputs)
    back = layer.to_torch()
    expected = back(torch.from_numpy(x)).detach().numpy()
    diffs.append(float(np.abs(np.asarray(layer(x)) - expected).max()))

    keras.utils.set_random_seed(0)
    inputs = keras.Input((T, H, W, C))
    z = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, padding="same"))(inputs)
    z = keras.layers.Bidirectional(FAConvLSTM2D(3, 3, padding="same", return_sequences=True,
                                                attention_every=2, dropout=0.1, seed=1))(z)
    outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 1))(z)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = rng.normal(size=(4, T, H, W, C)).astype("float32")
    losses = model.fit(x, x[..., :1], batch_size=2, epochs=2, verbose=0).history["loss"]
    path = sys.argv[1]
    model.save(path)
    loaded = keras.models.load_model(path)
    reload_diff = float(np.abs(np.asarray(loaded(x)) - np.asarray(model(x))).max())
    print(json.dumps({"diffs": diffs, "losses": losses, "reload_diff": reload_diff}))
    """
)


def test_jax_backend_matches_torch_and_trains(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "model.keras")],
        capture_output=True,
        text=True,
        env=JAX_ENV,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(result["diffs"]) == 16
    assert max(result["diffs"]) < 1e-5, result["diffs"]
    losses = result["losses"]
    assert all(map(lambda v: v == v, losses)) and losses[-1] < losses[0], losses
    assert result["reload_diff"] < 1e-6
