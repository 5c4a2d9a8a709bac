"""One Keras training step: ``keras.layers.ConvLSTM2D`` vs ``faconvlstm.keras.FAConvLSTM2D``.

The same model around each layer (the recurrent layer, then a 1×1 ``TimeDistributed``
Conv2D back to the input channels), the same data, the same optimizer; each step is one
``model.train_on_batch`` (forward, backward, Adam update). Steps of the two models are
interleaved after a warm-up and the time is the median of ``--repeats``. Keras runs on
the backend of ``KERAS_BACKEND`` (default here: torch; ``--threads`` sets PyTorch's
intra-op threads).

    python benchmarks/keras_step.py                     # B=4, T=8, 32x64, C=4, F=32
    python benchmarks/keras_step.py --grid 64 128 --filters 64 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from faconvlstm.keras import FAConvLSTM2D


def _model(layer: keras.layers.Layer, shape: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(shape)
    z = layer(inputs)
    outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(shape[-1], 1))(z)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=8, help="sequence length T")
    p.add_argument("--grid", type=int, nargs=2, default=(32, 64), metavar=("H", "W"))
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (torch backend)")
    args = p.parse_args(argv)
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
        backend += f" threads={torch.get_num_threads()}"

    keras.utils.set_random_seed(0)
    shape = (args.steps, *args.grid, args.channels)
    x = np.random.default_rng(0).normal(size=(args.batch, *shape)).astype("float32")
    common = dict(filters=args.filters, kernel_size=3, padding="same", return_sequences=True)
    models = {
        "keras.ConvLSTM2D": _model(keras.layers.ConvLSTM2D(**common), shape),
        "FAConvLSTM2D": _model(FAConvLSTM2D(**common), shape),
    }
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.warmup + args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, x)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    result = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(
        f"# backend={backend} B={args.batch} T={args.steps} "
        f"grid={args.grid[0]}x{args.grid[1]} C={args.channels} F={args.filters} "
        f"keras={keras.__version__} median of {args.repeats}"
    )
    for name, model in models.items():
        print(f"{name:>18}  {model.count_params():>9,} params  {result[name]:9.1f} ms/step")
    ratio = result["keras.ConvLSTM2D"] / result["FAConvLSTM2D"]
    print(f"{'ratio':>18}  {ratio:.2f}x faster per training step")
    return {**result, "ratio": ratio}


if __name__ == "__main__":
    main()
