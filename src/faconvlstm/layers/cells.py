r"""One-step cells: ``ConvLSTM2DCell`` and ``FAConvLSTM2DCell``, for loops you write yourself.

A cell advances one frame: ``h, state = cell(x_t, state)``, the ``torch.nn.LSTMCell`` habit
that autoregressive rollouts (OpenSTL-style: feed the prediction back as the next input)
need. A cell wraps a layer and runs that layer's own step (the same ``_input_sequence`` and
``_step`` its time loop calls), so a loop over the cell equals the layer exactly::

    cell = FAConvLSTM2DCell.from_layer(layer)  # shares the layer's parameters
    state = None
    for t in range(T):
        h, state = cell(x[:, t], state, last=t == T - 1)
    # h == layer(x), state.h, state.c == the layer's (h, c)

The state is a :class:`CellState` ``(h, c, step)``: ``step`` counts the frames seen, which
is what the FA attention schedule needs ($a_t$ in :class:`~faconvlstm.FAConvLSTM2D`:
attention after steps $k_a - 1, 2k_a - 1, \dots$). A layer also attends at its last step;
a cell cannot know which frame is the last, so you say it with ``last=True`` (in an
open-ended rollout, pass ``last=True`` on the frames whose output you use as a prediction
if you want them attended as a layer's output would be; the periodic schedule is unchanged
by it). Calling a *layer* one frame at a time instead attends at every frame, because each
call's single step is its last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from faconvlstm.layers.convlstm import ConvLSTM2D
from faconvlstm.layers.faconvlstm import FAConvLSTM2D
from faconvlstm.layers.recurrent import RecurrentConv2D

__all__ = ["CellState", "ConvLSTM2DCell", "FAConvLSTM2DCell", "advance"]

#: layer arguments about whole sequences, meaningless for one step
_SEQUENCE_ARGUMENTS = ("return_sequences", "return_state", "go_backwards", "stateful")


class CellState(NamedTuple):
    """The state a cell carries between steps.

    Attributes:
        h: hidden state, (B, F, H', W') (``channels_first``) or (B, H', W', F).
        c: cell state, same shape.
        step: frames already processed (the next step's index t).
    """

    h: torch.Tensor
    c: torch.Tensor
    step: int


class RecurrentCell2D(nn.Module):
    """Base of the one-step cells: one frame through the wrapped layer's step.

    Args:
        filters, kernel_size, **kwargs: the arguments of the layer class (``layer_class``),
            except the whole-sequence flags ``return_sequences``, ``return_state``,
            ``go_backwards`` and ``stateful``.

    Call: ``cell(x_t, state=None, last=False) -> (h, CellState(h, c, step + 1))``.

    Shape:
        - ``x_t``: (B, C, H, W) (``channels_first``) or (B, H, W, C) (``channels_last``).
        - ``state``: None (zeros, step 0), a :class:`CellState` or a pair ``(h, c)`` (step 0,
          as a layer's ``initial_state``); h and c (B, F, H', W') or (B, H', W', F).
        - Output h: (B, F, H', W') or (B, H', W', F).

    In training mode, dropout draws fresh masks at every call (a layer shares one set of
    masks over a sequence); ``gradient_checkpointing`` applies per call. Parameters live in
    ``cell.layer``, so a state dict saved from a cell has keys ``layer.<name>``.
    """

    layer_class: type[RecurrentConv2D] = RecurrentConv2D

    def __init__(self, filters: int, kernel_size: int | Sequence[int], **kwargs: Any) -> None:
        super().__init__()
        given = [name for name in _SEQUENCE_ARGUMENTS if kwargs.get(name)]
        if given:
            raise ValueError(
                f"{type(self).__name__} runs one step, so {', '.join(given)} do not apply; "
                f"drop them (or use {self.layer_class.__name__} for whole sequences)"
            )
        self.layer = self.layer_class(filters, kernel_size, **kwargs)

    @classmethod
    def from_layer(cls, layer: RecurrentConv2D) -> RecurrentCell2D:
        """A cell running ``layer``'s step with ``layer``'s parameters (shared, not copied).

        The whole-sequence flags of ``layer`` (``return_sequences``, ``go_backwards``,
        ``stateful``, ...) are ignored by the cell.
        """
        if not isinstance(layer, cls.layer_class):
            raise TypeError(
                f"{cls.__name__}.from_layer needs a {cls.layer_class.__name__}, "
                f"got {type(layer).__name__}"
            )
        cell = cls.__new__(cls)
        nn.Module.__init__(cell)
        cell.layer = layer
        return cell

    def forward(
        self,
        x_t: torch.Tensor,
        state: CellState | Sequence[Any] | None = None,
        last: bool = False,
    ) -> tuple[torch.Tensor, CellState]:
        """Advance one frame; ``last=True`` marks the last step of a sequence (see module)."""
        layer = self.layer
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 4:
            layout = "(B, C, H, W)" if layer.data_format == "channels_first" else "(B, H, W, C)"
            shape = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(
                f"{type(self).__name__} expects one frame {layout} "
                f"(data_format={layer.data_format!r}), got {shape}; for a whole sequence "
                f"call the layer ({type(layer).__name__})"
            )
        return advance(layer, x_t, state, last)


def advance(
    layer: RecurrentConv2D,
    x_t: torch.Tensor,
    state: CellState | Sequence[Any] | None = None,
    last: bool = False,
) -> tuple[torch.Tensor, CellState]:
    """One frame through ``layer``'s own step: what a cell wrapping ``layer`` computes.

    For loops inside a model that owns its layers (the :class:`~faconvlstm.models.Forecaster`'s
    lead steps) without wrapping them in cell modules. Arguments, shapes and the
    ``(h, CellState)`` result are those of :meth:`RecurrentCell2D.forward` (``x_t`` is not
    checked here).
    """
    x, out_hw = layer._prepare(x_t.unsqueeze(1))
    training = layer.training and torch.is_grad_enabled()
    xs = layer._input_sequence(x, layer._input_masks(x, training))
    if state is None:
        step = 0
        h, c = layer._zero_state(xs, out_hw)
    else:
        h, c, step = _unpack(state)
        h, c = layer._given_state((h, c), xs, out_hw)
    rec_masks = layer._recurrent_masks(h, training)
    h, c = layer._advance(xs[0], h, c, rec_masks, step, last, training)
    h, c = layer._to_external(h), layer._to_external(c)
    return h, CellState(h, c, step + 1)


def _unpack(state: CellState | Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, int]:
    if isinstance(state, (tuple, list)) and len(state) in (2, 3):
        h, c, *rest = state
        step = rest[0] if rest else 0
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return h, c, step
    raise ValueError(
        "state must be None, a CellState(h, c, step) as returned by the cell, or a pair "
        f"(h, c) starting at step 0; got {type(state).__name__}"
    )


class ConvLSTM2DCell(RecurrentCell2D):
    """One step of :class:`~faconvlstm.ConvLSTM2D` (same arguments, same equations).

    ``last`` is accepted for a uniform interface and changes nothing (no attention).

    Example::

        >>> cell = ConvLSTM2DCell(16, 3, padding="same", in_channels=3)
        >>> h, state = cell(torch.randn(2, 3, 32, 64))
        >>> h.shape, state.step
        (torch.Size([2, 16, 32, 64]), 1)
    """

    layer_class = ConvLSTM2D


class FAConvLSTM2DCell(RecurrentCell2D):
    """One step of :class:`~faconvlstm.FAConvLSTM2D` (same arguments, same equations).

    Attention runs after steps k_a − 1, 2k_a − 1, … (counted in ``state.step``) and at a
    step called with ``last=True``, exactly as the layer decides for its steps.

    Example::

        >>> cell = FAConvLSTM2DCell(16, 3, padding="same", in_channels=3)
        >>> h, state = cell(torch.randn(2, 3, 32, 64))
        >>> h.shape, state.step
        (torch.Size([2, 16, 32, 64]), 1)
    """

    layer_class = FAConvLSTM2D
