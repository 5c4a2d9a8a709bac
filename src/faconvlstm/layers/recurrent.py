"""The time loop shared by every convolutional recurrent layer in faconvlstm.

:class:`RecurrentConv2D` owns everything that is not the cell: argument validation,
data-format conversion, lazy construction of input-side weights, state initialisation on the
input's device and dtype, ``initial_state``, ``stateful`` carry, ``go_backwards``, the time
``mask``, dropout masks fixed across time, ``return_sequences`` / ``return_state`` and
optional gradient checkpointing over time. A cell subclass supplies five methods:

* ``_declare_input_parameters()`` — register the parameters that depend on the input
  channels as ``torch.nn.UninitializedParameter``;
* ``_build(in_channels)`` — materialise (in place) and initialise them;
* ``_input_sequence(x, input_masks)`` — the input contribution of every step at once, time
  major (step ``t`` is ``xs.unbind(0)[t]``), in the cell's internal layout (or the frames
  themselves, for a ``_step`` that convolves them, as ConvLSTM2D's joint step does);
* ``_step(xs_t, h, c, recurrent_masks, t, attend)`` — one recurrence step in the internal
  layout (``attend``: whether this step ends with attention, see :meth:`attends_at`);
* ``_in_channels_from_state(state_dict, prefix)`` — infer ``in_channels`` when loading a
  state dict into a layer that has not seen an input yet.

The one-step cells of :mod:`faconvlstm.layers.cells` call the same ``_input_sequence`` and
``_step`` on one frame, so a loop over a cell equals the layer exactly.

The semantics follow ``keras.layers.ConvLSTM2D`` (Keras 3) exactly; the one deliberate
difference is the default ``data_format="channels_first"`` (PyTorch's convention).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parameter import is_lazy
from torch.utils.checkpoint import checkpoint

from faconvlstm.geometry import PADDINGS, check_boundary, conv_output_size, to_pair

DATA_FORMATS = ("channels_first", "channels_last")

#: the Tensor / Module method that casts to a dtype, for error messages
_CAST = {
    torch.float32: "float()",
    torch.float64: "double()",
    torch.bfloat16: "bfloat16()",
    torch.float16: "half()",
}


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "relu": torch.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "softsign": F.softsign,
    "linear": _identity,
}


def get_activation(name: str | Callable | None, argument: str) -> Callable:
    """Resolve a Keras-style activation name (or a callable) to a function."""
    if name is None:
        return _identity
    if callable(name):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"{argument} must be a callable or one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None


def dropout_mask(like: torch.Tensor, rate: float, count: int) -> list[torch.Tensor]:
    """``count`` inverted-dropout masks shaped like ``like``: Bernoulli(1 - rate) / (1 - rate)."""
    keep = 1.0 - rate
    return [torch.bernoulli(torch.full_like(like, keep)).div_(keep) for _ in range(count)]


class RecurrentConv2D(nn.Module):
    """Base class: a convolutional recurrent layer with Keras' ``ConvLSTM2D`` semantics.

    Subclasses are :class:`~faconvlstm.ConvLSTM2D` and :class:`~faconvlstm.FAConvLSTM2D`;
    see their docstrings for the cell equations. Everything documented here is shared.

    Args:
        filters: number of hidden channels F (output channels).
        kernel_size: int or (kh, kw), the spatial kernel.
        strides: int or (sh, sw), strides of the input path. The recurrent path always has
            stride 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive) for the input path;
            ``"same"`` is TensorFlow-style (extra pixel at the bottom/right). The
            recurrent path is always ``"same"``.
        data_format: ``"channels_first"`` (default): inputs (B, T, C, H, W), outputs
            (B, [T,] F, H', W'); ``"channels_last"``: inputs (B, T, H, W, C) as in Keras.
        dilation_rate: int or pair, dilation of the input path. ``strides > 1`` together
            with ``dilation_rate > 1`` is not allowed (as in Keras).
        activation: activation of the candidate and of the cell output (``"tanh"``).
        recurrent_activation: activation of the gates (``"sigmoid"``).
        use_bias: whether the gates have a bias.
        unit_forget_bias: initialise the forget-gate bias to exactly 1.
        dropout: fraction of the input units to drop (training only; masks drawn once per
            call and shared over time, scaled by 1 / (1 - rate)).
        recurrent_dropout: fraction of the recurrent units to drop (same rules).
        return_sequences: return the whole output sequence instead of the last output.
        return_state: also return the last ``(h, c)``: the call returns ``(output, h, c)``.
        go_backwards: process the sequence in reverse; with ``return_sequences`` the
            outputs come in processing (reversed) order, as in Keras.
        stateful: keep the last state of each call as the initial state of the next, until
            :meth:`reset_state`; the batch size, grid and dtype must not change in between.
        in_channels: number of input channels C. If ``None`` (default) the weights that
            depend on it are ``torch.nn.UninitializedParameter`` until the first call, as
            in ``torch.nn.LazyConv2d``: the first call materialises them in place, so an
            optimizer created before it trains them too. Loading a state dict into an
            unbuilt layer builds it.
        boundary: ``"zeros"`` (Keras) or ``"periodic_lon"`` (wrap longitude = width,
            zero pad at the poles) for every spatial operation of the layer.
        gradient_checkpointing: recompute each step in the backward pass instead of
            storing its intermediates (less memory, about one more forward of time).
        check_finite: raise if the input holds NaN or infinity (opt-in: it costs a pass).

    Shape:
        - Input: (B, T, C, H, W) for ``channels_first``; (B, T, H, W, C) for
          ``channels_last``. ``mask``: (B, T) bool, True = step is valid.
        - Output: (B, T, F, H', W') if ``return_sequences`` else (B, F, H', W')
          (channels moved last for ``channels_last``), with
          H' = ceil(H / sh) for ``"same"`` and (H - (kh - 1) dh - 1) // sh + 1 for
          ``"valid"``; likewise W'. With ``return_state``: ``(output, h, c)``, h and c of
          the last-output shape. ``initial_state``: a pair ``(h, c)`` of that shape.

    Masking: where ``mask[b, t]`` is False, h and c are carried over unchanged and the output
    repeats the previous output (zeros before the first valid step), as Keras does.

    dtype: the input must have the layer's floating dtype (cast one of them:
    ``layer.double()`` or ``x.float()``), except under ``torch.autocast``, where the
    autocast dtype rules apply. A ``stateful`` layer keeps its carried state's batch size,
    grid and dtype until :meth:`reset_state`.
    """

    _num_dropout_masks = 4  # Keras draws one mask per gate

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str = "channels_first",
        dilation_rate: int | Sequence[int] = 1,
        activation: str | Callable | None = "tanh",
        recurrent_activation: str | Callable | None = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        *,
        in_channels: int | None = None,
        boundary: str = "zeros",
        gradient_checkpointing: bool = False,
        check_finite: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.strides = to_pair(strides, "strides")
        self.dilation_rate = to_pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"strides > 1 is incompatible with dilation_rate > 1 (got strides={strides!r}, "
                f"dilation_rate={dilation_rate!r}); use one or the other, as in Keras"
            )
        padding = str(padding).lower()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.padding = padding
        if data_format not in DATA_FORMATS:
            raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
        self.data_format = data_format
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self._act = get_activation(activation, "activation")
        self._rec_act = get_activation(recurrent_activation, "recurrent_activation")
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.boundary = check_boundary(boundary)
        if boundary == "periodic_lon" and padding == "valid" and self.kernel_size[1] > 1:
            raise ValueError(
                "boundary='periodic_lon' needs padding='same' (a periodic longitude axis has "
                "no edge to crop); use padding='same' or boundary='zeros'"
            )
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.check_finite = bool(check_finite)
        self.in_channels: int | None = None
        self._states: tuple[torch.Tensor, torch.Tensor] | None = None
        self._declare_input_parameters()
        if in_channels is not None:
            self._build_once(in_channels)

    # ------------------------------------------------------------------ subclass API
    #: whether the cell keeps h and c as (B, H, W, F) internally (else (B, F, H, W))
    _internal_channels_last = False

    def _declare_input_parameters(self) -> None:
        """Register the parameters that depend on the input channels, uninitialised."""
        raise NotImplementedError

    def _build(self, in_channels: int) -> None:
        """Materialise (in place) and initialise the parameters of
        :meth:`_declare_input_parameters` for ``in_channels``."""
        raise NotImplementedError

    def _input_sequence(
        self, x: torch.Tensor, input_masks: list[torch.Tensor] | None
    ) -> torch.Tensor:
        raise NotImplementedError

    def _step(
        self,
        xs_t: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        recurrent_masks: list[torch.Tensor] | None,
        t: int,
        attend: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _in_channels_from_state(self, state_dict: dict[str, Any], prefix: str) -> int | None:
        raise NotImplementedError

    # ------------------------------------------------------------------ construction
    def _build_once(self, in_channels: int) -> None:
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        self.in_channels = in_channels
        self._build(in_channels)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        if self.in_channels is None:
            inferred = self._in_channels_from_state(state_dict, prefix)
            if inferred is not None:
                self._build_once(inferred)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if self.in_channels is None:  # unbuilt into unbuilt: nothing was saved, nothing missing
            lazy = {prefix + name for name, p in self._parameters.items() if is_lazy(p)}
            missing_keys[:] = [key for key in missing_keys if key not in lazy]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if self.in_channels is not None:
            super()._save_to_state_dict(destination, prefix, keep_vars)
            return
        # Unbuilt: the uninitialised input-side weights have no values to save (loading
        # such a state dict leaves them unbuilt); the layers have no buffers.
        for name, param in self._parameters.items():
            if param is not None and not is_lazy(param):
                destination[prefix + name] = param if keep_vars else param.detach()

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the output for an (H, W) input grid (Keras' shape formula)."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        return (
            conv_output_size(height, kh, sh, dh, self.padding),
            conv_output_size(width, kw, sw, dw, self.padding),
        )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict; ``from_config`` inverts it."""
        for name in ("activation", "recurrent_activation"):
            if callable(getattr(self, name)):
                raise ValueError(f"get_config cannot serialise a callable {name}; use a name")
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "in_channels": self.in_channels,
            "boundary": self.boundary,
            "gradient_checkpointing": self.gradient_checkpointing,
            "check_finite": self.check_finite,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """Build a layer from :meth:`get_config` output."""
        return cls(**config)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, filters={self.filters}, "
            f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}, "
            f"data_format={self.data_format!r}, boundary={self.boundary!r}"
        )

    # ------------------------------------------------------------------ state
    def reset_state(
        self, states: tuple[torch.Tensor, torch.Tensor] | Sequence[torch.Tensor] | None = None
    ) -> None:
        """Forget the carried state of a ``stateful`` layer, or set it to ``(h, c)``."""
        if states is None:
            self._states = None
            return
        h, c = self._check_state(states, None, None)
        self._states = (h.detach(), c.detach())

    reset_states = reset_state  # Keras 2 spelling

    def _to_internal(self, s: torch.Tensor) -> torch.Tensor:
        """External state layout (B, F, H, W) / (B, H, W, F) → the cell's internal one."""
        external_last = self.data_format == "channels_last"
        if external_last == self._internal_channels_last:
            return s
        return s.permute(0, 2, 3, 1) if self._internal_channels_last else s.permute(0, 3, 1, 2)

    def _to_external(self, s: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_to_internal` (works for (B, T, ...) sequences too)."""
        external_last = self.data_format == "channels_last"
        if external_last == self._internal_channels_last:
            return s
        if s.dim() == 4:
            return s.permute(0, 3, 1, 2) if self._internal_channels_last else s.permute(0, 2, 3, 1)
        return (
            s.permute(0, 1, 4, 2, 3) if self._internal_channels_last else s.permute(0, 1, 3, 4, 2)
        )

    def _external_state_shape(self, batch: int, out_hw: tuple[int, int]) -> tuple[int, ...]:
        if self.data_format == "channels_last":
            return (batch, *out_hw, self.filters)
        return (batch, self.filters, *out_hw)

    def _check_state(
        self, states: Sequence[torch.Tensor], batch: int | None, out_hw: tuple[int, int] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(states, (tuple, list)) or len(states) != 2:
            raise ValueError(
                f"initial_state must be a pair (h, c) of tensors, got {type(states).__name__}"
            )
        h, c = states
        if batch is not None and out_hw is not None:
            expected = self._external_state_shape(batch, out_hw)
            for name, s in (("h", h), ("c", c)):
                if tuple(s.shape) != expected:
                    raise ValueError(
                        f"initial_state {name} must have shape {expected} "
                        f"(data_format={self.data_format!r}), got {tuple(s.shape)}"
                    )
        return h, c

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 5:
            layout = (
                "(B, T, C, H, W)" if self.data_format == "channels_first" else "(B, T, H, W, C)"
            )
            raise ValueError(
                f"{type(self).__name__} expects a 5-D input {layout} "
                f"(data_format={self.data_format!r}), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
        dtype = self.recurrent_kernel.dtype  # every cell has one (uninitialised ones too)
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
            amp = x.dtype in (torch.bfloat16, torch.float16)
            raise TypeError(
                f"input dtype {x.dtype} does not match the layer's {dtype}: cast the input "
                f"(x.{_CAST.get(dtype, f'to({dtype})')}) or the layer "
                f"(layer.{_CAST.get(x.dtype, f'to({x.dtype})')})"
                + (", or run the layer under torch.autocast for mixed precision" if amp else "")
            )
        if self.data_format == "channels_last":
            x = x.permute(0, 1, 4, 2, 3)
        channels = x.shape[2]
        if self.in_channels is not None and channels != self.in_channels:
            axis = 2 if self.data_format == "channels_first" else 4
            raise ValueError(
                f"{type(self).__name__} was built for {self.in_channels} input channels but the "
                f"input has {channels} on axis {axis} (shape {tuple(x.shape)}, "
                f"data_format={self.data_format!r}); check data_format or in_channels"
            )
        if self.check_finite and not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(
                f"input holds {bad} NaN/inf values; fill them and pass a validity mask "
                "(faconvlstm.data.WindowDataset does this) or clean the data"
            )
        return x

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Validate ``x``, build the layer on first use; return (B, T, C, H, W) and (H', W')."""
        x = self._check_input(x)  # now (B, T, C, H, W), possibly a permuted view
        if self.in_channels is None:
            self._build_once(x.shape[2])
            self.to(device=x.device)
        if x.shape[1] < 1:
            raise ValueError("input has 0 time steps; need at least one")
        out_hw = self.output_size(x.shape[3], x.shape[4])
        if min(out_hw) < 1:
            raise ValueError(
                f"spatial size {tuple(x.shape[3:])} is too small for kernel_size="
                f"{self.kernel_size}, dilation_rate={self.dilation_rate}, "
                f"padding={self.padding!r}: the output grid would be {out_hw}; "
                "use padding='same' or a larger grid"
            )
        return x, out_hw

    def _input_masks(self, x: torch.Tensor, training: bool) -> list[torch.Tensor] | None:
        """Input dropout masks for the (B, T, C, H, W) input, shared over its steps."""
        if training and self.dropout > 0:
            return dropout_mask(x[:, 0], self.dropout, self._num_dropout_masks)
        return None

    def _recurrent_masks(self, h: torch.Tensor, training: bool) -> list[torch.Tensor] | None:
        if training and self.recurrent_dropout > 0:
            return dropout_mask(h, self.recurrent_dropout, self._num_dropout_masks)
        return None

    def _given_state(
        self, states: Sequence[torch.Tensor], xs: torch.Tensor, out_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A user's external ``(h, c)``, checked, in the internal layout and the input dtype."""
        h, c = self._check_state(states, xs.shape[1], out_hw)
        return self._to_internal(h.to(xs.dtype)), self._to_internal(c.to(xs.dtype))

    def _zero_state(
        self, xs: torch.Tensor, out_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._to_internal(xs.new_zeros(self._external_state_shape(xs.shape[1], out_hw)))
        return h, torch.zeros_like(h)

    def _carried_state(
        self, xs: torch.Tensor, out_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The state a ``stateful`` layer kept from its last call, checked against this one."""
        h, c = self._states  # type: ignore[misc]
        expected = self._external_state_shape(xs.shape[1], out_hw)
        if tuple(h.shape) != expected or h.dtype != xs.dtype or h.device != xs.device:
            raise ValueError(
                f"stateful layer carries a state of shape {tuple(h.shape)}, {h.dtype} on "
                f"{h.device} but this input needs {expected}, {xs.dtype} on {xs.device} "
                "(batch size, grid, dtype and device must stay fixed between calls); call "
                "reset_state() before feeding a new batch size, grid or dtype"
            )
        return self._to_internal(h), self._to_internal(c)

    def attends_at(self, step: int, last: bool) -> bool:
        """Whether step ``step`` (processing order, from 0) ends with attention; ``last``:
        it is the last step of the sequence. Never, for a layer without attention."""
        return False

    def _advance(
        self,
        xs_t: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        recurrent_masks: list[torch.Tensor] | None,
        t: int,
        last: bool,
        training: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``t`` of the recurrence (the layer's loop and the cells both call this)."""
        args = (xs_t, h, c, recurrent_masks, t, self.attends_at(t, last))
        if self.gradient_checkpointing and training and not self._recording():
            return checkpoint(self._step, *args, use_reentrant=False)
        return self._step(*args)

    def run_sequence(
        self,
        x: torch.Tensor,
        initial_state: Sequence[torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the loop and return everything: ``(sequence, last_output, h, c)``.

        ``sequence`` is (B, T, F, H', W') in the layer's data format (processing order),
        whatever ``return_sequences`` says; ``forward`` formats this per the flags.
        """
        x, out_hw = self._prepare(x)
        batch, steps = x.shape[:2]
        if mask is not None:
            if mask.shape != (batch, steps):
                raise ValueError(
                    f"mask must have shape (B, T) = {(batch, steps)}, got {tuple(mask.shape)}"
                )
            mask = mask.to(device=x.device, dtype=torch.bool)
        if self.go_backwards:
            x = x.flip(1)
            mask = mask.flip(1) if mask is not None else None

        training = self.training and torch.is_grad_enabled()
        xs = self._input_sequence(x, self._input_masks(x, training))
        if initial_state is not None:
            h, c = self._given_state(initial_state, xs, out_hw)
        elif self.stateful and self._states is not None:
            h, c = self._carried_state(xs, out_hw)
        else:
            h, c = self._zero_state(xs, out_hw)
        rec_masks = self._recurrent_masks(h, training)

        outputs = []
        prev_out = torch.zeros_like(h) if mask is not None else None
        out = h
        # unbind, not xs[t]: the backward of T selects writes T zero-filled copies of the
        # whole sequence gradient (O(T²) memory traffic, half of ConvLSTM's step at the
        # demo's size); unbind's backward is one stack
        for t, xs_t in enumerate(xs.unbind(0)):
            h_new, c_new = self._advance(xs_t, h, c, rec_masks, t, t == steps - 1, training)
            if mask is not None:
                valid = mask[:, t].view(batch, 1, 1, 1)
                out = torch.where(valid, h_new, prev_out)
                h = torch.where(valid, h_new, h)
                c = torch.where(valid, c_new, c)
                prev_out = out
            else:
                out = h = h_new
                c = c_new
            outputs.append(out)
        if self.stateful:
            self._states = (self._to_external(h).detach(), self._to_external(c).detach())
        sequence = self._to_external(torch.stack(outputs, dim=1))
        return sequence, self._to_external(out), self._to_external(h), self._to_external(c)

    def _recording(self) -> bool:
        return False

    def forward(
        self,
        x: torch.Tensor,
        initial_state: Sequence[torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the layer; see the class docstring for shapes and semantics."""
        sequence, last, h, c = self.run_sequence(x, initial_state, mask)
        output = sequence if self.return_sequences else last
        if self.return_state:
            return output, h, c
        return output


def glorot_uniform_(weight: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """Keras' ``glorot_uniform``: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)
