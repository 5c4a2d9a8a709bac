"""One Keras training step: ``keras.layers.ConvLSTM2D`` vs ``faconvlstm.keras.FAConvLSTM2D``.

The same model around each layer (the recurrent layer, then a 1×1 projection back to the
input channels), the same data, the same optimizer; each step is one
``model.train_on_batch`` (forward, backward, Adam update). Steps of the models are
interleaved after a warm-up and the time is the median of ``--repeats``. ``--backend``
picks the Keras backend (it sets ``KERAS_BACKEND`` before Keras is imported; default: the
environment's, else torch); ``--threads`` sets the intra-op threads (PyTorch's
``set_num_threads``; on JAX only 1 vs more than 1, through XLA's
``--xla_cpu_multi_thread_eigen``, set before JAX starts).

The head: ``dense`` (default) is ``Dense(C)`` on the channel axis, a 1×1 convolution;
``timedistributed`` is ``TimeDistributed(Conv2D(C, 1))``, the same map, but on the torch
backend Keras runs it as a per-frame loop whose backward costs more than the 1×1 itself
(it dilutes both models' times alike).

``--preset nextframe`` is the keras.io "Next-frame prediction with Conv-LSTM" size
(batch 5, 19 frames of 64×64×1, 64 filters; one recurrent layer here, not three, and no
BatchNorm). ``--fused both`` adds ``FAConvLSTM2D(fused=False)``, the plain ``keras.ops``
step, to the comparison.

    python benchmarks/keras_step.py                     # B=4, T=8, 32x64, C=4, F=32
    python benchmarks/keras_step.py --preset nextframe --fused both
    python benchmarks/keras_step.py --backend jax --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

PRESETS = {
    "default": dict(batch=4, steps=8, grid=(32, 64), channels=4, filters=32),
    "nextframe": dict(batch=5, steps=19, grid=(64, 64), channels=1, filters=64),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--batch", type=int)
    p.add_argument("--steps", type=int, help="sequence length T")
    p.add_argument("--grid", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--channels", type=int)
    p.add_argument("--filters", type=int)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--backend", choices=("torch", "jax", "tensorflow"))
    p.add_argument("--head", choices=("dense", "timedistributed"), default="dense")
    p.add_argument("--fused", choices=("on", "off", "both"), default="on")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = _parse(argv)
    os.environ["KERAS_BACKEND"] = args.backend or os.environ.get("KERAS_BACKEND", "torch")
    if os.environ["KERAS_BACKEND"] == "jax":  # before JAX starts
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}"
        )
    import keras
    import numpy as np

    from faconvlstm.keras import FAConvLSTM2D

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    backend += f" threads={args.threads}"

    def model(layer: keras.layers.Layer, shape: tuple[int, ...]) -> keras.Model:
        inputs = keras.Input(shape)
        z = layer(inputs)
        if args.head == "dense":
            outputs = keras.layers.Dense(shape[-1])(z)
        else:
            outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(shape[-1], 1))(z)
        m = keras.Model(inputs, outputs)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return m

    keras.utils.set_random_seed(0)
    shape = (args.steps, *args.grid, args.channels)
    x = np.random.default_rng(0).normal(size=(args.batch, *shape)).astype("float32")
    common = dict(filters=args.filters, kernel_size=3, padding="same", return_sequences=True)
    models = {"keras.ConvLSTM2D": model(keras.layers.ConvLSTM2D(**common), shape)}
    if args.fused in ("on", "both"):
        models["FAConvLSTM2D"] = model(FAConvLSTM2D(**common), shape)
    if args.fused in ("off", "both"):
        models["FA fused=False"] = model(FAConvLSTM2D(**common, fused=False), shape)
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.warmup + args.repeats):
        for name, m in models.items():
            start = time.perf_counter()
            m.train_on_batch(x, x)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    result = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(
        f"# backend={backend} B={args.batch} T={args.steps} "
        f"grid={args.grid[0]}x{args.grid[1]} C={args.channels} F={args.filters} "
        f"head={args.head} keras={keras.__version__} median of {args.repeats}"
    )
    for name, m in models.items():
        print(f"{name:>18}  {m.count_params():>9,} params  {result[name]:9.1f} ms/step")
    for name in models:
        if name != "keras.ConvLSTM2D":
            ratio = result["keras.ConvLSTM2D"] / result[name]
            result[f"ratio {name}"] = ratio
            print(f"{'ratio':>18}  {ratio:.2f}x  keras.ConvLSTM2D / {name} per training step")
    return result


if __name__ == "__main__":
    main()
