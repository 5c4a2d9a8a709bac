"""Recurrent layers: the Keras-exact ConvLSTM2D baseline and FAConvLSTM2D, on one time loop."""

# The PyTorch check runs before the imports below, which all import torch.
# ruff: noqa: E402
from faconvlstm._optional import require

require("torch", "torch")  # without PyTorch: an ImportError naming faconvlstm[torch]

from faconvlstm.layers.axial_attention import AxialAttention
from faconvlstm.layers.convlstm import ConvLSTM2D
from faconvlstm.layers.depthwise import MultiScaleDepthwise
from faconvlstm.layers.faconvlstm import FAConvLSTM2D
from faconvlstm.layers.recurrent import RecurrentConv2D
from faconvlstm.layers.squeeze_excite import SEModule, SqueezeExcite
from faconvlstm.layers.wrappers import Bidirectional, RecurrentStack

__all__ = [
    "AxialAttention",
    "Bidirectional",
    "ConvLSTM2D",
    "FAConvLSTM2D",
    "MultiScaleDepthwise",
    "RecurrentConv2D",
    "RecurrentStack",
    "SEModule",
    "SqueezeExcite",
]
