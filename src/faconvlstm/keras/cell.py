r"""The FAConvLSTM2D cell in ``keras.ops``: one step of the factorized-attention ConvLSTM.

This is :mod:`faconvlstm.layers.faconvlstm` (the PyTorch reference) written with
``keras.ops`` only, so it runs on the TensorFlow, JAX and PyTorch backends. Compare it line
by line with the PyTorch step; the equations are the same:

.. math::
    b &= W_x \star x_t + h_{t-1} U_h
        && W_x\ k{\times}k\ (C \to r),\ U_h\ 1{\times}1\ (F \to r) \\
    m &= \textstyle\sum_{d} \mathrm{DWConv}_{k,d}(b)
        && \text{shared multi-scale depthwise mixing, "same" padding} \\
    m &\leftarrow m \odot \sigma\big(\mathrm{ReLU}(\mathrm{GAP}(m) W_1 + b_1) W_2 + b_2\big)
        && \text{squeeze-and-excitation} \\
    [z_i, z_f, z_c, z_o] &= m E + b_g
        && 1{\times}1 \text{ expansion } (r \to 4F) \\
    i = \sigma(z_i + p_i \odot c_{t-1}),\ f &= \sigma(z_f + p_f \odot c_{t-1}),\
        c_t = f \odot c_{t-1} + i \odot \tanh(z_c) \\
    o = \sigma(z_o + p_o \odot c_t),\ h_t &= o \odot \tanh(c_t) \\
    h_t &\leftarrow h_t + \gamma\, W_o\big(\mathrm{RowAttn}(h_t) + \mathrm{ColAttn}(h_t)\big)
        && \text{on attention steps}

Internally every map is channels last, (B, H, W, channels); the layer converts
``channels_first`` data at its boundary. Weights follow Keras layouts (kernels HWIO, dense
kernels (in, out)); :mod:`faconvlstm.keras.convert` maps them to and from PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import activations, constraints, initializers, ops, regularizers

from faconvlstm.geometry import Pads, check_boundary, conv_output_size, conv_pads, to_pair


def pad_grid(x: Any, pads: Pads, boundary: str) -> Any:
    """Pad a channels-last map (B, H, W, C) by ``pads`` = (top, bottom, left, right).

    ``boundary="periodic_lon"`` wraps the width (longitude) axis and zero-pads the height
    (latitude); ``"zeros"`` zero-pads both, as TensorFlow's "same" does. Mirrors
    :func:`faconvlstm.layers.boundary.pad2d`.
    """
    top, bottom, left, right = pads
    if boundary == "periodic_lon" and (left or right):
        width = x.shape[2]
        if left > width or right > width:
            raise ValueError(
                f"periodic_lon padding of ({left}, {right}) exceeds the longitude size {width}; "
                "use a smaller kernel/dilation or a wider grid"
            )
        x = ops.concatenate([x[:, :, width - left :], x, x[:, :, :right]], axis=2)
        left = right = 0
    if top or bottom or left or right:
        x = ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    return x


def _linear_bias_initializer(fan_in: int) -> keras.initializers.Initializer:
    """U(±1/√fan_in), PyTorch's ``nn.Linear`` bias default."""
    bound = 1.0 / math.sqrt(fan_in)
    return initializers.RandomUniform(-bound, bound)


def _linear_kernel_initializer() -> keras.initializers.Initializer:
    """U(±1/√fan_in), PyTorch's ``nn.Linear`` weight default, for a (in, out) kernel."""
    return initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


