"""Subspace head: hidden-state sequences → compact per-timestep embeddings.

The representation head of FAConvLSTM ("FAConvLSTM: Factorized-Attention ConvLSTM for
Efficient Feature Extraction in Multivariate Climate Data", arXiv 2601.10914), as read in
docs/design.md §2.3: a linear projection of each step's hidden state onto a low-dimensional subspace
(the learned analogue of EOF truncation), refined by temporal self-attention with a fixed
seasonal positional encoding. The attention block is the pre-norm Transformer encoder
layer (Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020).
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import nn

from faconvlstm.heads.seasonal import SeasonalPositionalEncoding
from faconvlstm.losses import orthogonality_penalty

__all__ = ["NORMS", "SubspaceHead", "TemporalAttentionBlock"]

#: accepted values of ``SubspaceHead(norm=...)``
NORMS = ("layer", "batch", "none")


class _StepBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of ``(..., E)``: statistics over all leading axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _norm(kind: str, embed_dim: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(embed_dim)
    if kind == "batch":
        return _StepBatchNorm(embed_dim)
    return nn.Identity()


class TemporalAttentionBlock(nn.Module):
    r"""Pre-norm Transformer encoder layer over the time axis.

    .. math::
        z \leftarrow z + \mathrm{MHA}(\mathrm{LN}(z)),\qquad
        z \leftarrow z + \mathrm{MLP}(\mathrm{LN}(z)),\qquad
        \mathrm{MLP} = \mathrm{Linear}\circ\mathrm{GELU}\circ\mathrm{Linear}.

    Unlike ``nn.TransformerEncoderLayer`` it can return its attention weights.

    Args:
        embed_dim: E.
        num_heads: attention heads; must divide E.
        mlp_ratio: hidden width of the MLP as a multiple of E.
        dropout: dropout on attention weights and after each residual branch.

    Inputs: ``z, attn_mask=None, need_weights=False``
        - **z**: ``(B, T, E)``.
        - **attn_mask**: bool ``(B·heads, T, T)`` or ``(T, T)``, True = may *not* attend.

    Outputs: ``(z, weights)`` — ``z`` ``(B, T, E)``; ``weights`` ``(B, heads, T, T)``
    (softmax over the last axis) if ``need_weights`` else None.
    """

    def __init__(
        self, embed_dim: int, num_heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = round(embed_dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, embed_dim),
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self, z: torch.Tensor, attn_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self.norm1(z)
        a, weights = self.attn(
            q, q, q, attn_mask=attn_mask, need_weights=need_weights, average_attn_weights=False
        )
        z = z + self.drop(a)
        z = z + self.drop(self.mlp(self.norm2(z)))
        return z, weights


class SubspaceHead(nn.Module):
    r"""Per-timestep subspace projection + seasonal encoding + temporal self-attention.

    For each step ``t`` of the hidden-state sequence ``h_t`` (F×H×W):

    .. math::
        e_t &= \mathrm{LN}\big(W\,\mathrm{vec}(\mathrm{Conv}_{1\times1}(
               \mathrm{Pool}_{h_0\times w_0}(h_t)))\big) \in \mathbb{R}^E,\\
        z &= \mathrm{LN}\big(\mathrm{Block}^{L}(e + \mathrm{PE}(\text{times}))\big),

    where Pool is adaptive average pooling to the coarse ``pool_size`` grid (so *where* a
    pattern sits is kept), Conv maps F → s channels, ``W`` (E × s·h₀·w₀) is the subspace
    projection, PE the :class:`SeasonalPositionalEncoding` and Block the pre-norm
    :class:`TemporalAttentionBlock`, bidirectional or causal. Pooling and the 1×1 conv are
    both linear and commute exactly, so the head pools first: its cost does not grow with
    F·H·W beyond one averaging pass, whatever the grid. No parameter depends on H×W.

    ``regularization_loss()`` returns ``orthogonality_weight · ‖W Wᵀ − I‖²_F``, which pushes
    the rows of ``W`` towards an orthonormal basis of the pooled-feature space.

    Args:
        in_channels: F, channels of the hidden states.
        embed_dim: E, embedding width.
        causal: if True step t attends only to steps ≤ t (online / forecasting use);
            default bidirectional.
        channels: s, channels after the 1×1 conv.
        pool_size: ``(h₀, w₀)`` coarse grid (int for a square one).
        harmonics: K, annual harmonics of the encoding.
        num_layers: L, temporal attention blocks.
        num_heads: attention heads; must divide E.
        mlp_ratio: MLP width of each block as a multiple of E.
        dropout: dropout inside the blocks.
        orthogonality_weight: weight of the orthogonality penalty (0 disables).
        norm: the two normalisations written LN above (before attention and at the
            output). ``"layer"`` (default): LayerNorm over the E channels of each step,
            which removes each step's mean and scale — a weak and a strong anomaly of the
            same pattern get the same embedding. ``"batch"``: BatchNorm over the B·T steps
            of a batch per channel (running statistics at evaluation), which keeps each
            step's amplitude relative to the others. ``"none"``: no normalisation.

    Inputs: ``h_seq, times=None, mask=None, return_attention=False``
        - **h_seq**: ``(B, T, F, H, W)``.
        - **times**: time stamps ``(T,)`` or ``(B, T)`` or float phases φ; see
          :class:`SeasonalPositionalEncoding`. None: index encoding only.
        - **mask**: bool ``(B, T)``, True = valid step; invalid steps are not attended to
          (each step always sees itself, so no row is empty).
        - **return_attention**: also return the last block's attention weights.

    Outputs: ``z`` ``(B, T, E)``, or ``(z, attention)`` with attention ``(B, heads, T, T)``
    (of the last block; None when ``num_layers=0``, which disables temporal attention).
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int = 32,
        causal: bool = False,
        channels: int = 16,
        pool_size: int | tuple[int, int] = (4, 8),
        harmonics: int = 4,
        num_layers: int = 1,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        orthogonality_weight: float = 0.0,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if embed_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide embed_dim={embed_dim}")
        self.pool_size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        self.embed_dim = embed_dim
        self.causal = causal
        self.num_heads = num_heads
        self.orthogonality_weight = orthogonality_weight
        self.pool = nn.AdaptiveAvgPool2d(self.pool_size)
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=1)
        self.proj = nn.Linear(channels * self.pool_size[0] * self.pool_size[1], embed_dim)
        # Zero biases: freshly initialised recurrent layers emit tiny hidden states (|h| ~
        # 1e-3), which a random bias would drown before the LayerNorm rescales them, leaving
        # every embedding almost the same at the start of training.
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.proj.bias)
        self.norm_kind = norm
        self.norm = _norm(norm, embed_dim)
        self.encoding = SeasonalPositionalEncoding(embed_dim, harmonics=harmonics)
        self.blocks = nn.ModuleList(
            TemporalAttentionBlock(embed_dim, num_heads, mlp_ratio, dropout)
            for _ in range(num_layers)
        )
        self.out_norm = _norm(norm, embed_dim)

    def project(self, h_seq: torch.Tensor) -> torch.Tensor:
        """Per-step subspace embeddings ``e`` ``(B, T, E)``, before temporal attention."""
        b = h_seq.shape[0]
        pooled = self.pool(rearrange(h_seq, "b t f h w -> (b t) f h w"))
        feats = self.conv(pooled)
        return self.norm(self.proj(rearrange(feats, "(b t) s h w -> b t (s h w)", b=b)))

    def _attn_mask(
        self, t: int, mask: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor | None:
        """Bool mask (True = blocked) for ``nn.MultiheadAttention``, or None."""
        if not self.causal and mask is None:
            return None
        blocked = torch.zeros(t, t, dtype=torch.bool, device=device)
        if self.causal:
            blocked = torch.ones_like(blocked).triu(1)
        if mask is None:
            return blocked
        blocked = blocked | ~mask.to(device=device, dtype=torch.bool)[:, None, :]
        blocked = blocked & ~torch.eye(t, dtype=torch.bool, device=device)
        return blocked.repeat_interleave(self.num_heads, dim=0)

    def forward(
        self,
        h_seq: torch.Tensor,
        times: Any = None,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        t = h_seq.shape[1]
        e = self.project(h_seq)
        z = e + self.encoding(times, length=t).to(e.dtype)
        attn_mask = self._attn_mask(t, mask, h_seq.device)
        weights = None
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            z, weights = block(z, attn_mask=attn_mask, need_weights=return_attention and last)
        z = self.out_norm(z)
        return (z, weights) if return_attention else z

    def regularization_loss(self) -> torch.Tensor:
        """``orthogonality_weight · ‖W Wᵀ − I‖²_F`` of the projection (0 when disabled)."""
        if self.orthogonality_weight == 0:
            return self.proj.weight.new_zeros(())
        return self.orthogonality_weight * orthogonality_penalty(self.proj.weight)
