r"""Shared multi-scale dilated depthwise mixing (the spatial part of the FA gates).

One depthwise k×k convolution per dilation rate d, summed:

$$
m = \sum_{d \in \mathcal{D}} \mathrm{DWConv}_{k,\,d}(b)
$$

With k = 3 and rates (1, 2, 4) the receptive field is 9×9 for 3·k² weights per channel
instead of 81, and a single set of branches serves all four LSTM gates (not one per gate),
which is where most of FAConvLSTM's saving over a full k×k gate convolution comes from.
Depthwise-separable design after Chollet, "Xception", CVPR 2017; multi-rate dilation after
Chen et al., "DeepLab", TPAMI 2018.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from faconvlstm.layers.boundary import conv_pads, pad2d, symmetric_torch_padding

#: below this many pixels (B·H·W) the mixing runs as plain autograd convolutions: at
#: 4×16×32 the one-node backward measured 0.82-0.92× of them (``benchmarks/depthwise_backward.py``)
FUSED_MIN_PIXELS = 1 << 14


def _branch_outputs(
    x: torch.Tensor,
    weight: torch.Tensor,
    windows: Sequence[tuple[int, int, int, int]],
    pads: Sequence[tuple[int, int]],
    rates: Sequence[int],
) -> Iterator[torch.Tensor]:
    """Each branch's convolution of its window of x (B, r, H_p, W_p): (B, r, H, W) each."""
    for w_k, (top, left, h, w), pad, d in zip(weight, windows, pads, rates):
        yield F.conv2d(
            x[..., top : top + h, left : left + w], w_k, padding=pad, dilation=d,
            groups=x.shape[1],
        )  # fmt: skip


