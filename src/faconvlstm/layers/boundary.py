"""Padding and boundary handling shared by every spatial op in the recurrent layers.

Two boundary conditions:

* ``"zeros"`` — zero padding on all four sides (Keras' behaviour, regional grids).
* ``"periodic_lon"`` — the longitude axis (width, the last spatial axis) wraps around the
  globe: the left pad is taken from the eastern edge and the right pad from the western
  edge; latitude (height) is zero-padded at the poles. With it, rolling the input along
  longitude rolls the output identically (a physical invariant of a global grid).

The padding arithmetic (TF/Keras "same" padding, output sizes, the boundary names) is
framework-free and lives in :mod:`faconvlstm.geometry`, shared with the Keras front end;
this module applies it to PyTorch tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faconvlstm.geometry import Pads, conv_pads

# conv_pads is re-exported: each spatial op takes its padding and its pad op from here
__all__ = ["conv2d_padded", "conv_pads", "pad2d", "symmetric_torch_padding"]


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


def conv2d_padded(
    x: torch.Tensor,
    weight: torch.Tensor,
    pads: Pads,
    boundary: str = "zeros",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.conv2d`` of x (N, C, H, W) padded by ``pads`` = (top, bottom, left, right) under
    ``boundary``: symmetric zero pads go to the convolution itself (no padded copy), any
    other padding through :func:`pad2d` first."""
    sym = symmetric_torch_padding(pads) if boundary == "zeros" else None
    if sym is None:
        x, sym = pad2d(x, pads, boundary), (0, 0)
    return F.conv2d(x, weight, bias, stride=stride, padding=sym, dilation=dilation)
