"""faconvlstm — Factorized-Attention ConvLSTM for multivariate gridded climate data.

The public API is small and flat::

    from faconvlstm import FAConvLSTM2D, ConvLSTM2D

Layers live in :mod:`faconvlstm.layers`, the subspace head and seasonal encoding in
:mod:`faconvlstm.heads`, models in :mod:`faconvlstm.models`, the xarray pipeline and the
synthetic climate generator in :mod:`faconvlstm.data`, training in
:mod:`faconvlstm.training` and the evaluation protocol in :mod:`faconvlstm.evaluation`.
"""

from faconvlstm.heads import SeasonalPositionalEncoding, SubspaceHead
from faconvlstm.layers import Bidirectional, ConvLSTM2D, FAConvLSTM2D, RecurrentStack
from faconvlstm.models import Encoder, Forecaster, SequenceAutoencoder

__version__ = "0.1.0"

__all__ = [
    "Bidirectional",
    "ConvLSTM2D",
    "Encoder",
    "FAConvLSTM2D",
    "Forecaster",
    "RecurrentStack",
    "SeasonalPositionalEncoding",
    "SequenceAutoencoder",
    "SubspaceHead",
    "__version__",
]