class _DepthwiseSum(torch.autograd.Function):
    r"""$m = \sum_k \mathrm{DWConv}_{k, d_k}(x)$ on one input, with a backward built from
    forward convolutions.

    Branch k convolves the window ``windows[k]`` = (top, left, height, width) of ``x``
    (B, r, H_p, W_p) with implicit zero padding ``pads[k]`` = (p_h, p_w) and dilation
    d_k; every branch has the same output size. PyTorch's CPU backward for a *dilated*
    depthwise convolution is a slow path (at 64×128, r = 16: 0.87 ms for the input gradient
    and 1.4 ms for the weight gradient, against 0.1 ms for the forward; ``docs/performance.md``),
    while the input gradient of a stride-1 convolution is itself a forward convolution,
    the correlation of the output gradient $\bar m$ with the flipped kernel:

    $$
    \bar x_k = \mathrm{DWConv}_{d_k}\big(\bar m,\ \mathrm{flip}(w_k);\
        \text{padding } d_k (k_h - 1) - p_h,\ d_k (k_w - 1) - p_w\big)
    $$

    added into ``x``'s gradient at the branch's window. The weight gradient is computed on
    the d×d phase sub-grids, where the convolution is undilated
    (:func:`_depthwise_weight_grad`). Equal to autograd through :func:`depthwise_sum`
    with ``fused=False`` to float rounding (``tests/layers/test_depthwise.py``).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        windows: tuple[tuple[int, int, int, int], ...],
        pads: tuple[tuple[int, int], ...],
        rates: tuple[int, ...],
    ) -> torch.Tensor:
        out: torch.Tensor | None = None
        for y in _branch_outputs(x, weight, windows, pads, rates):
            out = y if out is None else out.add_(y)
        ctx.save_for_backward(x, weight)
        ctx.geometry = (windows, pads, rates)
        assert out is not None  # at least one rate (checked by MultiScaleDepthwise)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        windows, pads, rates = ctx.geometry
        need_x, need_w = ctx.needs_input_grad[:2]
        channels = x.shape[1]
        kh, kw = weight.shape[-2:]
        # under autocast the forward ran in a lower precision; the gradients are computed in
        # the input's dtype and returned in each input's own dtype
        grad = grad.to(x.dtype)
        wx = weight.to(x.dtype)
        gx: torch.Tensor | None = None
        gw = torch.empty_like(weight)
        for k, ((top, left, h, w), (ph, pw), d) in enumerate(zip(windows, pads, rates)):
            if need_x:
                g_k = F.conv2d(
                    grad, wx[k].flip(-2, -1), padding=(d * (kh - 1) - ph, d * (kw - 1) - pw),
                    dilation=d, groups=channels,
                )  # fmt: skip
                if (top, left, h, w) == (0, 0, *x.shape[-2:]):
                    gx = g_k if gx is None else gx.add_(g_k)
                else:
                    gx = torch.zeros_like(x) if gx is None else gx
                    gx[..., top : top + h, left : left + w].add_(g_k)
            if need_w:
                window = x[..., top : top + h, left : left + w]
                gw[k] = _depthwise_weight_grad(grad, window, wx[k], (ph, pw), d)
        return gx, gw if need_w else None, None, None, None


def _phase_split(t: torch.Tensor, d: int) -> torch.Tensor:
    """The d×d interleaved sub-grids of t (B, r, H, W): (B·d², r, ⌈H/d⌉, ⌈W/d⌉),
    sub-grid (a, b) holding t[..., a::d, b::d], zero-padded at the end to equal sizes."""
    B, r, H, W = t.shape
    Hd, Wd = -(-H // d), -(-W // d)
    if (Hd * d, Wd * d) != (H, W):
        t = F.pad(t, (0, Wd * d - W, 0, Hd * d - H))
    t = t.permute(0, 2, 3, 1).reshape(B, Hd, d, Wd, d, r).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(B * d * d, Hd, Wd, r).permute(0, 3, 1, 2)


def _depthwise_weight_grad(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, pad: tuple[int, int], d: int
) -> torch.Tensor:
    r"""$\bar w$ of ``F.conv2d(x, weight, padding=pad, dilation=d, groups=r)`` for the output
    gradient ``grad``; weight (r, 1, kh, kw).

    With the padding a multiple of d, a dilation-d convolution only ever pairs pixels of the
    same phase (row mod d, column mod d), so it is an undilated convolution on each of the
    d² sub-grids (:func:`_phase_split`) with padding pad / d, and the weight gradient is
    the undilated one of the sub-grids stacked as a batch: 3-6x faster on CPU than the
    dilated kernel from 64×128 up (``docs/performance.md``).
    """
    channels = x.shape[1]
    if d == 1 or pad[0] % d or pad[1] % d:
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], list(pad), [d, d], False, [0, 0], channels,
            [False, True, False],
        )[1]  # fmt: skip
    return torch.ops.aten.convolution_backward(
        _phase_split(grad, d), _phase_split(x, d), weight, None, [1, 1],
        [pad[0] // d, pad[1] // d], [1, 1], False, [0, 0], channels, [False, True, False],
    )[1]  # fmt: skip


def _geometry(
    x: torch.Tensor, kernel_size: Sequence[int], rates: tuple[int, ...], boundary: str
) -> tuple[torch.Tensor, tuple, tuple, tuple]:
    """``(x_p, windows, pads, rates)`` for :class:`_DepthwiseSum` on x (B, r, H, W).

    Zero boundary with symmetric "same" pads (odd kernels): x itself, each branch over
    all of it with its own zero padding. Otherwise x is padded once by the largest pad
    of each side (wrapping longitude for ``periodic_lon``), and branch k reads the
    window of its own pads, with no implicit padding.
    """
    H, W = x.shape[-2:]
    kh, kw = kernel_size
    all_pads = [conv_pads((H, W), (kh, kw), (1, 1), (d, d), "same") for d in rates]
    sym = [symmetric_torch_padding(p) for p in all_pads]
    if boundary == "zeros" and all(s is not None for s in sym):
        return x, ((0, 0, H, W),) * len(all_pads), tuple(sym), rates
    top, bottom, left, right = (max(p[i] for p in all_pads) for i in range(4))
    xp = pad2d(x, (top, bottom, left, right), boundary)
    windows = tuple((top - t, left - lf, H + t + bt, W + lf + rt) for t, bt, lf, rt in all_pads)
    return xp, windows, ((0, 0),) * len(all_pads), rates


def depthwise_sum(
    b: torch.Tensor,
    weight: torch.Tensor,
    kernel_size: Sequence[int],
    rates: Sequence[int],
    boundary: str = "zeros",
    fused: bool = True,
) -> torch.Tensor:
    r"""$m = \sum_{d} \mathrm{DWConv}_{k,d}(b)$ with "same" output size: the functional form
    of :class:`MultiScaleDepthwise`, for weights held elsewhere (the Keras front end on the
    torch backend).

    b (B, H, W, r) channels last; weight (n, r, 1, kh, kw), one depthwise kernel per rate
    (a permuted view is fine). From ``FUSED_MIN_PIXELS`` (B·H·W) up and with ``fused``, all
    branches run as one autograd node (:class:`_DepthwiseSum`); otherwise, and while
    compiling or exporting, one autograd convolution per branch. Returns (B, H, W, r).
    """
    x = b.permute(0, 3, 1, 2)  # (B, r, H, W) view in channels_last memory format
    xp, windows, pads, rates = _geometry(x, kernel_size, tuple(rates), boundary)
    small = x.shape[0] * x.shape[2] * x.shape[3] < FUSED_MIN_PIXELS
    if not fused or small or torch.compiler.is_compiling() or torch.compiler.is_exporting():
        out: torch.Tensor | None = None
        for y in _branch_outputs(xp, weight, windows, pads, rates):
            out = y if out is None else out + y
        assert out is not None  # at least one rate (checked by the callers)
        return out.permute(0, 2, 3, 1)
    return _DepthwiseSum.apply(xp, weight, windows, pads, rates).permute(0, 2, 3, 1)


class MultiScaleDepthwise(nn.Module):
    """Sum of dilated depthwise convolutions with "same" output size.

    Args:
        channels: r, channels in and out.
        kernel_size: (kh, kw) of every branch.
        dilation_rates: one branch per rate.
        boundary: ``"zeros"`` or ``"periodic_lon"`` (see :mod:`faconvlstm.layers.boundary`).
        fused: from ``FUSED_MIN_PIXELS`` (B·H·W) up, run all branches as one autograd node
            whose backward is forward convolutions and undilated weight gradients
            (:class:`_DepthwiseSum`); ``False`` runs one autograd convolution per branch
            (also used below that size and under ``torch.compile``); see :func:`depthwise_sum`.

    Shape:
        - Input ``b``: (B, H, W, r) — channels last, the FA cell's internal layout.
        - Output: (B, H, W, r). :meth:`branch_energy` gives (B, n_branches), the mean square
          of each branch's output (its share of the mixed signal, for interpretation).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: tuple[int, int],
        dilation_rates: Sequence[int] = (1, 2, 4),
        boundary: str = "zeros",
        fused: bool = True,
    ) -> None:
        super().__init__()
        rates = tuple(int(d) for d in dilation_rates)
        if not rates or min(rates) < 1:
            raise ValueError(
                f"dilation_rates must be a non-empty sequence of ints >= 1, got {dilation_rates!r}"
            )
        self.channels = channels
        self.kernel_size = tuple(kernel_size)
        self.dilation_rates = rates
        self.boundary = boundary
        self.fused = bool(fused)
        self.weight = nn.Parameter(torch.empty(len(rates), channels, 1, *self.kernel_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Near-identity start: each branch's centre tap is 1/n plus small uniform noise
        (±0.5/(n·k)), so at initialisation m ≈ b and the gate pre-activations keep the
        input's variance instead of shrinking by the branch count (a stacked FA layer then
        passes signal as a ConvLSTM does; see tests/layers/test_faconvlstm.py)."""
        n = len(self.dilation_rates)
        kh, kw = self.kernel_size
        with torch.no_grad():
            self.weight.uniform_(-0.5 / (n * kh * kw) ** 0.5, 0.5 / (n * kh * kw) ** 0.5)
            self.weight[..., (kh - 1) // 2, (kw - 1) // 2] += 1.0 / n

    def _branches(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Each branch's output (B, r, H, W) for x (B, r, H, W)."""
        geometry = _geometry(x, self.kernel_size, self.dilation_rates, self.boundary)
        return _branch_outputs(geometry[0], self.weight, *geometry[1:])

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        return depthwise_sum(
            b, self.weight, self.kernel_size, self.dilation_rates, self.boundary, self.fused
        )

    def branch_energy(self, b: torch.Tensor) -> torch.Tensor:
        """(B, n_branches): the mean square of each branch's output for b (B, H, W, r)."""
        x = b.permute(0, 3, 1, 2)
        return torch.stack([y.pow(2).mean(dim=(1, 2, 3)) for y in self._branches(x)], dim=1)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, kernel_size={self.kernel_size}, "
            f"dilation_rates={self.dilation_rates}"
        )
