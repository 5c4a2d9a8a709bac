"""Padding and boundary handling shared by every spatial op in the recurrent layers.

Two boundary conditions:

* ``"zeros"`` — zero padding on all four sides (Keras' behaviour, regional grids).
* ``"periodic_lon"`` — the longitude axis (width, the last spatial axis) wraps around the
  globe: the left pad is taken from the eastern edge and the right pad from the western
  edge; latitude (height) is zero-padded at the poles. With it, rolling the input along
  longitude rolls the output identically (a physical invariant of a global grid).

"same" padding follows TensorFlow/Keras exactly: the total padding along an axis of length
``n`` is ``max(0, (ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)`` and the extra pixel (odd
total, e.g. even kernels) goes at the bottom/right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

BOUNDARIES = ("zeros", "periodic_lon")
PADDINGS = ("valid", "same")

Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


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


def pad2d(x: torch.Tensor, pads: Pads, boundary: str = "zeros") -> torch.Tensor:
    """Pad the last two axes (H, W) of ``x`` (..., H, W) by ``pads`` = (top, bottom, left, right).

    ``boundary="periodic_lon"`` wraps the W axis (circular) and zero-pads H.
    A pad of all zeros returns ``x`` unchanged (no copy).
    """
    top, bottom, left, right = pads
    if boundary == "periodic_lon" and (left or right):
        width = x.shape[-1]
        if left > width or right > width:
            raise ValueError(
                f"periodic_lon padding of ({left}, {right}) exceeds the longitude size {width}; "
                "use a smaller kernel/dilation or a wider grid"
            )
        x = torch.cat([x[..., width - left :], x, x[..., :right]], dim=-1)
        left = right = 0
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


def symmetric_torch_padding(pads: Pads) -> tuple[int, int] | None:
    """``(ph, pw)`` for ``F.conv2d(padding=...)`` when zero pads are symmetric, else ``None``."""
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return (top, left)
    return None


def check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    return boundary
