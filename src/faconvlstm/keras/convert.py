"""Weights between the Keras and the PyTorch ``FAConvLSTM2D``, both ways.

Layouts (PyTorch → Keras):

==========================  ==========================  ======================
PyTorch                     Keras                       axes
==========================  ==========================  ======================
``input_kernel``            ``kernel``                  (r, C, kh, kw) → (kh, kw, C, r)
``recurrent_kernel``        ``recurrent_kernel``        (r, F) → (F, r)
``mixing.weight``           ``depthwise_kernel``        (n, r, 1, kh, kw) → (n, kh, kw, r, 1)
``se.fc{1,2}.weight``       ``se_kernel_{1,2}``         (out, in) → (in, out)
``se.fc{1,2}.bias``         ``se_bias_{1,2}``           same
``expansion``               ``expansion``               (4F, r) → (r, 4F)
``bias``                    ``bias``                    (4F,), gate order i, f, c, o
``peephole_weight``         ``peephole``                (3, F)
``attention.qkv.weight``    ``qkv_kernel``              (3·n·d, F) → (F, 3·n·d)
``attention.proj.weight``   ``proj_kernel``             (F, n·d) → (n·d, F)
``attention.*.bias``        ``qkv_bias``, ``proj_bias`` same
``gamma``                   ``gamma``                   scalar
==========================  ==========================  ======================

No kernel is flipped: both frameworks compute cross-correlations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from faconvlstm.layers.faconvlstm import FAConvLSTM2D as TorchFAConvLSTM2D
from faconvlstm.layers.recurrent import ACTIVATIONS

#: constructor arguments with the same name and meaning in both layers
SHARED_ARGUMENTS = (
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
    "activation", "recurrent_activation", "use_bias", "unit_forget_bias", "dropout",
    "recurrent_dropout", "return_sequences", "return_state", "go_backwards", "stateful",
    "bottleneck", "dilation_rates", "se_ratio", "peephole", "attention_every",
    "attention_heads", "attention_dim", "boundary",
)  # fmt: skip


def weight_pairs(keras_layer: Any, torch_layer: TorchFAConvLSTM2D) -> list[tuple[Any, Any, tuple]]:
    """``(Keras variable, PyTorch parameter, perm)`` with Keras = PyTorch.permute(perm)."""
    cell, t = keras_layer.cell, torch_layer
    pairs = [
        (cell.kernel, t.input_kernel, (2, 3, 1, 0)),
        (cell.recurrent_kernel, t.recurrent_kernel, (1, 0)),
        (cell.depthwise_kernel, t.mixing.weight, (0, 3, 4, 1, 2)),
    ]
    if cell.se_ratio > 0:
        pairs += [
            (cell.se_kernel_1, t.se.fc1.weight, (1, 0)),
            (cell.se_bias_1, t.se.fc1.bias, (0,)),
            (cell.se_kernel_2, t.se.fc2.weight, (1, 0)),
            (cell.se_bias_2, t.se.fc2.bias, (0,)),
        ]
    pairs.append((cell.expansion, t.expansion, (1, 0)))
    if cell.use_bias:
        pairs.append((cell.bias, t.bias, (0,)))
    if cell.peephole:
        pairs.append((cell.peephole_weight, t.peephole_weight, (0, 1)))
    if cell.attention_every > 0:
        pairs += [
            (cell.qkv_kernel, t.attention.qkv.weight, (1, 0)),
            (cell.qkv_bias, t.attention.qkv.bias, (0,)),
            (cell.proj_kernel, t.attention.proj.weight, (1, 0)),
            (cell.proj_bias, t.attention.proj.bias, (0,)),
            (cell.gamma, t.gamma, ()),
        ]
    return pairs


def _activation_name(fn: Any, argument: str) -> str:
    import keras

    name = keras.activations.serialize(fn)
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"{argument}={name!r} has no PyTorch counterpart; use one of {sorted(ACTIVATIONS)}"
        )
    return name


def keras_to_torch(keras_layer: Any, **overrides: Any) -> TorchFAConvLSTM2D:
    """A PyTorch ``FAConvLSTM2D`` equal to the built Keras ``keras_layer`` (same data format).

    ``zero_output_for_mask`` has no PyTorch counterpart (masked steps repeat the previous
    output there, Keras' default).
    """
    import keras

    if not keras_layer.built or not keras_layer.cell.built:
        raise ValueError("the Keras layer is not built yet: call it on an input first")
    cell = keras_layer.cell
    args = {name: getattr(cell, name, None) for name in SHARED_ARGUMENTS}
    args.update(
        activation=_activation_name(cell.activation, "activation"),
        recurrent_activation=_activation_name(cell.recurrent_activation, "recurrent_activation"),
        return_sequences=keras_layer.return_sequences,
        return_state=keras_layer.return_state,
        go_backwards=keras_layer.go_backwards,
        stateful=keras_layer.stateful,
        in_channels=cell.input_dim,
    )
    args.update(overrides)
    module = TorchFAConvLSTM2D(**args)
    with torch.no_grad():
        for variable, param, perm in weight_pairs(keras_layer, module):
            value = np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)
            param.copy_(torch.from_numpy(np.transpose(value, np.argsort(perm))))
    return module


def torch_to_keras(module: TorchFAConvLSTM2D, cls: type, **overrides: Any) -> Any:
    """A built Keras ``cls`` (``faconvlstm.keras.FAConvLSTM2D``) equal to ``module``.

    ``input_shape`` among ``overrides`` builds the layer for that full input shape (needed
    for ``stateful``); otherwise only the channel axis is fixed.
    """
    if not isinstance(module, TorchFAConvLSTM2D):
        raise TypeError(f"expected a faconvlstm.FAConvLSTM2D, got {type(module).__name__}")
    if module.in_channels is None:
        raise ValueError(
            "the PyTorch layer is not built yet: give in_channels or run one forward first"
        )
    for name in ("activation", "recurrent_activation"):
        if not isinstance(getattr(module, name), str):
            raise ValueError(f"from_torch supports named activations only, got {name}=callable")
    args = {name: getattr(module, name) for name in SHARED_ARGUMENTS}
    input_shape = overrides.pop("input_shape", None)
    args.update(overrides)
    layer = cls(**args)
    if input_shape is None:
        channels = module.in_channels
        if layer.data_format == "channels_first":
            input_shape = (None, None, channels, None, None)
        else:
            input_shape = (None, None, None, None, channels)
    layer.build(tuple(input_shape))
    for variable, param, perm in weight_pairs(layer, module):
        variable.assign(np.transpose(param.detach().cpu().numpy(), perm))
    return layer
