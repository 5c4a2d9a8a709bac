"""Models (docs/design.md §2.4): the encoder (recurrent stack + subspace head), the sequence
autoencoder (representation learning), the encoder–forecaster and the EOF/PCA baseline."""

from faconvlstm.models.autoencoder import SequenceAutoencoder
from faconvlstm.models.encoder import Encoder
from faconvlstm.models.eof import EOFEmbedding
from faconvlstm.models.forecaster import Forecaster

__all__ = ["EOFEmbedding", "Encoder", "Forecaster", "SequenceAutoencoder"]
