"""FAConvLSTM2D — Factorized-Attention ConvLSTM, a drop-in replacement for ConvLSTM2D.

"FAConvLSTM: Factorized-Attention ConvLSTM for Efficient Feature Extraction in Multivariate
Climate Data", arXiv 2601.10914 (2026). Only the abstract is public; the equations below are
this project's reading of it (see ``docs/design.md`` §2.2). Compare line by line with
:mod:`faconvlstm.layers.convlstm`: the time loop is the same, only the step differs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from faconvlstm.layers.axial_attention import AxialAttention
from faconvlstm.layers.boundary import conv2d_padded, conv_pads
from faconvlstm.layers.depthwise import MultiScaleDepthwise
from faconvlstm.layers.fused_gates import lstm_gates, lstm_gates_reference
from faconvlstm.layers.recurrent import RecurrentConv2D, glorot_uniform_
from faconvlstm.layers.squeeze_excite import SqueezeExcite


class FAConvLSTM2D(RecurrentConv2D):
    r"""Factorized-Attention convolutional LSTM.

    Same constructor arguments, defaults, shapes and call semantics as
    `ConvLSTM2D` (and Keras' `ConvLSTM2D`), plus the FA arguments
    below. One step, with $\star$ a 2-D convolution, $\odot$ the elementwise product,
    $\sigma$ the `recurrent_activation` and $\tanh$ the `activation`:

    $$
    \begin{aligned}
    b_t &= W_x \star x_t + U_h\, h_{t-1} \\
    m_t &= \textstyle\sum_{d \in \mathcal{D}} \mathrm{DWConv}_{k,d}(b_t) \\
    s_t &= \sigma\big(W_2\, \mathrm{ReLU}(W_1\, \mathrm{GAP}(m_t) + b_1) + b_2\big) \\
    m_t &\leftarrow s_t \odot m_t \\
    [z_i, z_f, z_c, z_o] &= E\, m_t + b_g \\
    i_t &= \sigma(z_i + p_i \odot c_{t-1}) \\
    f_t &= \sigma(z_f + p_f \odot c_{t-1}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(z_c) \\
    o_t &= \sigma(z_o + p_o \odot c_t) \\
    h_t &= o_t \odot \tanh(c_t) \\
    h_t &\leftarrow h_t + \gamma\, W_o\big(\mathrm{RowAttn}(h_t) + \mathrm{ColAttn}(h_t)\big)
        \quad \text{if } a_t
    \end{aligned}
    $$

    where $b_t$ is the bottleneck (r channels): $W_x$ (`input_kernel`, (r, C, kh, kw)) is a
    $k_h \times k_w$ convolution $C \to r$ and $U_h$ (`recurrent_kernel`, (r, F)) a
    $1 \times 1$ one $F \to r$; $\mathcal{D}$ is `dilation_rates`, one shared depthwise
    branch per rate (`MultiScaleDepthwise`);
    $s_t \in (0, 1)^r$ is the squeeze-and-excitation of the whole grid (GAP: global average
    pool; skipped with `se_ratio=0`); $E$ (`expansion`, (4F, r)) is the $1 \times 1$
    expansion $r \to 4F$ with bias $b_g$; $p_i, p_f, p_o$ (`peephole_weight`, (3, F)) are
    per-channel peepholes (zero without `peephole`); the last line is axial attention
    (`AxialAttention`) with the ReZero scale $\gamma$
    (`gamma`, starts at 0), applied when $a_t$ holds:

    $$
    a_t = \big[(t + 1) \bmod k_a = 0\big] \lor \big[t = T - 1\big]
    $$

    with $k_a$ = `attention_every` and $t$ the processing-order step (so a layer's output
    is always attended). A `FAConvLSTM2DCell` keeps the same
    rule: its state counts $t$, and `cell(x_t, state, last=True)` marks the last step.

    Differences from a literal reading of the paper, and why (`docs/design.md` §2.2):

    * The input half of the bottleneck, $W_x$, has the layer's `kernel_size`, `strides`,
      `padding` and `dilation_rate`, so the output grid is exactly Keras' (`valid` crops,
      strides subsample). With `kernel_size=1` it is the plain $1 \times 1$ bottleneck over
      $[x_t, h_{t-1}]$. It runs once for all T steps.
    * Dropout draws one input and one recurrent mask per call (not four, as ConvLSTM2D
      does), because the four gates share one bottleneck.
    * The expansion and gate math run fused, block by block, with a recomputing backward
      (`fused_gates`): the (N, 4F) gate map is never
      stored. The fused or the plain-autograd path is chosen once, at construction.
    * The attended $h_t$ is what the next step sees, so global context enters the
      recurrence. $\gamma$ starts at 0 (ReZero), so an untrained layer is a plain
      factorized ConvLSTM.

    FA arguments (keyword only):
        bottleneck: r, default `max(8, filters // 4)`.
        dilation_rates: one depthwise branch per rate, default (1, 2, 4).
        se_ratio: SE reduction; 0 disables squeeze-and-excitation.
        peephole: per-channel peephole weights $p_i, p_f, p_o$ (zero-initialised).
        attention_every: $k_a$ above; 0 disables attention.
        attention_heads: heads n of the axial attention.
        attention_dim: width of each head, default `max(16, filters // 4)`.
        attention_checkpointing: in training, recompute the axial attention of each attended
            step in the backward pass instead of keeping what it saves (about 11 floats per
            pixel and filter per attended step: q, k, v, their column copies, both
            attention outputs, the projection's input and output), for one more attention
            forward per attended step; the same result and gradients. Redundant with
            `gradient_checkpointing`, which recomputes the whole step.
        fused: use the fused gate kernel (default, for the default activations) and the
            depthwise mixing's one-node backward (`MultiScaleDepthwise`, any activation);
            `False` runs plain autograd ops.

    Shape:
        - Input: (B, T, C, H, W) (`channels_first`) or (B, T, H, W, C) (`channels_last`);
          `mask` (B, T) bool.
        - Output: (B, T, F, H', W') with `return_sequences`, else (B, F, H', W') (channels
          last for `channels_last`); with `return_state`, `(output, h, c)`, h and c
          (B, F, H', W'). H', W' follow Keras' formula, see
          `RecurrentConv2D`.

    Interpretable internals cost nothing unless requested (forward hooks on the SE, depthwise
    and attention submodules exist only inside the block)::

        with layer.capture_internals() as rec:
            layer(x)
        rec["se_weights"]      # (B, T, r) SE weights per step
        rec["branch_energy"]   # (B, T, n_branches) mean square of each depthwise branch
        rec["attention"]       # [{"step": t, "row": (B,H,n,W,W), "col": (B,W,n,H,H)}, ...]

    Example::

        >>> layer = FAConvLSTM2D(64, 3, padding="same", return_sequences=True, in_channels=8)
        >>> layer(torch.randn(2, 12, 8, 32, 64)).shape
        torch.Size([2, 12, 64, 32, 64])
    """

    _internal_channels_last = True
    _num_dropout_masks = 1  # the four gates share one bottleneck

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
        bottleneck: int | None = None,
        dilation_rates: Sequence[int] = (1, 2, 4),
        se_ratio: int = 4,
        peephole: bool = True,
        attention_every: int = 4,
        attention_heads: int = 1,
        attention_dim: int | None = None,
        attention_checkpointing: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__(
            filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
            recurrent_activation, use_bias, unit_forget_bias, dropout, recurrent_dropout,
            return_sequences, return_state, go_backwards, stateful,
            in_channels=None, boundary=boundary, gradient_checkpointing=gradient_checkpointing,
            check_finite=check_finite,
        )  # fmt: skip
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
        self.se_ratio = se_ratio
        self.peephole = bool(peephole)
        self.attention_every = attention_every
        self.attention_heads = attention_heads
        self.attention_dim = max(16, filters // 4) if attention_dim is None else int(attention_dim)
        self.attention_checkpointing = bool(attention_checkpointing)
        self.fused = bool(fused)
        F4 = 4 * filters

        self.recurrent_kernel = nn.Parameter(torch.empty(r, filters))
        self.mixing = MultiScaleDepthwise(
            r, self.kernel_size, self.dilation_rates, boundary, fused=self.fused
        )
        self.se = SqueezeExcite(r, se_ratio) if se_ratio > 0 else None
        self.expansion = nn.Parameter(torch.empty(F4, r))
        self.bias = nn.Parameter(torch.zeros(F4)) if self.use_bias else None
        self.peephole_weight = nn.Parameter(torch.zeros(3, filters)) if self.peephole else None
        if attention_every > 0:
            self.attention = AxialAttention(filters, self.attention_dim, attention_heads)
            self.gamma = nn.Parameter(torch.zeros(()))
        else:
            self.attention = None
            self.gamma = None
        if self.fused and activation == "tanh" and recurrent_activation == "sigmoid":
            self._gates: Callable[..., tuple[torch.Tensor, torch.Tensor]] = lstm_gates
        else:
            self._gates = functools.partial(
                lstm_gates_reference, activation=self._act, recurrent_activation=self._rec_act
            )
        self._recorder: _Recorder | None = None
        self._reset_cell_parameters()
        if in_channels is not None:
            self._build_once(in_channels)

    # ------------------------------------------------------------------ parameters
    def _declare_input_parameters(self) -> None:
        self.input_kernel = nn.UninitializedParameter()

    def _build(self, in_channels: int) -> None:
        kh, kw = self.kernel_size
        self.input_kernel.materialize((self.bottleneck, in_channels, kh, kw))
        glorot_uniform_(self.input_kernel, in_channels * kh * kw, self.bottleneck * kh * kw)

    def _reset_cell_parameters(self) -> None:
        nn.init.orthogonal_(self.recurrent_kernel)
        # He-uniform over the r inputs (var 2/r): a glorot bound would count the 4F outputs
        # and start the gates ~3x weaker than ConvLSTM2D's.
        bound = (6.0 / self.bottleneck) ** 0.5
        nn.init.uniform_(self.expansion, -bound, bound)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()
                if self.unit_forget_bias:
                    self.bias[self.filters : 2 * self.filters] = 1.0

    def _in_channels_from_state(self, state_dict: dict[str, Any], prefix: str) -> int | None:
        weight = state_dict.get(prefix + "input_kernel")
        return None if weight is None else int(weight.shape[1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "bottleneck": self.bottleneck,
            "dilation_rates": self.dilation_rates,
            "se_ratio": self.se_ratio,
            "peephole": self.peephole,
            "attention_every": self.attention_every,
            "attention_heads": self.attention_heads,
            "attention_dim": self.attention_dim,
            "attention_checkpointing": self.attention_checkpointing,
            "fused": self.fused,
        }

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, bottleneck={self.bottleneck}, "
            f"dilation_rates={self.dilation_rates}, se_ratio={self.se_ratio}, "
            f"peephole={self.peephole}, attention_every={self.attention_every}"
        )

    # ------------------------------------------------------------------ internals
    @contextlib.contextmanager
    def capture_internals(self) -> Iterator[dict[str, Any]]:
        """Record SE weights, branch energies and attention maps of the calls in the block.

        Yields a dict that is filled when the block exits: ``"se_weights"`` (B, T, r) or
        None, ``"branch_energy"`` (B, T, n_branches), ``"attention"`` a list of
        ``{"step": t, "row": (B, H, n, W, W), "col": (B, W, n, H, H)}``. Steps of several
        calls (or cell steps) in one block are concatenated along T, and t indexes that T
        axis: for one call, the processing-order step. Recording is done by forward hooks
        on the SE, depthwise and attention submodules, attached only inside the block (it
        recomputes those small quantities, and turns gradient checkpointing off).
        """
        recorder = _Recorder(self)
        self._recorder = recorder
        try:
            yield recorder.record
        finally:
            self._recorder = None
            recorder.close()

    def _recording(self) -> bool:
        return self._recorder is not None

    def attends_at(self, step: int, last: bool) -> bool:
        """$a_t$ of the class docstring: attention after steps k_a−1, 2k_a−1, … and the last."""
        k = self.attention_every
        return k > 0 and (last or (step + 1) % k == 0)

    # ------------------------------------------------------------------ the step
    def _input_sequence(
        self, x: torch.Tensor, input_masks: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """W_x ⋆ x_t for all steps at once: (B, T, C, H, W) → time-major (T, B, H', W', r)."""
        batch, steps = x.shape[:2]
        if input_masks is not None:
            x = x * input_masks[0][:, None]
        frames = x.permute(1, 0, 3, 4, 2).reshape(steps * batch, *x.shape[3:], x.shape[2])
        frames = frames.permute(0, 3, 1, 2)  # NCHW view in channels_last memory format
        pads = conv_pads(
            frames.shape[-2:], self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        z = conv2d_padded(
            frames, self.input_kernel, pads, self.boundary, self.strides, self.dilation_rate
        )
        z = z.permute(0, 2, 3, 1).contiguous()  # (T·B, H', W', r), a no-op in channels_last
        return z.view(steps, batch, *z.shape[1:])

    def _step(self, xs_t, h, c, recurrent_masks, t, attend):
        B, H, W, F_ = h.shape
        r = self.bottleneck
        if recurrent_masks is not None:
            h = h * recurrent_masks[0]
        b = torch.addmm(xs_t.reshape(-1, r), h.reshape(-1, F_), self.recurrent_kernel.t())
        m = self.mixing(b.view(B, H, W, r))
        if self.se is not None:
            m = self.se(m)
        h_new, c_new = self._gates(
            m.reshape(-1, r), c.reshape(-1, F_), self.expansion, self.bias, self.peephole_weight
        )
        h_new, c_new = h_new.view(B, H, W, F_), c_new.view(B, H, W, F_)
        if attend:
            if self._checkpoint_attention():
                delta = checkpoint(self.attention, h_new, use_reentrant=False)
            else:
                delta = self.attention(h_new)
            h_new = h_new + self.gamma * delta
        return h_new, c_new

    def _checkpoint_attention(self) -> bool:
        """Recompute this step's attention in the backward (not inside a checkpointed step,
        nor while recording: the recompute would fire the recording hooks twice)."""
        return (
            self.attention_checkpointing
            and not self.gradient_checkpointing
            and self.training
            and torch.is_grad_enabled()
            and not self._recording()
        )


class _Recorder:
    """What ``capture_internals()`` collects, through forward hooks on the FA submodules.

    The depthwise mixing runs exactly once per step, so its hook also counts the steps
    that the attention maps are labelled with.
    """

    def __init__(self, layer: FAConvLSTM2D) -> None:
        self.record: dict[str, Any] = {"se_weights": [], "branch_energy": [], "attention": []}
        self.steps = 0
        self.handles = [layer.mixing.register_forward_hook(self._on_mixing)]
        if layer.se is not None:
            self.handles.append(layer.se.register_forward_hook(self._on_se))
        if layer.attention is not None:
            self.handles.append(layer.attention.register_forward_hook(self._on_attention))

    @torch.no_grad()
    def _on_mixing(self, module: MultiScaleDepthwise, inputs: tuple, output: Any) -> None:
        self.record["branch_energy"].append(module.branch_energy(inputs[0]))
        self.steps += 1

    @torch.no_grad()
    def _on_se(self, module: SqueezeExcite, inputs: tuple, output: Any) -> None:
        self.record["se_weights"].append(module.excitation(inputs[0]))

    @torch.no_grad()
    def _on_attention(self, module: AxialAttention, inputs: tuple, output: Any) -> None:
        self.record["attention"].append(
            {"step": self.steps - 1, **module.attention_maps(inputs[0])}
        )

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        for key in ("se_weights", "branch_energy"):
            values = self.record[key]
            self.record[key] = torch.stack(values, dim=1) if values else None
