"""Keras 3 front end: ``from faconvlstm.keras import FAConvLSTM2D``.

A drop-in replacement for ``keras.layers.ConvLSTM2D`` written with ``keras.ops`` only, so it
runs on the TensorFlow, JAX and PyTorch backends; weights convert to and from the PyTorch
reference :class:`faconvlstm.FAConvLSTM2D` (``to_torch`` / ``from_torch``). Importing this
module imports Keras (``pip install faconvlstm[keras]``); ``import faconvlstm`` does not.
"""

try:
    import keras  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "faconvlstm.keras needs Keras 3: pip install 'faconvlstm[keras]' (or 'keras>=3.3')"
    ) from error

from faconvlstm.keras.cell import FAConvLSTM2DCell
from faconvlstm.keras.layer import FAConvLSTM2D

__all__ = ["FAConvLSTM2D", "FAConvLSTM2DCell"]
