r"""Axial self-attention on a lat-lon grid: along longitude (rows) and latitude (columns).

Ho et al., "Axial Attention in Multidimensional Transformers", 2019; the reshapes follow
lucidrains/axial-attention. With queries, keys and values from one projection of h,

$$
\begin{aligned}
\Delta &= W_o\big(\mathrm{RowAttn}(q, k, v) + \mathrm{ColAttn}(q, k, v)\big) \\
\mathrm{Attn}(q, k, v) &= \mathrm{softmax}\!\big(q k^\top / \sqrt{d}\big)\, v
\end{aligned}
$$

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


def _split(qkv: torch.Tensor, heads: int) -> tuple[torch.Tensor, ...]:
    """q, k, v of the projection ``qkv`` (B, H, W, 3·n·d) as rows ((B·H), n, W, d) and
    columns ((B·W), n, H, d)."""
    q, k, v = qkv.chunk(3, dim=-1)
    rows = [rearrange(t, "b h w (n d) -> (b h) n w d", n=heads) for t in (q, k, v)]
    cols = [rearrange(t, "b h w (n d) -> (b w) n h d", n=heads) for t in (q, k, v)]
    return (*rows, *cols)


def axial_attention(
    h: torch.Tensor,
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor | None,
    proj_weight: torch.Tensor,
    proj_bias: torch.Tensor | None,
    heads: int,
) -> torch.Tensor:
    r"""$\Delta = W_o(\mathrm{RowAttn} + \mathrm{ColAttn}) + b_o$ of h (B, H, W, F), the
    functional form of :class:`AxialAttention` (``F.scaled_dot_product_attention`` per
    axis), for weights held elsewhere (the Keras front end on the torch backend).

    ``qkv_weight`` (3·n·d, F) and ``proj_weight`` (F, n·d) are in ``nn.Linear`` layout
    (out, in); views (e.g. a transposed (in, out) Keras kernel) are fine. Returns
    (B, H, W, F).
    """
    B, H, W = h.shape[:3]
    qr, kr, vr, qc, kc, vc = _split(F.linear(h, qkv_weight, qkv_bias), heads)
    row = F.scaled_dot_product_attention(qr, kr, vr)
    col = F.scaled_dot_product_attention(qc, kc, vc)
    # every size given: einops cannot infer one from an empty (B = 0) batch
    out = rearrange(row, "(b h) n w d -> b h w (n d)", b=B, h=H) + rearrange(
        col, "(b w) n h d -> b h w (n d)", b=B, w=W
    )
    return F.linear(out, proj_weight, proj_bias)


class AxialAttention(nn.Module):
    """Row + column attention on a channels-last map.

    Args:
        channels: F, channels of h.
        dim: d, width of each head (≥ 16 is much faster on CPU, see docs/performance.md).
        heads: number of heads n; the attention width is n·d.

    Shape:
        - Input h: (B, H, W, F). Output Δ: (B, H, W, F).
        - :meth:`attention_maps`: ``row`` (B, H, n, W, W) and ``col`` (B, W, n, H, H), the
          softmax weights (query axis before key axis).
    """

    def __init__(self, channels: int, dim: int = 16, heads: int = 1) -> None:
        super().__init__()
        if dim < 1 or heads < 1:
            raise ValueError(f"attention dim and heads must be >= 1, got dim={dim}, heads={heads}")
        self.heads = heads
        self.dim = dim
        self.qkv = nn.Linear(channels, 3 * heads * dim)
        self.proj = nn.Linear(heads * dim, channels)

    def _split(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q, k, v of h (B, H, W, F) as rows ((B·H), n, W, d) and columns ((B·W), n, H, d)."""
        return _split(F.linear(h, self.qkv.weight, self.qkv.bias), self.heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return axial_attention(
            h, self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias, self.heads
        )

    def attention_maps(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """The softmax weights :meth:`forward` uses for h (B, H, W, F), recomputed:
        ``row`` (B, H, n, W, W) and ``col`` (B, W, n, H, H), query axis before key axis."""
        B, H, W = h.shape[:3]
        qr, kr, _, qc, kc, _ = self._split(h)
        scale = self.dim**-0.5  # scaled_dot_product_attention's default
        row = torch.softmax(qr @ kr.transpose(-1, -2) * scale, dim=-1)
        col = torch.softmax(qc @ kc.transpose(-1, -2) * scale, dim=-1)
        return {
            "row": rearrange(row, "(b h) n i j -> b h n i j", b=B, h=H),
            "col": rearrange(col, "(b w) n i j -> b w n i j", b=B, w=W),
        }