class FAConvLSTM2DCell(keras.layers.Layer):
    """Cell of :class:`faconvlstm.keras.FAConvLSTM2D`: weights and one recurrence step.

    The cell is driven by :class:`~faconvlstm.keras.FAConvLSTM2D`, which runs the input
    convolution of all steps at once (:meth:`input_sequence`), draws the dropout masks and
    tells each :meth:`step` whether it is an attention step (that needs the step index and
    the sequence length, which a Keras cell does not see). :meth:`call` runs one whole step
    from a single frame, as Keras' ``ConvLSTMCell.call`` does, for use outside the layer.

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
        recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint, dropout,
        recurrent_dropout, seed, bottleneck, dilation_rates, se_ratio, peephole,
        attention_every, attention_heads, attention_dim, boundary, depthwise_initializer,
        depthwise_regularizer, depthwise_constraint, expansion_initializer,
        expansion_regularizer, expansion_constraint, fused: as documented on
        :class:`~faconvlstm.keras.FAConvLSTM2D`.

    The fused path (``fused=True`` on the PyTorch backend with the default tanh / sigmoid
    activations, see :attr:`uses_fused`) runs the step with the PyTorch layer's kernels:
    the 1×1 expansion and the peephole LSTM update in
    :func:`faconvlstm.layers.fused_gates.lstm_gates`, the convolutions as ``F.conv2d`` on
    channels-last views (no per-step transposes or pad copies). It computes the same
    equations as the ``keras.ops`` path (``fused=False``), which stays the reference and
    is what every other backend runs.

    Weights (Keras layouts; n = number of dilation rates, h = SE width):
        ``kernel`` (kh, kw, C, r), ``recurrent_kernel`` (F, r), ``depthwise_kernel``
        (n, kh, kw, r, 1), ``se_kernel_1`` (r, h), ``se_bias_1`` (h,), ``se_kernel_2``
        (h, r), ``se_bias_2`` (r,), ``expansion`` (r, 4F), ``bias`` (4F,), ``peephole``
        (3, F), ``qkv_kernel`` (F, 3·heads·dim), ``qkv_bias``, ``proj_kernel``
        (heads·dim, F), ``proj_bias`` (F,), ``gamma`` ().
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
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
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
        super().__init__(**kwargs)
        self.fused = bool(fused)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.strides = to_pair(strides, "strides")
        self.dilation_rate = to_pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        self.boundary = check_boundary(boundary)
        if boundary == "periodic_lon" and self.padding == "valid" and self.kernel_size[1] > 1:
            raise ValueError(
                "boundary='periodic_lon' needs padding='same' (a periodic longitude axis has "
                "no edge to crop); use padding='same' or boundary='zeros'"
            )
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_initializer = (
            None if depthwise_initializer is None else initializers.get(depthwise_initializer)
        )
        self.expansion_initializer = initializers.get(expansion_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.expansion_regularizer = regularizers.get(expansion_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.expansion_constraint = constraints.get(expansion_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

        r = max(8, filters // 4) if bottleneck is None else bottleneck
        for name, value, low in (
            ("bottleneck", r, 1),
            ("se_ratio", se_ratio, 0),
            ("attention_every", attention_every, 0),
            ("attention_heads", attention_heads, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.bottleneck = r
        self.dilation_rates = tuple(int(d) for d in dilation_rates)
        if not self.dilation_rates or min(self.dilation_rates) < 1:
            raise ValueError(
                f"dilation_rates must be a non-empty sequence of ints >= 1, got {dilation_rates!r}"
            )
        self.se_ratio = se_ratio
        self.peephole = bool(peephole)
        self.attention_every = attention_every
        self.attention_heads = attention_heads
        self.attention_dim = max(16, filters // 4) if attention_dim is None else int(attention_dim)
        if self.attention_dim < 1:
            raise ValueError(f"attention_dim must be >= 1, got {attention_dim!r}")
        self.state_size = -1  # states are (B, H', W', F) maps, see get_initial_state

    # ------------------------------------------------------------------ weights
    def build(self, inputs_shape: Sequence[int | None], states_shape: Any = None) -> None:
        """Create the weights for one frame of shape (B, H, W, C) or (B, C, H, W)."""
        if self.data_format == "channels_first":
            channels, self.spatial_dims = inputs_shape[1], tuple(inputs_shape[2:])
        else:
            channels, self.spatial_dims = inputs_shape[-1], tuple(inputs_shape[1:-1])
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs should be defined. Found None. "
                f"Full input shape received: input_shape={inputs_shape}"
            )
        self.input_dim = int(channels)
        # as Keras' ConvLSTMCell: a frame of another channel count is refused (the grid is
        # free); on the PyTorch backend it would run as a grouped convolution
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={1 if self.data_format == "channels_first" else -1: self.input_dim}
        )
        F_, r, (kh, kw) = self.filters, self.bottleneck, self.kernel_size
        n = len(self.dilation_rates)
        self.kernel = self.add_weight(
            shape=(kh, kw, self.input_dim, r),
            initializer=self.kernel_initializer,
            name="kernel",
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(F_, r),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        # PyTorch's Conv2d default per branch, U(±1/√(kh·kw)), scaled by 1/√n so the sum of
        # the n branches has the variance of one branch.
        bound = 1.0 / math.sqrt(n * kh * kw)
        self.depthwise_kernel = self.add_weight(
            shape=(n, kh, kw, r, 1),
            initializer=self.depthwise_initializer or initializers.RandomUniform(-bound, bound),
            name="depthwise_kernel",
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        if self.se_ratio > 0:
            hidden = max(1, r // self.se_ratio)
            self.se_kernel_1 = self.add_weight(
                shape=(r, hidden), initializer=_linear_kernel_initializer(), name="se_kernel_1"
            )
            self.se_bias_1 = self.add_weight(
                shape=(hidden,), initializer=_linear_bias_initializer(r), name="se_bias_1"
            )
            self.se_kernel_2 = self.add_weight(
                shape=(hidden, r), initializer=_linear_kernel_initializer(), name="se_kernel_2"
            )
            self.se_bias_2 = self.add_weight(
                shape=(r,), initializer=_linear_bias_initializer(hidden), name="se_bias_2"
            )
        self.expansion = self.add_weight(
            shape=(r, 4 * F_),
            initializer=self.expansion_initializer,
            name="expansion",
            regularizer=self.expansion_regularizer,
            constraint=self.expansion_constraint,
        )
        self.bias = None
        if self.use_bias:
            bias_initializer = self.bias_initializer
            if self.unit_forget_bias:

                def bias_initializer(_, *args, **kwargs):
                    return ops.concatenate(
                        [
                            self.bias_initializer((F_,), *args, **kwargs),
                            initializers.get("ones")((F_,), *args, **kwargs),
                            self.bias_initializer((2 * F_,), *args, **kwargs),
                        ]
                    )

            self.bias = self.add_weight(
                shape=(4 * F_,),
                initializer=bias_initializer,
                name="bias",
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.peephole_weight = None
        if self.peephole:
            self.peephole_weight = self.add_weight(
                shape=(3, F_), initializer="zeros", name="peephole"
            )
        if self.attention_every > 0:
            width = self.attention_heads * self.attention_dim
            self.qkv_kernel = self.add_weight(
                shape=(F_, 3 * width), initializer=_linear_kernel_initializer(), name="qkv_kernel"
            )
            self.qkv_bias = self.add_weight(
                shape=(3 * width,), initializer=_linear_bias_initializer(F_), name="qkv_bias"
            )
            self.proj_kernel = self.add_weight(
                shape=(width, F_), initializer=_linear_kernel_initializer(), name="proj_kernel"
            )
            self.proj_bias = self.add_weight(
                shape=(F_,), initializer=_linear_bias_initializer(width), name="proj_bias"
            )
            self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    # ------------------------------------------------------------------ shapes and states
    def output_spatial_dims(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the output for an (H, W) input grid (Keras' shape formula)."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        return (
            conv_output_size(height, kh, sh, dh, self.padding),
            conv_output_size(width, kw, sw, dw, self.padding),
        )

    def compute_output_shape(self, inputs_shape, states_shape=None):
        """Shape of h (and of each state) for one frame of ``inputs_shape``."""
        if self.data_format == "channels_first":
            out = (inputs_shape[0], self.filters, *self.output_spatial_dims(*inputs_shape[2:]))
        else:
            out = (inputs_shape[0], *self.output_spatial_dims(*inputs_shape[1:3]), self.filters)
        return out, [out, out]

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        """Zero ``[h, c]`` in the layer's data format, for the grid the cell was built on."""
        if None in self.spatial_dims:
            raise ValueError(
                "a stateful FAConvLSTM2D needs static spatial dimensions, as ConvLSTM2D; "
                f"the layer was built for frames of spatial shape {self.spatial_dims}"
            )
        hw = self.output_spatial_dims(*self.spatial_dims)
        if self.data_format == "channels_first":
            shape = (batch_size, self.filters, *hw)
        else:
            shape = (batch_size, *hw, self.filters)
        return [ops.zeros(shape, dtype=self.compute_dtype) for _ in range(2)]

    def to_internal(self, s: Any) -> Any:
        """A (B, F, H, W) or (B, H, W, F) map in the data format → channels last."""
        return ops.transpose(s, (0, 2, 3, 1)) if self.data_format == "channels_first" else s

    def to_internal_sequence(self, x: Any) -> Any:
        """A (B, T, C, H, W) or (B, T, H, W, C) sequence in the data format → channels last."""
        return ops.transpose(x, (0, 1, 3, 4, 2)) if self.data_format == "channels_first" else x

    def to_external(self, s: Any) -> Any:
        """Inverse of :meth:`to_internal`; also takes (B, T, H, W, F) sequences."""
        if self.data_format != "channels_first":
            return s
        return ops.transpose(s, (0, 3, 1, 2) if len(s.shape) == 4 else (0, 1, 4, 2, 3))

    def dropout_masks(self, frame: Any, h: Any, training: bool) -> tuple[Any, Any]:
        """One input mask shaped like ``frame`` and one recurrent mask shaped like ``h``.

        Inverted dropout (kept units scaled by 1 / (1 - rate)), drawn once per call and
        shared over time; one mask each, not four, because the gates share one bottleneck.
        ``None`` where the rate is 0 or not ``training``.
        """
        in_mask = rec_mask = None
        if training and 0.0 < self.dropout < 1.0:
            in_mask = keras.random.dropout(
                ops.ones_like(frame), rate=self.dropout, seed=self.seed_generator
            )
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec_mask = keras.random.dropout(
                ops.ones_like(h), rate=self.recurrent_dropout, seed=self.seed_generator
            )
        return in_mask, rec_mask

    # ------------------------------------------------------------------ the step
    def _conv_input(self, frames: Any) -> Any:
        """W_x ⋆ frames: (N, H, W, C) → (N, H', W', r), the layer's padding and strides."""
        pads = conv_pads(
            frames.shape[1:3], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        return ops.conv(
            pad_grid(frames, pads, self.boundary),
            self.kernel,
            strides=self.strides,
            padding="valid",
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )

    def input_sequence(self, x: Any) -> Any:
        """W_x ⋆ x_t for all steps at once: (B, T, H, W, C) → (B, T, H', W', r)."""
        steps, (height, width, channels) = ops.shape(x)[1], x.shape[2:]
        frames = ops.reshape(x, (-1, height, width, channels))
        if self.uses_fused:
            z = self._conv_input_torch(frames)
        else:
            z = self._conv_input(frames)
        return ops.reshape(z, (-1, steps, *z.shape[1:]))

    @property
    def uses_fused(self) -> bool:
        """Whether :meth:`step` takes the fused PyTorch path: ``fused`` is True, the backend
        is torch and the activations are the defaults (tanh, sigmoid) the kernel hard-codes."""
        return (
            self.fused
            and keras.backend.backend() == "torch"
            and activations.serialize(self.activation) == "tanh"
            and activations.serialize(self.recurrent_activation) == "sigmoid"
        )

    def _conv_input_torch(self, frames: Any) -> Any:
        """:meth:`_conv_input` with ``F.conv2d``: (N, H, W, C) → (N, H', W', r), contiguous.

        The HWIO kernel is used as an OIHW view (``permute``, no copy here) and the frames
        as an NCHW view of channels-last memory; zero padding is passed to the convolution
        when symmetric (no padded copy)."""
        from faconvlstm.layers.boundary import conv2d_padded

        pads = conv_pads(
            frames.shape[1:3], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        weight = self.kernel.value.permute(3, 2, 0, 1)  # (r, C, kh, kw)
        z = conv2d_padded(
            frames.permute(0, 3, 1, 2), weight, pads, self.boundary, self.strides,
            self.dilation_rate,
        )  # fmt: skip
        return z.permute(0, 2, 3, 1).contiguous()  # a no-op when z is channels-last

    def _mixing_torch(self, b: Any) -> Any:
        """:meth:`mixing` with the PyTorch layer's
        :func:`~faconvlstm.layers.depthwise.depthwise_sum` (its one-node backward from
        64×128 up) on b (B, H, W, r); the (n, kh, kw, r, 1) kernel as an (n, r, 1, kh, kw)
        view."""
        from faconvlstm.layers.depthwise import depthwise_sum

        weight = self.depthwise_kernel.value.permute(0, 3, 4, 1, 2)
        return depthwise_sum(b, weight, self.kernel_size, self.dilation_rates, self.boundary)

    def _attention_torch(self, h: Any) -> Any:
        """:meth:`axial_attention` with the PyTorch layer's
        :func:`~faconvlstm.layers.axial_attention.axial_attention`
        (``scaled_dot_product_attention``); the (in, out) kernels as (out, in) views."""
        from faconvlstm.layers.axial_attention import axial_attention

        return axial_attention(
            h,
            self.qkv_kernel.value.t(),
            self.qkv_bias.value,
            self.proj_kernel.value.t(),
            self.proj_bias.value,
            self.attention_heads,
        )

    def _step_torch(self, xs_t, h, c, recurrent_mask, attend):
        """:meth:`step` on the PyTorch backend: the PyTorch layer's step on Keras weights.

        b = xs_t + h U_h as one ``addmm``; the depthwise mixing and the attention with the
        PyTorch layer's functions (:meth:`_mixing_torch`, :meth:`_attention_torch`); the
        expansion m E + b_g and the gate update in
        :func:`~faconvlstm.layers.fused_gates.lstm_gates`, which takes E (r, 4F) as its
        transposed (4F, r) view and the flattened (B·H'·W', ·) maps as views (channels
        last is its layout)."""
        import torch

        from faconvlstm.layers.fused_gates import lstm_gates

        B, H, W, F_ = h.shape
        r = self.bottleneck
        if recurrent_mask is not None:
            h = h * recurrent_mask
        u = self.recurrent_kernel.value.to(h.dtype)
        b = torch.addmm(xs_t.reshape(-1, r), h.reshape(-1, F_), u)
        m = self._mixing_torch(b.view(B, H, W, r))
        if self.se_ratio > 0:
            m = self.squeeze_excite(m)
        bias = None if self.bias is None else self.bias.value
        peep = None if self.peephole_weight is None else self.peephole_weight.value
        h, c = lstm_gates(m.reshape(-1, r), c.reshape(-1, F_), self.expansion.value.t(), bias, peep)
        h, c = h.view(B, H, W, F_), c.view(B, H, W, F_)
        if self.attention_every > 0 and bool(attend):
            h = h + self.gamma.value * self._attention_torch(h)
        return h, c

    def mixing(self, b: Any) -> Any:
        """Σ_d DWConv_{k,d}(b) with "same" output size: (B, H, W, r) → (B, H, W, r)."""
        out = None
        for i, d in enumerate(self.dilation_rates):
            pads = conv_pads(b.shape[1:3], self.kernel_size, (1, 1), (d, d), "same")
            y = ops.depthwise_conv(
                pad_grid(b, pads, self.boundary),
                self.depthwise_kernel[i],
                strides=1,
                padding="valid",
                data_format="channels_last",
                dilation_rate=d,
            )
            out = y if out is None else out + y
        return out

    def squeeze_excite(self, m: Any) -> Any:
        """m ⊙ σ(ReLU(GAP(m) W₁ + b₁) W₂ + b₂), GAP the mean over the grid."""
        s = ops.relu(ops.matmul(ops.mean(m, axis=(1, 2)), self.se_kernel_1) + self.se_bias_1)
        s = ops.sigmoid(ops.matmul(s, self.se_kernel_2) + self.se_bias_2)
        return m * s[:, None, None, :]

    def axial_attention(self, h: Any) -> Any:
        """W_o(RowAttn(h) + ColAttn(h)) + b_o for h (B, H, W, F); softmax(q kᵀ/√d) v.

        Rows attend along longitude (W), columns along latitude (H); one qkv projection
        serves both. Mirrors :class:`faconvlstm.layers.axial_attention.AxialAttention`.
        """
        height, width = h.shape[1:3]
        n, d = self.attention_heads, self.attention_dim
        qkv = ops.matmul(h, self.qkv_kernel) + self.qkv_bias
        q, k, v = (ops.reshape(t, (-1, height, width, n, d)) for t in ops.split(qkv, 3, axis=-1))
        scale = 1.0 / math.sqrt(d)
        row = ops.softmax(ops.einsum("bhind,bhjnd->bhnij", q, k) * scale, axis=-1)
        col = ops.softmax(ops.einsum("biwnd,bjwnd->bwnij", q, k) * scale, axis=-1)
        out = ops.einsum("bhnij,bhjnd->bhind", row, v) + ops.einsum("bwnij,bjwnd->biwnd", col, v)
        out = ops.reshape(out, (-1, height, width, n * d))
        return ops.matmul(out, self.proj_kernel) + self.proj_bias

    def step(
        self, xs_t: Any, h: Any, c: Any, recurrent_mask: Any = None, attend: Any = False
    ) -> tuple[Any, Any]:
        """One step, channels last: xs_t (B, H', W', r) = W_x ⋆ x_t, h and c (B, H', W', F).

        ``attend`` (a Python bool or a scalar boolean tensor) adds the axial attention term.
        Returns ``(h_t, c_t)``.
        """
        if self.uses_fused:
            return self._step_torch(xs_t, h, c, recurrent_mask, attend)
        if recurrent_mask is not None:
            h = h * recurrent_mask
        b = xs_t + ops.matmul(h, self.recurrent_kernel)
        m = self.mixing(b)
        if self.se_ratio > 0:
            m = self.squeeze_excite(m)
        z = ops.matmul(m, self.expansion)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        p = self.peephole_weight
        if p is not None:
            z_i = z_i + p[0] * c
            z_f = z_f + p[1] * c
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c + i * self.activation(z_c)
        if p is not None:
            z_o = z_o + p[2] * c
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        if self.attention_every > 0 and attend is not False:
            h = ops.cond(attend, lambda: h + self.gamma * self.axial_attention(h), lambda: h)
        return h, c

    def call(
        self, inputs: Any, states: Sequence[Any], attend: Any = False, training: bool = False
    ) -> tuple[Any, list[Any]]:
        """One whole step from one frame (B, H, W, C) / (B, C, H, W) and ``[h, c]`` in the
        data format, as ``ConvLSTMCell.call``; returns ``(h, [h, c])``. The attention term
        runs only where ``attend`` says so: used alone in ``keras.layers.RNN`` the cell does
        not know the step index, so prefer :class:`~faconvlstm.keras.FAConvLSTM2D`."""
        x = self.to_internal(inputs)
        h, c = (self.to_internal(s) for s in states)
        in_mask, rec_mask = self.dropout_masks(x, h, training)
        if in_mask is not None:
            x = x * in_mask
        h, c = self.step(self._conv_input(x), h, c, rec_mask, attend)
        h, c = self.to_external(h), self.to_external(c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            **self.fa_config(),
        }
        return {**super().get_config(), **config}

    def fa_config(self) -> dict[str, Any]:
        """The FA arguments (those ``keras.layers.ConvLSTM2D`` does not have)."""
        return {
            "bottleneck": self.bottleneck,
            "dilation_rates": self.dilation_rates,
            "se_ratio": self.se_ratio,
            "peephole": self.peephole,
            "attention_every": self.attention_every,
            "attention_heads": self.attention_heads,
            "attention_dim": self.attention_dim,
            "boundary": self.boundary,
            "depthwise_initializer": (
                None
                if self.depthwise_initializer is None
                else initializers.serialize(self.depthwise_initializer)
            ),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            "expansion_initializer": initializers.serialize(self.expansion_initializer),
            "expansion_regularizer": regularizers.serialize(self.expansion_regularizer),
            "expansion_constraint": constraints.serialize(self.expansion_constraint),
            "fused": self.fused,
        }
