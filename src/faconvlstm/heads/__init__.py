"""Representation heads: the subspace head, its temporal self-attention and the fixed
seasonal positional encoding (docs/design.md §2.3), and the DEC/IDEC clustering head."""

from faconvlstm.heads.clustering import ClusteringHead
from faconvlstm.heads.seasonal import SeasonalPositionalEncoding
from faconvlstm.heads.subspace import SubspaceHead, TemporalAttentionBlock

__all__ = ["ClusteringHead", "SeasonalPositionalEncoding", "SubspaceHead", "TemporalAttentionBlock"]
