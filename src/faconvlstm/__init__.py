"""faconvlstm — Factorized-Attention ConvLSTM for multivariate gridded climate data.

The public API is small and flat::

    from faconvlstm import FAConvLSTM2D, ConvLSTM2D

Layers live in :mod:`faconvlstm.layers`, the subspace head and seasonal encoding in
:mod:`faconvlstm.heads`, models in :mod:`faconvlstm.models`, the xarray pipeline and the
synthetic climate generator in :mod:`faconvlstm.data`, training in
:mod:`faconvlstm.training` and the evaluation protocol in :mod:`faconvlstm.evaluation`.

``import faconvlstm`` itself imports nothing heavy: each name below is imported on first
use (PEP 562), so ``faconvlstm --help`` answers at once, ``from faconvlstm import
FAConvLSTM2D`` needs only PyTorch (not xarray or Lightning), and :mod:`faconvlstm.keras`
imports no PyTorch at all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "Bidirectional": "faconvlstm.layers",
    "CellState": "faconvlstm.layers",
    "ConvLSTM2D": "faconvlstm.layers",
    "ConvLSTM2DCell": "faconvlstm.layers",
    "FAConvLSTM2D": "faconvlstm.layers",
    "FAConvLSTM2DCell": "faconvlstm.layers",
    "RecurrentStack": "faconvlstm.layers",
    "SeasonalPositionalEncoding": "faconvlstm.heads",
    "SubspaceHead": "faconvlstm.heads",
    "Encoder": "faconvlstm.models",
    "Forecaster": "faconvlstm.models",
    "SequenceAutoencoder": "faconvlstm.models",
}

__all__ = [
    "Bidirectional",
    "CellState",
    "ConvLSTM2D",
    "ConvLSTM2DCell",
    "Encoder",
    "FAConvLSTM2D",
    "FAConvLSTM2DCell",
    "Forecaster",
    "RecurrentStack",
    "SeasonalPositionalEncoding",
    "SequenceAutoencoder",
    "SubspaceHead",
    "__version__",
]

if TYPE_CHECKING:  # static checkers and IDEs see ordinary imports
    from faconvlstm.heads import SeasonalPositionalEncoding, SubspaceHead
    from faconvlstm.layers import (
        Bidirectional,
        CellState,
        ConvLSTM2D,
        ConvLSTM2DCell,
        FAConvLSTM2D,
        FAConvLSTM2DCell,
        RecurrentStack,
    )
    from faconvlstm.models import Encoder, Forecaster, SequenceAutoencoder


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faconvlstm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
