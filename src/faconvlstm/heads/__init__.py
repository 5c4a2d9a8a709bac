"""Representation heads: the subspace head, its temporal self-attention and the fixed
seasonal positional encoding (docs/design.md §2.3)."""

from faconvlstm.heads.seasonal import SeasonalPositionalEncoding
from faconvlstm.heads.subspace import SubspaceHead, TemporalAttentionBlock

__all__ = ["SeasonalPositionalEncoding", "SubspaceHead", "TemporalAttentionBlock"]
