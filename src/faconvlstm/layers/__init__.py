"""Recurrent layers: the Keras-exact ConvLSTM2D baseline and FAConvLSTM2D, on one time loop,
and their one-step cells."""

# The PyTorch check runs before the imports below, which all import torch.
# ruff: noqa: E402
from faconvlstm._optional import require

require("torch", "torch")  # without PyTorch: an ImportError naming faconvlstm[torch]

from faconvlstm.layers.axial_attention import AxialAttention
from faconvlstm.layers.cells import CellState, ConvLSTM2DCell, FAConvLSTM2DCell
from faconvlstm.layers.convlstm import ConvLSTM2D
from faconvlstm.layers.depthwise import MultiScaleDepthwise
from faconvlstm.layers.faconvlstm import FAConvLSTM2D
from faconvlstm.layers.recurrent import RecurrentConv2D
from faconvlstm.layers.squeeze_excite import SEModule, SqueezeExcite
from faconvlstm.layers.wrappers import Bidirectional, RecurrentStack

__all__ = [
    "AxialAttention",
    "Bidirectional",
    "CellState",
    "ConvLSTM2D",
    "ConvLSTM2DCell",
    "FAConvLSTM2D",
    "FAConvLSTM2DCell",
    "MultiScaleDepthwise",
    "RecurrentConv2D",
    "RecurrentStack",
    "SEModule",
    "SqueezeExcite",
]
