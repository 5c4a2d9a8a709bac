"""The cell-kind registry: one place turns "fa" / "convlstm" into classes and labels."""

import pytest

from faconvlstm import ConvLSTM2D, FAConvLSTM2D
from faconvlstm.layers.registry import CELLS, cell_class, cell_label


def test_names_map_to_the_layer_classes_and_labels():
    assert cell_class("fa") is FAConvLSTM2D
    assert cell_class("convlstm") is ConvLSTM2D
    assert (cell_label("fa"), cell_label("convlstm")) == ("FAConvLSTM", "ConvLSTM")
    assert sorted(CELLS) == ["convlstm", "fa"]


@pytest.mark.parametrize("bad", ["FA", "lstm", None])
def test_unknown_cell_names_the_choices(bad):
    with pytest.raises(ValueError, match=r"cell must be one of \['convlstm', 'fa'\]"):
        cell_class(bad)
