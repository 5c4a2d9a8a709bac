"""Keras 3 front end: ``from faconvlstm.keras import FAConvLSTM2D``.

A drop-in replacement for ``keras.layers.ConvLSTM2D`` written with ``keras.ops`` only, so it
runs on the TensorFlow, JAX and PyTorch backends; weights convert to and from the PyTorch
reference :class:`faconvlstm.FAConvLSTM2D` (``to_torch`` / ``from_torch``). Importing this
module imports Keras (``pip install "faconvlstm[keras]"``) and neither PyTorch nor the
training stack (xarray, Lightning, dask): on the JAX or TensorFlow backend this front end
needs Keras and NumPy only. ``to_torch`` / ``from_torch`` import PyTorch when called.
"""

# The Keras check runs before the imports below, which all import keras.
# ruff: noqa: E402
from faconvlstm._optional import require

require("keras", "keras")  # without Keras: an ImportError naming faconvlstm[keras]

from faconvlstm.keras.cell import FAConvLSTM2DCell
from faconvlstm.keras.layer import FAConvLSTM2D

__all__ = ["FAConvLSTM2D", "FAConvLSTM2DCell"]
