"""Wrappers around recurrent layers: ``Bidirectional`` (as Keras') and ``RecurrentStack``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from faconvlstm.layers.recurrent import RecurrentConv2D

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(nn.Module):
    """Run a layer forwards and a copy backwards in time and merge, as Keras' ``Bidirectional``.

    Args:
        layer: a :class:`~faconvlstm.ConvLSTM2D` or :class:`~faconvlstm.FAConvLSTM2D`.
        merge_mode: ``"concat"`` (channels), ``"sum"``, ``"mul"``, ``"ave"`` or ``None``
            (return ``[forward, backward]``).
        backward_layer: optional layer for the backward direction; by default a fresh layer
            from ``layer.get_config()`` with ``go_backwards`` flipped (own weights).

    Shape: like the wrapped layer, with 2F channels for ``"concat"``. With
    ``return_sequences`` the backward outputs are flipped back into input order. With
    ``return_state`` the call returns ``(output, h_fwd, c_fwd, h_bwd, c_bwd)``;
    ``initial_state`` takes the same four tensors.
    """

    def __init__(
        self,
        layer: RecurrentConv2D,
        merge_mode: str | None = "concat",
        backward_layer: RecurrentConv2D | None = None,
    ) -> None:
        super().__init__()
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = not layer.go_backwards
            backward_layer = type(layer).from_config(config)
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("backward_layer must have go_backwards opposite to layer's")
        for flag in ("return_sequences", "return_state", "data_format"):
            if getattr(layer, flag) != getattr(backward_layer, flag):
                raise ValueError(f"layer and backward_layer must agree on {flag}")
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    def _merge(self, a: torch.Tensor, b: torch.Tensor):
        if self.merge_mode is None:
            return [a, b]
        if self.merge_mode == "concat":
            channel_axis = -1 if self.forward_layer.data_format == "channels_last" else a.dim() - 3
            return torch.cat([a, b], dim=channel_axis)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        return (a + b) / 2

    def forward(self, x, initial_state: Sequence[torch.Tensor] | None = None, mask=None):
        fwd_state = bwd_state = None
        if initial_state is not None:
            if len(initial_state) != 4:
                raise ValueError("Bidirectional initial_state must be (h_fwd, c_fwd, h_bwd, c_bwd)")
            fwd_state, bwd_state = initial_state[:2], initial_state[2:]
        seq_f, last_f, h_f, c_f = self.forward_layer.run_sequence(x, fwd_state, mask)
        seq_b, last_b, h_b, c_b = self.backward_layer.run_sequence(x, bwd_state, mask)
        if self.forward_layer.return_sequences:
            out = self._merge(seq_f, seq_b.flip(1))
        else:
            out = self._merge(last_f, last_b)
        if self.forward_layer.return_state:
            return out, h_f, c_f, h_b, c_b
        return out


class RecurrentStack(nn.Module):
    """A stack of recurrent layers that returns every layer's final ``(h, c)``.

    Each layer gets the previous layer's whole output sequence, whatever its
    ``return_sequences`` flag says.

    Call: ``stack(x, initial_states=None, mask=None) -> (sequence, [(h, c), ...])`` with
    ``sequence`` the last layer's outputs (B, T, F, H', W') (data format of the layers) and
    one ``(h, c)`` per layer; ``initial_states`` is such a list (or None).
    """

    def __init__(self, layers: Sequence[RecurrentConv2D]) -> None:
        super().__init__()
        if not layers:
            raise ValueError("RecurrentStack needs at least one layer")
        formats = {layer.data_format for layer in layers}
        if len(formats) != 1:
            raise ValueError(f"all layers of a stack must share data_format, got {formats}")
        self.layers = nn.ModuleList(layers)

    def forward(self, x, initial_states=None, mask=None):
        if initial_states is not None and len(initial_states) != len(self.layers):
            raise ValueError(
                f"initial_states must hold one (h, c) per layer ({len(self.layers)}), "
                f"got {len(initial_states)}"
            )
        states = []
        for k, layer in enumerate(self.layers):
            init = None if initial_states is None else initial_states[k]
            x, _, h, c = layer.run_sequence(x, init, mask)
            if layer.go_backwards:
                x = x.flip(1)
            states.append((h, c))
        return x, states
