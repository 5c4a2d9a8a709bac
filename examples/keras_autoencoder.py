"""A Keras autoencoder with FAConvLSTM2D: TimeDistributed conv encoder → FAConvLSTM2D → decoder.

The Keras model a ConvLSTM user already has, with one line swapped::

    z = keras.layers.ConvLSTM2D(16, 3, padding="same", return_sequences=True)(z)   # before
    z = FAConvLSTM2D(16, 3, padding="same", return_sequences=True)(z)               # after

It is trained with ``model.fit`` for a few steps to reconstruct windows of the synthetic
climate (t2m, z500, tp on a lat-lon grid, see :func:`faconvlstm.data.synthetic`), then the
trained recurrent layer is handed to PyTorch with ``to_torch()``.

Run (any Keras 3 backend; PyTorch is the default here)::

    python examples/keras_autoencoder.py --epochs 2
    KERAS_BACKEND=jax python examples/keras_autoencoder.py
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from faconvlstm.data import synthetic
from faconvlstm.keras import FAConvLSTM2D


def windows(steps: int, nlat: int, nlon: int, years: int, seed: int) -> np.ndarray:
    """Normalised windows (N, steps, nlat, nlon, 3) of the synthetic t2m, z500 and tp."""
    data, _ = synthetic(seed, n_years=years, nlat=nlat, nlon=nlon)
    fields = np.stack([data[v].values for v in ("t2m", "z500", "tp")], axis=-1)  # (time, H, W, C)
    fields = (fields - fields.mean(axis=(0, 1, 2))) / fields.std(axis=(0, 1, 2))
    n = fields.shape[0] // steps
    return fields[: n * steps].reshape(n, steps, *fields.shape[1:]).astype("float32")


def autoencoder(steps: int, nlat: int, nlon: int, channels: int, width: int) -> keras.Model:
    """TimeDistributed conv (stride 2) → FAConvLSTM2D → TimeDistributed transposed conv."""
    inputs = keras.Input((steps, nlat, nlon, channels))
    z = keras.layers.TimeDistributed(
        keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")
    )(inputs)
    # the one-line swap: was keras.layers.ConvLSTM2D(width, 3, padding="same", ...)
    z = FAConvLSTM2D(
        width, 3, padding="same", return_sequences=True, boundary="periodic_lon", name="fa"
    )(z)
    z = keras.layers.TimeDistributed(
        keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")
    )(z)
    outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(channels, 1))(z)
    return keras.Model(inputs, outputs, name="fa_autoencoder")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="time steps per window")
    parser.add_argument("--nlat", type=int, default=16)
    parser.add_argument("--nlon", type=int, default=32)
    parser.add_argument("--years", type=int, default=1, help="years of daily synthetic data")
    parser.add_argument("--width", type=int, default=16, help="filters of FAConvLSTM2D")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    x = windows(args.steps, args.nlat, args.nlon, args.years, args.seed)
    model = autoencoder(args.steps, args.nlat, args.nlon, x.shape[-1], args.width)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    before = float(model.evaluate(x, x, batch_size=args.batch_size, verbose=0))
    model.fit(x, x, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    after = float(model.evaluate(x, x, batch_size=args.batch_size, verbose=0))
    print(f"{keras.backend.backend()} backend, {len(x)} windows of {x.shape[1:]}: "
          f"reconstruction MSE {before:.3f} -> {after:.3f}")  # fmt: skip

    # The trained layer as the PyTorch reference implementation (same weights, same output).
    fa = model.get_layer("fa")
    features = model.layers[1](x[:2])
    torch_fa = fa.to_torch()
    import torch

    with torch.no_grad():
        reference = torch_fa(torch.as_tensor(keras.ops.convert_to_numpy(features))).numpy()
    gap = float(np.abs(keras.ops.convert_to_numpy(fa(features)) - reference).max())
    print(f"PyTorch FAConvLSTM2D from to_torch(): max |difference| = {gap:.1e}")
    return {"mse_before": before, "mse_after": after, "torch_gap": gap}


if __name__ == "__main__":
    main()
