"""ConvLSTM2D — the baseline, equal to ``keras.layers.ConvLSTM2D`` to float32 rounding.

Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting", NeurIPS 2015, in the formulation of Keras 3 (no peepholes, fused kernel with gate
order i, f, c, o). Compare this file line by line with :mod:`faconvlstm.layers.faconvlstm`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faconvlstm.layers.boundary import conv2d_padded, conv_pads
from faconvlstm.layers.recurrent import RecurrentConv2D, glorot_uniform_


class ConvLSTM2D(RecurrentConv2D):
    r"""Convolutional LSTM, Keras semantics, PyTorch layout.

    For each step, with $\star$ a 2-D convolution, $\odot$ the elementwise product,
    $\sigma$ the `recurrent_activation` and $\tanh$ the `activation`:

    $$
    \begin{aligned}
    [z_i, z_f, z_c, z_o] &= W \star x_t + U \star h_{t-1} + b \\
    i_t &= \sigma(z_i) \\
    f_t &= \sigma(z_f) \\
    o_t &= \sigma(z_o) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(z_c) \\
    h_t &= o_t \odot \tanh(c_t)
    \end{aligned}
    $$

    $W$ (`kernel`, shape (4F, C, kh, kw)) uses the layer's strides, padding and dilation;
    $U$ (`recurrent_kernel`, (4F, F, kh, kw)) always uses stride 1, dilation 1 and "same"
    padding; $b$ is `bias` (4F,). Gate order i, f, c, o along the 4F axis, as Keras'.
    Initialisers as in Keras: glorot-uniform kernel, orthogonal recurrent kernel, zero bias
    with the forget slice set to 1 when `unit_forget_bias`. Dropout draws four input and
    four recurrent masks per call (one per gate), as Keras does. Design notes:
    `docs/design.md` §2.1; a one-step version for hand-written loops is `ConvLSTM2DCell`.

    Arguments and call semantics: see `RecurrentConv2D` (`faconvlstm.layers.RecurrentConv2D`).

    Shape:
        - Input: (B, T, C, H, W) (`channels_first`) or (B, T, H, W, C) (`channels_last`);
          `mask` (B, T) bool.
        - Output: (B, T, F, H', W') with `return_sequences`, else (B, F, H', W') (channels
          last for `channels_last`); with `return_state`, `(output, h, c)`, h and c
          (B, F, H', W'). H' = ceil(H / sh) for "same", (H − (kh − 1)·dh − 1) // sh + 1
          for "valid"; likewise W'.

    Example::

        >>> layer = ConvLSTM2D(filters=16, kernel_size=3, padding="same", return_sequences=True)
        >>> layer(torch.randn(2, 6, 3, 32, 64)).shape
        torch.Size([2, 6, 16, 32, 64])
    """

    def _declare_input_parameters(self) -> None:
        # all three, as before building: initialising them together keeps one random
        # stream for eager (in_channels=...) and lazy layers
        self.kernel = nn.UninitializedParameter()
        self.recurrent_kernel = nn.UninitializedParameter()
        self.bias = nn.UninitializedParameter() if self.use_bias else None

    def _build(self, in_channels: int) -> None:
        F4, (kh, kw) = 4 * self.filters, self.kernel_size
        self.kernel.materialize((F4, in_channels, kh, kw))
        self.recurrent_kernel.materialize((F4, self.filters, kh, kw))
        if self.bias is not None:
            self.bias.materialize((F4,))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras initialisers: glorot-uniform, orthogonal, zeros (+1 forget bias)."""
        F4, cin, kh, kw = self.kernel.shape
        glorot_uniform_(self.kernel, fan_in=cin * kh * kw, fan_out=F4 * kh * kw)
        nn.init.orthogonal_(self.recurrent_kernel)
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()
                if self.unit_forget_bias:
                    self.bias[self.filters : 2 * self.filters] = 1.0

    def _in_channels_from_state(self, state_dict: dict[str, Any], prefix: str) -> int | None:
        weight = state_dict.get(prefix + "kernel")
        return None if weight is None else int(weight.shape[1])

    def _conv(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        strides,
        dilation,
        padding: str,
        bias: torch.Tensor | None = None,
    ):
        pads = conv_pads(x.shape[-2:], self.kernel_size, strides, dilation, padding)
        return conv2d_padded(x, weight, pads, self.boundary, strides, dilation, bias)

    @property
    def joint_step(self) -> bool:
        r"""Whether each step runs one convolution of the stacked $[x_t, h_{t-1}]$.

        $W \star x_t + U \star h_{t-1} = [W, U] \star [x_t, h_{t-1}]$ whenever both
        convolutions see the same grid and padding: stride 1, dilation 1, ``"same"``
        padding, no dropout (Keras' per-gate masks need separate convolutions). The joint
        form is the one PyTorch ConvLSTMs use (ndrplz, OpenSTL); computing all T input
        convolutions at once instead wrote a (T, B, 4F, H, W) tensor and its gradient to
        memory and made the 64×128, F = 64 training step ~2× slower (docs/performance.md).
        Equal to the separate form to float32 rounding (~2e-7 here), not bitwise.
        """
        return (
            self.strides == (1, 1)
            and self.dilation_rate == (1, 1)
            and self.padding == "same"
            and self.dropout == 0
            and self.recurrent_dropout == 0
        )

    def _input_sequence(
        self, x: torch.Tensor, input_masks: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """All input convolutions at once: (B, T, C, H, W) → time-major (T, B, 4F, H', W').

        With :attr:`joint_step`, the time-major frames themselves, (T, B, C, H, W): the step
        convolves them together with h."""
        if self.joint_step:
            return x.transpose(0, 1)
        batch, steps = x.shape[:2]
        frames = x.transpose(0, 1).reshape(steps * batch, *x.shape[2:])
        if input_masks is None:
            z = self._conv(frames, self.kernel, self.strides, self.dilation_rate, self.padding)
        else:  # one mask per gate, shared over time
            kernels = self.kernel.chunk(4, dim=0)
            z = torch.cat(
                [
                    self._conv(
                        (x * m[:, None]).transpose(0, 1).reshape(frames.shape),
                        k,
                        self.strides,
                        self.dilation_rate,
                        self.padding,
                    )
                    for k, m in zip(kernels, input_masks)
                ],
                dim=1,
            )
        if self.bias is not None:
            z = z + self.bias.view(1, -1, 1, 1)
        return z.view(steps, batch, *z.shape[1:])

    def _step(self, xs_t, h, c, recurrent_masks, t, attend):
        if self.joint_step:  # [W, U] ⋆ [x_t, h] + b
            weight = torch.cat([self.kernel, self.recurrent_kernel], dim=1)
            z = self._conv(torch.cat([xs_t, h], dim=1), weight, (1, 1), (1, 1), "same", self.bias)
        elif recurrent_masks is None:  # (W ⋆ x_t + b) + U ⋆ h
            z = xs_t + self._conv(h, self.recurrent_kernel, (1, 1), (1, 1), "same")
        else:
            zh = torch.cat(
                [
                    self._conv(h * m, k, (1, 1), (1, 1), "same")
                    for k, m in zip(self.recurrent_kernel.chunk(4, dim=0), recurrent_masks)
                ],
                dim=1,
            )
            z = xs_t + zh
        zi, zf, zc, zo = z.chunk(4, dim=1)
        i = self._rec_act(zi)
        f = self._rec_act(zf)
        c = f * c + i * self._act(zc)
        o = self._rec_act(zo)
        h = o * self._act(c)
        return h, c

    @classmethod
    def from_keras(cls, keras_layer, **overrides: Any) -> ConvLSTM2D:
        """Build an equivalent layer from a built ``keras.layers.ConvLSTM2D``.

        Weights are copied (kernel HWIO → OIHW, no flip: both frameworks compute a
        cross-correlation); the configuration, including Keras' ``data_format``, is kept, so
        the same array gives the same output. ``overrides`` replace constructor arguments
        (e.g. ``data_format="channels_first"``).
        """
        import numpy as np

        cfg = keras_layer.get_config()
        for name in ("activation", "recurrent_activation"):
            if not isinstance(cfg[name], str):
                raise ValueError(f"from_keras supports named activations only, got {cfg[name]!r}")
        weights = [np.asarray(w) for w in keras_layer.get_weights()]
        if not weights:
            raise ValueError("the Keras layer is not built yet: call it on an input first")
        kernel = torch.from_numpy(weights[0]).permute(3, 2, 0, 1)
        args = {
            "filters": cfg["filters"],
            "kernel_size": tuple(cfg["kernel_size"]),
            "strides": tuple(cfg["strides"]),
            "padding": cfg["padding"],
            "data_format": cfg["data_format"],
            "dilation_rate": tuple(cfg["dilation_rate"]),
            "activation": cfg["activation"],
            "recurrent_activation": cfg["recurrent_activation"],
            "use_bias": cfg["use_bias"],
            "unit_forget_bias": cfg["unit_forget_bias"],
            "dropout": cfg["dropout"],
            "recurrent_dropout": cfg["recurrent_dropout"],
            "return_sequences": cfg["return_sequences"],
            "return_state": cfg["return_state"],
            "go_backwards": cfg["go_backwards"],
            "stateful": cfg["stateful"],
            "in_channels": int(kernel.shape[1]),
        }
        args.update(overrides)
        layer = cls(**args)
        with torch.no_grad():
            layer.kernel.copy_(kernel)
            layer.recurrent_kernel.copy_(torch.from_numpy(weights[1]).permute(3, 2, 0, 1))
            if layer.bias is not None:
                layer.bias.copy_(torch.from_numpy(weights[2]))
        return layer
