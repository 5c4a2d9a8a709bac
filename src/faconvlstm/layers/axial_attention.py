r"""Axial self-attention on a lat-lon grid: along longitude (rows) and latitude (columns).

Ho et al., "Axial Attention in Multidimensional Transformers", 2019; the reshapes follow
lucidrains/axial-attention. With queries, keys and values from one projection of h,

.. math::
    \Delta = W_o\big(\mathrm{RowAttn}(q, k, v) + \mathrm{ColAttn}(q, k, v)\big),\qquad
    \mathrm{Attn} = \mathrm{softmax}\!\big(q k^\top / \sqrt{d}\big)\, v

Row attention lets every point see its whole latitude circle (zonal teleconnections),
column attention its whole meridian; two layers of it connect any two points. Cost
O(B·H·W·(H + W)·d), never O((HW)²). There is no positional encoding: the attention is
equivariant to rolling the grid along longitude, as a global grid requires.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class AxialAttention(nn.Module):
    """Row + column attention on a channels-last map.

    Args:
        channels: F, channels of h.
        dim: d, width of each head (≥ 16 is much faster on CPU, see PERF_NOTES.md).
        heads: number of heads n; the attention width is n·d.

    Shape:
        - Input h: (B, H, W, F). Output Δ: (B, H, W, F).
        - With ``return_maps``: also ``row`` (B, H, n, W, W) and ``col`` (B, W, n, H, H),
          the softmax weights (query axis before key axis).
    """

    def __init__(self, channels: int, dim: int = 16, heads: int = 1) -> None:
        super().__init__()
        if dim < 1 or heads < 1:
            raise ValueError(f"attention dim and heads must be >= 1, got dim={dim}, heads={heads}")
        self.heads = heads
        self.dim = dim
        self.qkv = nn.Linear(channels, 3 * heads * dim)
        self.proj = nn.Linear(heads * dim, channels)

    def forward(self, h: torch.Tensor, return_maps: bool = False):
        B = h.shape[0]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        n = self.heads

        def rows(t):
            return rearrange(t, "b h w (n d) -> (b h) n w d", n=n)

        def cols(t):
            return rearrange(t, "b h w (n d) -> (b w) n h d", n=n)

        row = F.scaled_dot_product_attention(rows(q), rows(k), rows(v))
        col = F.scaled_dot_product_attention(cols(q), cols(k), cols(v))
        out = rearrange(row, "(b h) n w d -> b h w (n d)", b=B) + rearrange(
            col, "(b w) n h d -> b h w (n d)", b=B
        )
        delta = self.proj(out)
        if not return_maps:
            return delta
        scale = self.dim**-0.5
        with torch.no_grad():
            row_maps = torch.softmax(rows(q) @ rows(k).transpose(-1, -2) * scale, dim=-1)
            col_maps = torch.softmax(cols(q) @ cols(k).transpose(-1, -2) * scale, dim=-1)
        maps = {
            "row": rearrange(row_maps, "(b h) n i j -> b h n i j", b=B),
            "col": rearrange(col_maps, "(b w) n i j -> b w n i j", b=B),
        }
        return delta, maps
