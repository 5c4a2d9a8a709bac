"""Encoder–forecaster: predict the next N steps of chosen target variables.

The classic ConvLSTM task (Shi et al., "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting", NeurIPS 2015): an encoder stack reads the input
window, a forecaster stack initialised with the encoder's states unrolls the future. Here
with FAConvLSTM's subspace head (arXiv 2601.10914; docs/design.md §2.4), OpenSTL-style patching
(Tan et al., "OpenSTL: A Comprehensive Benchmark of Spatio-Temporal Predictive Learning",
NeurIPS 2023 D&B) and scheduled sampling (Bengio et al., "Scheduled Sampling for Sequence
Prediction with Recurrent Neural Networks", NeurIPS 2015).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from faconvlstm.layers.cells import advance
from faconvlstm.models.encoder import (
    ConfigMixin,
    Encoder,
    make_layer,
    pool_sequence,
    prepare_input,
    resize_sequence,
)

__all__ = ["Forecaster"]

#: Accepted ``lead_attention`` values (see :class:`Forecaster`).
LEAD_ATTENTION = ("every", "schedule")


class Forecaster(ConfigMixin, nn.Module):
    r"""Encoder–forecaster with a subspace-head context, patching and scheduled sampling.

    With :math:`P_p` the space-to-depth patching by ``p`` (the grid is padded by
    replication to a multiple of ``p`` and cropped back), the encoder reads
    :math:`P_p(x_{1..T})` and returns embeddings :math:`z` and per-layer states. The
    forecaster layers (same cell kind and filters, same grids) start from those states and
    run one step per lead time ``n = 1..N``:

    .. math::
        u_n &= \begin{cases} y_{n-1} & \text{with prob. } \texttt{teacher\_forcing}
              \text{ (training, } y \text{ given)}\\ \hat y_{n-1} & \text{otherwise}
              \end{cases},\qquad \hat y_0 = x_T[\text{targets}],\\
        k_n &= W_k\,[z_T \Vert \mathrm{PE}(\text{future\_times})_n] \in \mathbb{R}^{K}
              \text{ (broadcast over the grid)},\\
        g^{(1)}_n &= \mathrm{RNN}'_1([P_p(u_n) \Vert k_n]),\qquad
        g^{(\ell)}_n = \mathrm{RNN}'_\ell(\mathrm{Pool}(g^{(\ell-1)}_n)),\\
        \hat y_n &= \hat y_{n-1}\,[\text{if residual}] + P_p^{-1}\big(\mathrm{Conv}_{1\times1}
              [g^{(1)}_n \Vert \mathrm{Up}(g^{(2)}_n) \Vert \dots]\big).

    The context ``k_n`` makes every forecast depend on the embeddings (so forecasting
    trains the representation too) and on the season of the *target* time. The output
    conv reads every forecaster layer (upsampled to the patch grid), as in Shi et al.; it
    starts at zero, so an untrained residual forecaster is exactly persistence. If the
    targets are not among the inputs (``out_channels`` given without
    ``target_channels``), :math:`\hat y_0 = 0`.

    The forecaster layers run one step per lead time. ``lead_attention`` says when an
    ``FAConvLSTM2D`` forecaster layer attends (its axial attention; ConvLSTM has none and
    is the same either way): ``"every"`` — at every lead, as calling the layer on one
    frame at a time does (each call's only step is its last); ``"schedule"`` — as the layer
    does over a sequence, here the N leads: after leads :math:`k_a, 2k_a, \dots` and at the
    last lead N (:math:`a_{n-1}` of :class:`~faconvlstm.FAConvLSTM2D` with
    :math:`k_a` = ``attention_every``), so attention runs :math:`\lfloor (N-1)/k_a\rfloor + 1`
    times instead of N (once for N ≤ k_a). Attention is the largest single cost of an FA step
    (benchmarks/fa_breakdown.py), and each lead's attention maps are kept for the backward.
    The default ``"schedule"`` was chosen on validation-year forecast skill, where the two
    agree to within the spread of seeds (docs/performance.md, "The forecaster's lead
    attention"); models saved before the option existed load as ``"every"``.

    Args:
        in_channels: C, input channels.
        horizon: N, number of future steps to predict.
        out_channels: C_out, predicted channels; default: ``len(target_channels)`` or C.
        filters: encoder (and forecaster) filters ``(F_1, …, F_L)``.
        cell: ``"fa"`` or ``"convlstm"`` (encoder and forecaster).
        patch_size: p, OpenSTL patching (1 = none).
        embed_dim: E.
        kernel_size, downsample, boundary, layer_kwargs, head_kwargs: as for
            :class:`~faconvlstm.models.Encoder` (the forecaster layers use them too).
        target_channels: indices of the input channels that are the targets (default: all
            inputs when ``out_channels`` is None or C).
        residual: predict the change from the previous frame (persistence at init).
        context_channels: K, width of the embedding/season context fed to the forecaster.
        lead_attention: ``"every"`` or ``"schedule"``: when FA forecaster layers attend
            (above).

    Inputs: ``x, times=None, future_times=None, y=None, teacher_forcing=0.0, mask=None``
        - **x**: ``(B, T, C, H, W)``; NaN cells read as 0.
        - **times**: stamps or phases of the T input steps (see :class:`Encoder`).
        - **future_times**: stamps or phases ``(N,)``/``(B, N)`` of the target steps;
          None: index encoding only for the context.
        - **y**: truth ``(B, N, C_out, H, W)`` for scheduled sampling (NaN read as 0).
        - **teacher_forcing**: probability, per sample and lead time, of feeding ``y``
          instead of the prediction to the next step; used only in training mode.
        - **mask**: time mask or cell mask of ``x``, as for :class:`Encoder`.

    Outputs: dict with
        - ``"forecast"``: ``(B, N, C_out, H, W)``;
        - ``"embeddings"``: ``(B, T, E)`` of the input window.
    """

    def __init__(
        self,
        in_channels: int,
        horizon: int,
        out_channels: int | None = None,
        filters: Sequence[int] = (32, 32),
        cell: str = "fa",
        patch_size: int = 1,
        embed_dim: int = 32,
        kernel_size: int | Sequence[int] = 3,
        downsample: int | Sequence[int] | None = None,
        boundary: str = "zeros",
        target_channels: Sequence[int] | None = None,
        residual: bool = True,
        context_channels: int = 8,
        lead_attention: str = "schedule",
        layer_kwargs: dict[str, Any] | None = None,
        head_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._config = {
            "in_channels": in_channels,
            "horizon": horizon,
            "out_channels": out_channels,
            "filters": tuple(filters),
            "cell": cell,
            "patch_size": patch_size,
            "embed_dim": embed_dim,
            "kernel_size": kernel_size,
            "downsample": downsample,
            "boundary": boundary,
            "target_channels": None if target_channels is None else tuple(target_channels),
            "residual": residual,
            "context_channels": context_channels,
            "lead_attention": lead_attention,
            "layer_kwargs": layer_kwargs,
            "head_kwargs": head_kwargs,
        }
        if horizon < 1 or patch_size < 1 or context_channels < 1:
            raise ValueError("horizon, patch_size and context_channels must be ≥ 1")
        if lead_attention not in LEAD_ATTENTION:
            raise ValueError(
                f"lead_attention must be one of {', '.join(map(repr, LEAD_ATTENTION))}, "
                f"got {lead_attention!r}"
            )
        self.lead_attention = lead_attention
        if target_channels is None and out_channels in (None, in_channels):
            target_channels = range(in_channels)
        if target_channels is not None:
            target_channels = tuple(int(i) for i in target_channels)
            if out_channels not in (None, len(target_channels)):
                raise ValueError(f"out_channels={out_channels} but {target_channels=}")
            if not all(0 <= i < in_channels for i in target_channels):
                raise ValueError(f"target_channels must index the {in_channels} inputs")
            out_channels = len(target_channels)
        self.horizon = horizon
        self.out_channels = out_channels
        self.patch_size = patch_size
        self.residual = residual
        self.target_channels = target_channels
        p2 = patch_size**2
        self.encoder = Encoder(
            in_channels * p2,
            filters=filters,
            kernel_size=kernel_size,
            cell=cell,
            downsample=downsample,
            embed_dim=embed_dim,
            boundary=boundary,
            layer_kwargs=layer_kwargs,
            head_kwargs=head_kwargs,
        )
        filters = self.encoder.filters
        self.context = nn.Linear(2 * embed_dim, context_channels)
        self.forecaster = nn.ModuleList(
            make_layer(cell, c_in, f, kernel_size, boundary, layer_kwargs)
            for c_in, f in zip((out_channels * p2 + context_channels, *filters[:-1]), filters)
        )
        self.out = nn.Conv2d(sum(filters), out_channels * p2, kernel_size=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Forecaster:
        """Build a new (untrained) model from :meth:`get_config`'s output.

        A config saved before ``lead_attention`` existed (no such key) rebuilds the model it
        was trained as: attention at every lead (``"every"``), not today's default.
        """
        return cls(**{"lead_attention": "every", **config})

    def _patch(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` → ``(B, T, C·p², ⌈H/p⌉, ⌈W/p⌉)``."""
        p = self.patch_size
        if p == 1:
            return x
        b = x.shape[0]
        pad = (0, -x.shape[-1] % p, 0, -x.shape[-2] % p)
        x = F.pad(x.flatten(0, 1), pad, mode="replicate") if any(pad) else x.flatten(0, 1)
        return rearrange(x, "(b t) c (h p1) (w p2) -> b t (c p1 p2) h w", b=b, p1=p, p2=p)

    def _unpatch(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Inverse of :meth:`_patch` on ``(B, C·p², H/p, W/p)``, cropped to ``size``."""
        p = self.patch_size
        x = rearrange(x, "b (c p1 p2) h w -> b c (h p1) (w p2)", p1=p, p2=p)
        return x[..., : size[0], : size[1]]

    def forward(
        self,
        x: torch.Tensor,
        times: Any = None,
        future_times: Any = None,
        y: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
        mask: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        b, t = x.shape[:2]
        size = tuple(x.shape[-2:])
        x, time_mask = prepare_input(x, mask)
        enc = self.encoder(self._patch(x), times=times, mask=time_mask)
        z_last = enc["embeddings"][:, -1]
        enc_pe = self.encoder.head.encoding
        pe = enc_pe(future_times, length=self.horizon, offset=t).to(z_last.dtype)
        pe = pe.expand(b, *pe.shape[-2:])
        states = enc["states"]
        grid = tuple(states[0][0].shape[-2:])  # the patch grid of the first layer

        if self.target_channels is not None:
            prev = x[:, -1, list(self.target_channels)]
        else:
            prev = x.new_zeros(b, self.out_channels, *size)
        forcing = self.training and y is not None and teacher_forcing > 0
        truth = torch.nan_to_num(y) if forcing else None
        forecasts = []
        schedule = self.lead_attention == "schedule"
        for n in range(self.horizon):
            ctx = self.context(torch.cat([z_last, pe[:, n]], dim=-1))
            u = self._patch(prev[:, None])
            g = torch.cat([u, ctx[:, None, :, None, None].expand(-1, -1, -1, *u.shape[-2:])], 2)
            new_states, hidden = [], []
            for i, (layer, state) in enumerate(zip(self.forecaster, states)):
                if i > 0 and self.encoder.downsample[i - 1] > 1:
                    g = pool_sequence(g, self.encoder.downsample[i - 1])
                # "every": each lead is step 0 and the last, as a one-frame layer call;
                # "schedule": lead n is step n of the layer's schedule, the last at N
                step, last = (n, n == self.horizon - 1) if schedule else (0, True)
                h, (_, c, _) = advance(layer, g[:, 0], (*state, step), last)
                g = h[:, None]
                new_states.append((h, c))
                hidden.append(g if i == 0 else resize_sequence(g, grid))
            states = new_states
            delta = self._unpatch(self.out(torch.cat(hidden, dim=2)[:, 0]), size)
            pred = prev + delta if self.residual else delta
            forecasts.append(pred)
            prev = pred
            if forcing:
                use_truth = torch.rand(b, 1, 1, 1, device=x.device) < teacher_forcing
                prev = torch.where(use_truth, truth[:, n].to(pred.dtype), pred)
        return {"forecast": torch.stack(forecasts, dim=1), "embeddings": enc["embeddings"]}

    def regularization_loss(self) -> torch.Tensor:
        """The head's weighted orthogonality penalty (0 when disabled)."""
        return self.encoder.regularization_loss()
