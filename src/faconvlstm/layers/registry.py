"""The one registry of recurrent cell kinds, by the names configs and results use.

Every place that turns a name such as ``"fa"`` into a layer class or a label (models,
the cost benchmark, the comparison protocol and its report) asks this module, so a new
cell kind is added here once::

    CELLS["mycell"] = CellKind("mycell", MyConvLSTM2D, "My ConvLSTM")
"""

from __future__ import annotations

from dataclasses import dataclass

from faconvlstm.layers.convlstm import ConvLSTM2D
from faconvlstm.layers.faconvlstm import FAConvLSTM2D
from faconvlstm.layers.recurrent import RecurrentConv2D

__all__ = ["CELLS", "CellKind", "cell_class", "cell_label"]


@dataclass(frozen=True)
class CellKind:
    """A recurrent cell kind: its config name, its layer class and its label in reports."""

    name: str
    cls: type[RecurrentConv2D]
    label: str


CELLS: dict[str, CellKind] = {
    "fa": CellKind("fa", FAConvLSTM2D, "FAConvLSTM"),
    "convlstm": CellKind("convlstm", ConvLSTM2D, "ConvLSTM"),
}


def _kind(name: str) -> CellKind:
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {name!r}") from None


def cell_class(name: str) -> type[RecurrentConv2D]:
    """The layer class of cell kind ``name`` (``"fa"`` → :class:`FAConvLSTM2D`)."""
    return _kind(name).cls


def cell_label(name: str) -> str:
    """The human-readable label of cell kind ``name`` (``"fa"`` → ``"FAConvLSTM"``)."""
    return _kind(name).label
