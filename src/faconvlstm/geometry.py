"""Convolution geometry shared by the PyTorch and the Keras layers, in plain Python.

Argument normalisation (:func:`to_pair`), TensorFlow/Keras "same" padding
(:func:`same_pad_1d`, :func:`conv_pads`), Keras' output-size formula
(:func:`conv_output_size`) and the boundary names (:func:`check_boundary`). Both front ends
compute their padding here, so a PyTorch layer and its Keras twin agree on every grid by
construction; the framework-specific padding ops are
:func:`faconvlstm.layers.boundary.pad2d` (PyTorch) and
:func:`faconvlstm.keras.cell.pad_grid` (``keras.ops``).

"same" padding follows TensorFlow/Keras exactly: the total padding along an axis of length
``n`` is ``max(0, (ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)`` and the extra pixel (odd
total, e.g. even kernels) goes at the bottom/right.

This module is the bottom floor: it imports nothing (no PyTorch, no Keras), so
``import faconvlstm.keras`` stays free of PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: ``"zeros"`` pads every side with zeros (Keras); ``"periodic_lon"`` wraps the width
#: (longitude) axis around the globe and zero-pads the height (latitude) at the poles.
BOUNDARIES = ("zeros", "periodic_lon")
PADDINGS = ("valid", "same")

Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


def to_pair(value: int | Sequence[int], argument: str, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or a pair to ``(int, int)``, Keras' ``standardize_tuple``."""
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    else:
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(
                f"{argument} must be an int or a pair of ints, got {value!r}"
            ) from None
        if len(pair) != 2:
            raise ValueError(f"{argument} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def same_pad_1d(length: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TF-style "same" padding along one axis: ``(before, after)``, extra pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(length / stride)
    total = max(0, (out - 1) * stride + effective - length)
    return total // 2, total - total // 2


def conv_pads(
    size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: str,
) -> Pads:
    """Padding ``(top, bottom, left, right)`` of a 2-D convolution on a ``size`` = (H, W) grid."""
    if padding == "valid":
        return (0, 0, 0, 0)
    top, bottom = same_pad_1d(size[0], kernel[0], stride[0], dilation[0])
    left, right = same_pad_1d(size[1], kernel[1], stride[1], dilation[1])
    return (top, bottom, left, right)


def conv_output_size(length: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a convolution along one axis, Keras' shape formula."""
    if padding == "same":
        return math.ceil(length / stride)
    effective = (kernel - 1) * dilation + 1
    return (length - effective) // stride + 1 if length >= effective else 0


def check_boundary(boundary: str) -> str:
    """``boundary`` if it is one of :data:`BOUNDARIES`, else a ``ValueError``."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    return boundary
