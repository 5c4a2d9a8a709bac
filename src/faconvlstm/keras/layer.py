"""``FAConvLSTM2D`` as a Keras 3 layer: a drop-in replacement for ``keras.layers.ConvLSTM2D``.

Written with ``keras.ops`` only (no backend-specific code), so it runs on the TensorFlow, JAX
and PyTorch backends. The PyTorch :class:`faconvlstm.FAConvLSTM2D` stays the reference:
weights convert both ways (:meth:`FAConvLSTM2D.to_torch`, :meth:`FAConvLSTM2D.from_torch`)
and the outputs agree within 1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from faconvlstm._optional import require
from faconvlstm.keras.cell import FAConvLSTM2DCell


def _same_shape(got: tuple, expected: tuple) -> bool:
    """Same rank and equal sizes wherever both are known (None = unknown at trace time)."""
    return len(got) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(got, expected)
    )


def _cell_property(name: str) -> property:
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's ``{name}``.")


@keras.saving.register_keras_serializable(package="faconvlstm")
class FAConvLSTM2D(keras.layers.RNN):
    r"""Factorized-Attention ConvLSTM, a drop-in replacement for ``keras.layers.ConvLSTM2D``.

    Same constructor arguments, defaults, shapes and call semantics as
    ``keras.layers.ConvLSTM2D`` (channels-last default, ``padding="valid"``,
    initializers/regularizers/constraints, ``seed``, masks, ``stateful``, ``go_backwards``,
    ``return_sequences`` / ``return_state``, ``unroll``, ``Bidirectional`` and
    ``TimeDistributed`` compatible), plus the FA arguments. One step, with r the bottleneck
    width and :math:`\star` a convolution with the layer's strides, padding and dilation:

    .. math::
        b &= W_x \star x_t + h_{t-1} U_h \\
        m &= \textstyle\sum_{d} \mathrm{DWConv}_{k,d}(b) \\
        m &\leftarrow m \odot \sigma\big(\mathrm{ReLU}(\mathrm{GAP}(m) W_1 + b_1) W_2 + b_2\big) \\
        [z_i, z_f, z_c, z_o] &= m E + b_g \\
        i = \sigma(z_i + p_i \odot c_{t-1}),\ f &= \sigma(z_f + p_f \odot c_{t-1}),\
            c_t = f \odot c_{t-1} + i \odot \tanh(z_c) \\
        o = \sigma(z_o + p_o \odot c_t),\ h_t &= o \odot \tanh(c_t) \\
        h_t &\leftarrow h_t + \gamma\, W_o\big(\mathrm{RowAttn}(h_t) + \mathrm{ColAttn}(h_t)\big)
            \quad \text{on attention steps}

    (:math:`\sigma` is ``recurrent_activation``, :math:`\tanh` is ``activation``.) The
    attended :math:`h_t` is what the next step sees; :math:`\gamma` starts at 0, so an
    untrained layer is a plain factorized ConvLSTM. See :class:`faconvlstm.FAConvLSTM2D` and
    docs/design.md §2.2 for the design.

    The time loop. Attention runs on the steps t (processing order, 0-based) with
    ``(t + 1) % attention_every == 0`` and on the last step, which a Keras RNN cell cannot
    know (it sees neither t nor T). So the layer runs its own loop with ``keras.ops.scan``
    (on the torch backend a Python loop over the unbound steps, :meth:`_scan`)
    over the steps (carry ``(h, c, previous output)``), the attention under ``keras.ops.cond``
    on a schedule computed from T, and reproduces ``keras.layers.RNN``'s semantics exactly:
    ``go_backwards`` reverses the inputs and the mask (outputs stay in processing order);
    where the mask is False, h and c are carried over and the output repeats the previous
    one (zeros with ``zero_output_for_mask``, which ``Bidirectional`` switches on when
    returning sequences); the attention schedule counts masked steps too, as the PyTorch
    layer does; ``stateful`` states live in ``layer.states`` and ``reset_state()`` clears
    them. The input convolution of all steps runs at once before the loop.

    Args:
        filters: int, the number of output filters F (hidden channels).
        kernel_size: int or tuple/list of 2 ints, the convolution window; used by the input
            half of the bottleneck and by every depthwise branch.
        strides: int or tuple/list of 2 ints, strides of the input convolution. ``strides >
            1`` is incompatible with ``dilation_rate > 1``.
        padding: ``"valid"`` (default) or ``"same"`` (case-insensitive), padding of the
            input convolution; ``"same"`` is TensorFlow-style (extra pixel at the
            bottom/right). The recurrent path and the depthwise branches always keep the grid.
        data_format: ``"channels_last"`` (inputs (B, T, H, W, C)) or ``"channels_first"``
            ((B, T, C, H, W)); default: ``keras.config.image_data_format()``.
        dilation_rate: int or tuple/list of 2 ints, dilation of the input convolution.
        activation: activation of the candidate and of the cell output (``"tanh"``).
        recurrent_activation: activation of the gates (``"sigmoid"``).
        use_bias: whether the gates have a bias.
        kernel_initializer: initializer of ``kernel`` :math:`W_x` (``"glorot_uniform"``).
        recurrent_initializer: initializer of ``recurrent_kernel`` :math:`U_h`
            (``"orthogonal"``).
        bias_initializer: initializer of the gate bias (``"zeros"``).
        unit_forget_bias: if True, the forget-gate bias starts at 1 (the rest from
            ``bias_initializer``).
        kernel_regularizer: regularizer of ``kernel``.
        recurrent_regularizer: regularizer of ``recurrent_kernel``.
        bias_regularizer: regularizer of the gate bias.
        activity_regularizer: regularizer of the layer output.
        kernel_constraint: constraint of ``kernel``.
        recurrent_constraint: constraint of ``recurrent_kernel``.
        bias_constraint: constraint of the gate bias.
        dropout: float in [0, 1), fraction of the input units to drop (training only).
        recurrent_dropout: float in [0, 1), fraction of the units of :math:`h_{t-1}` to drop.
            Both draw one mask per call, shared over time (not four as in ConvLSTM2D: the
            gates share one bottleneck).
        seed: random seed for dropout.
        return_sequences: return the whole output sequence instead of the last output.
        return_state: also return the last state: the call returns ``[output, h, c]``.
        go_backwards: process the sequence backwards and return the reversed sequence.
        stateful: the last state of each sample of a batch is the initial state of the same
            sample in the next batch (static batch size needed), until ``reset_state()``.
        bottleneck: r, width of the bottleneck, default ``max(8, filters // 4)``.
        dilation_rates: one depthwise branch per rate, default (1, 2, 4).
        se_ratio: squeeze-and-excitation reduction; 0 disables it.
        peephole: per-channel peephole weights :math:`p_i, p_f, p_o` (zero-initialised).
        attention_every: attention after steps k−1, 2k−1, … and the last step; 0 disables it.
        attention_heads: number of heads n of the axial attention.
        attention_dim: width d of each head, default ``max(16, filters // 4)``.
        boundary: ``"zeros"`` (Keras) or ``"periodic_lon"`` (width wraps around the globe,
            zero padding at the poles; needs ``padding="same"``) for every spatial op.
        depthwise_initializer: initializer of ``depthwise_kernel``; default ``None`` is
            U(±1/√(n·kh·kw)) (PyTorch's Conv2d default per branch, scaled by 1/√n).
        depthwise_regularizer: regularizer of ``depthwise_kernel``.
        depthwise_constraint: constraint of ``depthwise_kernel``.
        expansion_initializer: initializer of the 1×1 expansion E (``"glorot_uniform"``).
        expansion_regularizer: regularizer of the expansion.
        expansion_constraint: constraint of the expansion.
        fused: on the PyTorch backend with the default activations, run each step with the
            PyTorch layer's kernels (the fused expansion + gate update of
            :func:`faconvlstm.layers.fused_gates.lstm_gates`, ``F.conv2d`` on channels-last
            views); False runs the plain ``keras.ops`` step, the reference. Same equations
            either way; other backends always run ``keras.ops``. Configs without the key
            load with the default (True).
        **kwargs: ``keras.layers.RNN`` / ``Layer`` arguments (``unroll``,
            ``zero_output_for_mask``, ``name``, ``dtype``, ``trainable``).

    Call arguments:
        sequences: a 5-D tensor, see *Input shape*.
        initial_state: list ``[h, c]`` of initial states, each of the last-output shape.
        mask: (B, T) boolean tensor; False marks a step to skip. A (B, T, H, W) mask (from
            ``keras.layers.Masking`` on channels-last data) masks pixels, as in ConvLSTM2D.
        training: whether dropout applies.

    Input shape:
        (B, T, H, W, C) for ``channels_last``; (B, T, C, H, W) for ``channels_first``.
        H and W must be static.

    Output shape:
        With ``return_sequences``: (B, T, H', W', F) (``channels_last``) or
        (B, T, F, H', W'); else (B, H', W', F) or (B, F, H', W'); with ``return_state``,
        ``[output, h, c]``, h and c of the last-output shape. H' = ceil(H / sh) for
        ``"same"`` and (H − (kh − 1)·dh − 1) // sh + 1 for ``"valid"``; likewise W'.

    Example::

        >>> layer = FAConvLSTM2D(16, 3, padding="same", return_sequences=True)
        >>> tuple(layer(np.zeros((2, 6, 32, 64, 3), "float32")).shape)
        (2, 6, 32, 64, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        *,
        bottleneck: int | None = None,
        dilation_rates: Sequence[int] = (1, 2, 4),
        se_ratio: int = 4,
        peephole: bool = True,
        attention_every: int = 4,
        attention_heads: int = 1,
        attention_dim: int | None = None,
        boundary: str = "zeros",
        depthwise_initializer: Any = None,
        depthwise_regularizer: Any = None,
        depthwise_constraint: Any = None,
        expansion_initializer: Any = "glorot_uniform",
        expansion_regularizer: Any = None,
        expansion_constraint: Any = None,
        fused: bool = True,
        **kwargs: Any,
    ) -> None:
        cell = FAConvLSTM2DCell(
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            bottleneck=bottleneck,
            dilation_rates=dilation_rates,
            se_ratio=se_ratio,
            peephole=peephole,
            attention_every=attention_every,
            attention_heads=attention_heads,
            attention_dim=attention_dim,
            boundary=boundary,
            depthwise_initializer=depthwise_initializer,
            depthwise_regularizer=depthwise_regularizer,
            depthwise_constraint=depthwise_constraint,
            expansion_initializer=expansion_initializer,
            expansion_regularizer=expansion_regularizer,
            expansion_constraint=expansion_constraint,
            fused=fused,
            name="fa_conv_lstm_cell",
            dtype=kwargs.get("dtype"),
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, sequences_shape: Sequence[int | None], initial_state_shape: Any = None) -> None:
        """Build the cell for frames of ``sequences_shape`` (B, T, …) and pin the channels.

        Keras' ConvLSTM2D refuses another channel count through its cell's ``InputSpec``;
        this layer does not call its cell per step, so its own ``InputSpec`` fixes the
        channel axis (2 for ``channels_first``, -1 for ``channels_last``). The grid stays
        free: the same layer runs on any H × W.
        """
        super().build(sequences_shape, initial_state_shape)
        channel_axis = 2 if self.cell.data_format == "channels_first" else -1
        self.input_spec = keras.layers.InputSpec(ndim=5, axes={channel_axis: self.cell.input_dim})

    # ------------------------------------------------------------------ the time loop
    def _attention_schedule(self, steps: Any) -> Any:
        """Boolean (T,): attend after step t iff (t + 1) % k == 0 or t is the last step."""
        t = ops.arange(steps)
        return ops.logical_or(
            ops.equal(ops.mod(t + 1, self.cell.attention_every), 0), ops.equal(t, steps - 1)
        )

    def _scan(self, step: Any, init: tuple, inputs: dict[str, Any]) -> tuple[Any, Any]:
        """``keras.ops.scan(step, init, inputs)``, with the stacked per-step outputs.

        On the torch backend the time loop is a Python loop over ``torch.unbind`` views:
        Keras' torch ``scan`` indexes each input at every step (``x[t]``), and the backward
        of every such index writes a zero-filled gradient of the whole (T, B, H', W', r)
        sequence, T times over; unbinding has one backward for all steps. Same results."""
        if keras.backend.backend() != "torch":
            return ops.scan(step, init, inputs, unroll=self.unroll)
        import torch

        columns = {key: torch.unbind(value, 0) for key, value in inputs.items()}
        carry, outputs = init, []
        for t in range(len(columns["x"])):
            carry, out = step(carry, {key: value[t] for key, value in columns.items()})
            outputs.append(out)
        return carry, torch.stack(outputs)

    def _check_mask(self, mask: Any, x: Any) -> Any:
        """The boolean mask, checked against the channels-last sequence ``x`` (B, T, H, W, C).

        A (B, T) step mask, or, for channels-last data, the (B, T, H', W') pixel mask of an
        upstream ``keras.layers.Masking`` (which ConvLSTM2D applies per pixel of the output
        grid; H', W' = H, W for ``padding="same"`` and strides 1). Any other shape is
        refused: a (B, 7) mask on T = 5 steps would otherwise be cut or broadcast silently.
        Dimensions unknown at trace time (None) are not compared.
        """
        mask = ops.cast(mask, "bool")
        got = tuple(mask.shape)
        step_shape = tuple(x.shape[:2])
        channels_last = self.cell.data_format == "channels_last"
        if _same_shape(got, step_shape):
            return mask
        pixel_shape = (*step_shape, *self.cell.output_spatial_dims(*x.shape[2:4]))
        if channels_last and _same_shape(got, pixel_shape):
            return mask
        expected = f"(batch, time) = {step_shape}"
        if channels_last:
            expected += (
                f", or the (batch, time, rows, cols) = {pixel_shape} pixel mask of a "
                "keras.layers.Masking layer on the output grid"
            )
        else:
            expected += " (a per-pixel mask needs data_format='channels_last')"
        raise ValueError(f"mask must be {expected} to match the input sequences; got {got}")

    def call(
        self,
        sequences: Any,
        initial_state: Sequence[Any] | None = None,
        mask: Any = None,
        training: bool = False,
    ) -> Any:
        """Run the layer; see the class docstring for arguments, shapes and semantics."""
        cell = self.cell
        x = cell.to_internal_sequence(sequences)  # (B, T, H, W, C)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = self._check_mask(mask, x)
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        expected = self._expected_batch_size
        if self.stateful and None not in (expected, x.shape[0]) and x.shape[0] != expected:
            raise ValueError(
                f"If an RNN is stateful, the batch size of the input sequences must be the "
                f"same as the batch size of the initial state. Expected batch size: "
                f"{expected}, received: {x.shape[0]}"
            )
        if initial_state is None and self.stateful:
            initial_state = self.states
        if initial_state is not None:
            if len(initial_state) != 2:
                raise ValueError(
                    f"initial_state must be a list [h, c] of two tensors, got {initial_state!r}"
                )
            # a copy, so that assigning the new stateful state cannot overwrite a tensor that
            # autograd keeps for backward (as keras.layers.RNN does on the torch backend)
            h0, c0 = (
                cell.to_internal(ops.copy(ops.convert_to_tensor(s, dtype=cell.compute_dtype)))
                for s in initial_state
            )
        else:  # zeros on the grid of this input: no H×W is baked into the layer
            out_hw = cell.output_spatial_dims(*x.shape[2:4])
            h0 = ops.zeros((batch, *out_hw, cell.filters), dtype=cell.compute_dtype)
            c0 = ops.zeros_like(h0)
        in_mask, rec_mask = cell.dropout_masks(x[:, 0], h0, training)
        if in_mask is not None:
            x = x * ops.expand_dims(in_mask, 1)
        xs = cell.input_sequence(x)  # (B, T, H', W', r)
        if self.go_backwards:
            xs = ops.flip(xs, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        inputs = {"x": ops.moveaxis(xs, 1, 0)}  # time major
        if cell.attention_every > 0:
            inputs["attend"] = self._attention_schedule(steps)
        if mask is not None:
            inputs["valid"] = ops.moveaxis(mask, 1, 0)
        zeros = ops.zeros_like(h0)

        def step(carry, inp):
            h, c, prev_out = carry
            h_new, c_new = cell.step(inp["x"], h, c, rec_mask, inp.get("attend", False))
            if "valid" in inp:
                valid = inp["valid"]  # (B,) or (B, H', W')
                while len(valid.shape) < 4:
                    valid = ops.expand_dims(valid, -1)
                out = ops.where(valid, h_new, zeros if self.zero_output_for_mask else prev_out)
                carry = (ops.where(valid, h_new, h), ops.where(valid, c_new, c), out)
            else:
                carry = (h_new, c_new, h_new)
            # Keras' TensorFlow scan needs per-step outputs shaped like the carry; elsewhere
            # only the output is stacked (stacking h and c too cost two (T, B, H', W', F)
            # copies per call on the torch backend)
            return carry, (carry if tensorflow else carry[2])

        tensorflow = keras.backend.backend() == "tensorflow"
        (h, c, last), outputs = self._scan(step, (h0, c0, zeros), inputs)
        if tensorflow:
            outputs = outputs[2]
        h, c = cell.to_external(h), cell.to_external(c)
        if self.stateful:
            for variable, value in zip(self.states, (h, c)):
                variable.assign(value)
        if self.return_sequences:
            output = cell.to_external(ops.moveaxis(outputs, 0, 1))
        else:
            output = cell.to_external(last)
        output = ops.cast(output, self.compute_dtype)
        if self.return_state:
            return output, ops.cast(h, self.compute_dtype), ops.cast(c, self.compute_dtype)
        return output

    # ------------------------------------------------------------------ shapes
    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch_size, steps = sequences_shape[0], sequences_shape[1]
        step_shape = (batch_size, *sequences_shape[2:])
        state_shape = self.cell.compute_output_shape(step_shape)[0][1:]
        if self.return_sequences:
            output_shape = (batch_size, steps, *state_shape)
        else:
            output_shape = (batch_size, *state_shape)
        if self.return_state:
            batched_state_shape = (batch_size, *state_shape)
            return output_shape, batched_state_shape, batched_state_shape
        return output_shape

    def compute_mask(self, _, mask):
        mask = keras.tree.flatten(mask)[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None, None]
        return output_mask

    # ------------------------------------------------------------------ configuration
    filters = _cell_property("filters")
    kernel_size = _cell_property("kernel_size")
    strides = _cell_property("strides")
    padding = _cell_property("padding")
    data_format = _cell_property("data_format")
    dilation_rate = _cell_property("dilation_rate")
    activation = _cell_property("activation")
    recurrent_activation = _cell_property("recurrent_activation")
    use_bias = _cell_property("use_bias")
    kernel_initializer = _cell_property("kernel_initializer")
    recurrent_initializer = _cell_property("recurrent_initializer")
    bias_initializer = _cell_property("bias_initializer")
    unit_forget_bias = _cell_property("unit_forget_bias")
    kernel_regularizer = _cell_property("kernel_regularizer")
    recurrent_regularizer = _cell_property("recurrent_regularizer")
    bias_regularizer = _cell_property("bias_regularizer")
    kernel_constraint = _cell_property("kernel_constraint")
    recurrent_constraint = _cell_property("recurrent_constraint")
    bias_constraint = _cell_property("bias_constraint")
    dropout = _cell_property("dropout")
    recurrent_dropout = _cell_property("recurrent_dropout")
    bottleneck = _cell_property("bottleneck")
    dilation_rates = _cell_property("dilation_rates")
    se_ratio = _cell_property("se_ratio")
    peephole = _cell_property("peephole")
    attention_every = _cell_property("attention_every")
    attention_heads = _cell_property("attention_heads")
    attention_dim = _cell_property("attention_dim")
    boundary = _cell_property("boundary")
    fused = _cell_property("fused")

    def get_config(self) -> dict[str, Any]:
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        base_config = super().get_config()
        del base_config["cell"]
        return {
            **base_config,
            **cell_config,
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FAConvLSTM2D:
        return cls(**config)

    # ------------------------------------------------------------------ PyTorch
    def to_torch(self, **overrides: Any):
        """An equivalent :class:`faconvlstm.FAConvLSTM2D` (PyTorch) with these weights.

        The configuration, Keras' ``data_format`` included, is kept, so the same array gives
        the same output; ``overrides`` replace constructor arguments of the PyTorch layer
        (e.g. ``data_format="channels_first"``). The layer must be built.
        """
        require("torch", "torch")  # PyTorch is imported here only, not with the layer
        from faconvlstm.keras.convert import keras_to_torch

        return keras_to_torch(self, **overrides)

    @classmethod
    def from_torch(cls, module, **overrides: Any) -> FAConvLSTM2D:
        """A built Keras layer equivalent to the PyTorch :class:`faconvlstm.FAConvLSTM2D`.

        The PyTorch layer's ``data_format`` is kept (its default is ``channels_first``);
        ``overrides`` replace constructor arguments (e.g. ``data_format="channels_last"``).
        The module must be built (``in_channels`` given or one forward run).
        """
        require("torch", "torch")
        from faconvlstm.keras.convert import torch_to_keras

        return torch_to_keras(module, cls, **overrides)
