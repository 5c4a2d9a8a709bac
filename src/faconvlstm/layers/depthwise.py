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

import torch
import torch.nn.functional as F
from torch import nn

from faconvlstm.layers.boundary import conv_pads, pad2d, symmetric_torch_padding


class MultiScaleDepthwise(nn.Module):
    """Sum of dilated depthwise convolutions with "same" output size.

    Args:
        channels: r, channels in and out.
        kernel_size: (kh, kw) of every branch.
        dilation_rates: one branch per rate.
        boundary: ``"zeros"`` or ``"periodic_lon"`` (see :mod:`faconvlstm.layers.boundary`).

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
        for weight, d in zip(self.weight, self.dilation_rates):
            pads = conv_pads(x.shape[-2:], self.kernel_size, (1, 1), (d, d), "same")
            sym = symmetric_torch_padding(pads) if self.boundary == "zeros" else None
            if sym is not None:
                yield F.conv2d(x, weight, padding=sym, dilation=d, groups=self.channels)
            else:
                yield F.conv2d(
                    pad2d(x, pads, self.boundary), weight, dilation=d, groups=self.channels
                )

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        x = b.permute(0, 3, 1, 2)  # (B, r, H, W) view in channels_last memory format
        out = None
        for y in self._branches(x):
            out = y if out is None else out + y
        return out.permute(0, 2, 3, 1)

    def branch_energy(self, b: torch.Tensor) -> torch.Tensor:
        """(B, n_branches): the mean square of each branch's output for b (B, H, W, r)."""
        x = b.permute(0, 3, 1, 2)
        return torch.stack([y.pow(2).mean(dim=(1, 2, 3)) for y in self._branches(x)], dim=1)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, kernel_size={self.kernel_size}, "
            f"dilation_rates={self.dilation_rates}"
        )
