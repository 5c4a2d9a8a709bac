r"""Squeeze-and-excitation on a channels-last map.

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018:

$$
\begin{aligned}
s &= \sigma\big(W_2\,\mathrm{ReLU}(W_1\,\mathrm{GAP}(m) + b_1) + b_2\big) \\
m &\leftarrow m \odot s
\end{aligned}
$$

GAP is the global average over the grid, so s re-weights the bottleneck channels by what
the whole domain is doing (a cheap global context for every gate).
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Channel re-weighting from global context.

    Args:
        channels: r, channels of the map.
        ratio: reduction; the hidden width is ``max(1, channels // ratio)``.

    Shape:
        - Input: (B, H, W, r). Output: (B, H, W, r); :meth:`excitation` gives the weights
          s (B, r) in (0, 1).
    """

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def excitation(self, m: torch.Tensor) -> torch.Tensor:
        """The weights s (B, r) for the map m (B, H, W, r)."""
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(m.mean(dim=(1, 2))))))

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return m * self.excitation(m)[:, None, None, :]


SEModule = SqueezeExcite
