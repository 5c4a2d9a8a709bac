"""Sequence autoencoder: the representation-learning task of FAConvLSTM.

FAConvLSTM ("FAConvLSTM: Factorized-Attention ConvLSTM for Efficient Feature Extraction in
Multivariate Climate Data", arXiv 2601.10914; docs/design.md §2.4) learns per-timestep embeddings by
reconstructing the input sequence. Here the decoder sees the input *only through the
embeddings*, so the embedding is a true bottleneck — the learned counterpart of a truncated
EOF expansion, and directly comparable with it at equal width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from einops import rearrange
from torch import nn

from faconvlstm.heads.clustering import ClusteringHead
from faconvlstm.models.encoder import (
    ConfigMixin,
    Encoder,
    make_layer,
    prepare_input,
    resize_sequence,
)

__all__ = ["SequenceAutoencoder"]


class SequenceAutoencoder(ConfigMixin, nn.Module):
    r"""Encoder → embeddings → recurrent decoder → reconstruction of the input sequence.

    .. math::
        z &= \mathrm{Encoder}(x, \text{times}) \in \mathbb{R}^{B\times T\times E},\\
        g^{(0)}_t &= \mathrm{Resize}_{H_L\times W_L}\big(\mathrm{reshape}_{d\times h_0\times
        w_0}(V z_t)\big)\ [\ \Vert\ h^{(L)}_t \text{ if skip\_hidden}],\\
        g^{(j)} &= \mathrm{RNN}'_j(\mathrm{Resize}_{H_{L-j}\times W_{L-j}}(g^{(j-1)})),
        \qquad \hat x_t = \mathrm{Conv}_{1\times1}(g^{(L)}_t).

    ``V`` (``(d·h₀·w₀) × E``) lifts each embedding back onto the head's coarse
    ``h₀×w₀`` grid (``head_kwargs["pool_size"]``, default 4×8) with ``d = F_L`` channels;
    bilinear resizes climb the encoder's grids in reverse; the decoder layers ``RNN'`` are
    the same cell kind as the encoder's with the filters reversed.

    Why a bottleneck: if the decoder also saw the hidden states (``skip_hidden=True``), it
    could reconstruct without the embedding, which would then get almost no training signal.
    By default the reconstruction depends on the input only through ``z``, so ``z`` must
    carry the state of the field at each step — what clustering, probing and the EOF
    comparison need. ``skip_hidden=True`` trades this for reconstruction fidelity.

    Args:
        in_channels: C.
        filters: encoder filters ``(F_1, …, F_L)``; the decoder uses them reversed.
        cell: ``"fa"`` or ``"convlstm"`` (encoder and decoder).
        embed_dim: E.
        kernel_size, downsample, boundary, layer_kwargs, head_kwargs: as for
            :class:`~faconvlstm.models.Encoder` (also used by the decoder layers).
        skip_hidden: also feed the encoder's last hidden states to the decoder.
        n_clusters: None (default: no clustering; the model is exactly the plain
            autoencoder, same parameters and outputs) or k ≥ 2: add a
            :class:`~faconvlstm.heads.ClusteringHead` (``k`` learnable centroids, state-dict
            keys ``clustering.*``) whose DEC soft assignment of every embedding is returned
            as ``"cluster_probs"``; train it with ``loss.clustering`` (docs/training.md,
            "Joint deep clustering").
        cluster_alpha: Student-t degrees of freedom α of that soft assignment.
        forecast_leads: 0 (default: no forecasting pretext; the model is exactly the plain
            autoencoder, same parameters and outputs) or L ≥ 1: add a 1×1 conv
            ``forecast_out`` (state-dict keys ``forecast_out.*``) on the decoder's last
            hidden states that predicts the next L steps of the input from each step,

            .. math::
                \hat x_{t+\ell\,|\,t} = \big[\mathrm{Conv}'_{1\times1}(g^{(L)}_t)
                \big]_\ell,\qquad \ell = 1..L,

            returned as ``"forecast"``. The decoder is a forward recurrence that reads the
            input only through ``z``, so :math:`\hat x_{t+\ell|t}` depends on
            :math:`z_1..z_t` only *if the head is causal*: a bidirectional temporal
            attention would hand ``z_t`` the very steps to be predicted, so L ≥ 1 requires
            ``head_kwargs={"causal": True}`` (ValueError otherwise). Train it with
            ``loss.forecast`` (docs/training.md, "Forecasting pretext").

    Inputs: ``x, times=None, mask=None, return_attention=False`` — as for
    :class:`~faconvlstm.models.Encoder`.

    Outputs: dict with
        - ``"recon"``: ``(B, T, C, H, W)``;
        - ``"embeddings"``: ``(B, T, E)``;
        - ``"hidden"``: ``(B, T, F_L, H', W')``, the encoder's last hidden states;
        - ``"states"``: the encoder's last ``(h, c)`` per layer;
        - ``"temporal_attention"``: ``(B, heads, T, T)``, only with ``return_attention``;
        - ``"cluster_probs"``: ``(B, T, k)``, the soft assignment ``q`` of each embedding
          to the ``k`` centroids (rows sum to 1), only with ``n_clusters``;
        - ``"forecast"``: ``(B, T, L, C, H, W)``, only with ``forecast_leads = L``:
          ``forecast[:, t, ℓ-1]`` predicts ``x[:, t+ℓ]`` from steps ≤ t (normalised units,
          like ``recon``; the entries whose target lies after the window, t + ℓ ≥ T, have
          no target inside the window and are not scored by ``loss.forecast``).

    Train with :func:`faconvlstm.losses.weighted_mse` of ``recon`` against the original
    ``x`` (NaN cells are ignored there) plus :meth:`regularization_loss`.
    """

    def __init__(
        self,
        in_channels: int,
        filters: Sequence[int] = (32, 32),
        cell: str = "fa",
        embed_dim: int = 32,
        kernel_size: int | Sequence[int] = 3,
        downsample: int | Sequence[int] | None = None,
        boundary: str = "zeros",
        skip_hidden: bool = False,
        layer_kwargs: dict[str, Any] | None = None,
        head_kwargs: dict[str, Any] | None = None,
        n_clusters: int | None = None,
        cluster_alpha: float = 1.0,
        forecast_leads: int = 0,
    ) -> None:
        super().__init__()
        self._config = {
            "in_channels": in_channels,
            "filters": tuple(filters),
            "cell": cell,
            "embed_dim": embed_dim,
            "kernel_size": kernel_size,
            "downsample": downsample,
            "boundary": boundary,
            "skip_hidden": skip_hidden,
            "layer_kwargs": layer_kwargs,
            "head_kwargs": head_kwargs,
        }
        if n_clusters is not None:  # without clustering, the config (and checkpoints) of today
            self._config.update(n_clusters=n_clusters, cluster_alpha=cluster_alpha)
        if isinstance(forecast_leads, bool) or not isinstance(forecast_leads, int):
            raise TypeError(f"forecast_leads must be an int >= 0, got {forecast_leads!r}")
        if forecast_leads < 0:
            raise ValueError(f"forecast_leads must be >= 0 (0: no pretext), got {forecast_leads}")
        if forecast_leads:  # without the pretext, the config (and checkpoints) of today
            self._config.update(forecast_leads=forecast_leads)
        self.encoder = Encoder(
            in_channels,
            filters=filters,
            kernel_size=kernel_size,
            cell=cell,
            downsample=downsample,
            embed_dim=embed_dim,
            boundary=boundary,
            layer_kwargs=layer_kwargs,
            head_kwargs=head_kwargs,
        )
        self.skip_hidden = skip_hidden
        dec_filters = self.encoder.filters[::-1]
        h0, w0 = self.encoder.head.pool_size
        self.lift = nn.Linear(embed_dim, dec_filters[0] * h0 * w0)
        first_in = dec_filters[0] * (2 if skip_hidden else 1)
        self.decoder = nn.ModuleList(
            make_layer(cell, c_in, f, kernel_size, boundary, layer_kwargs)
            for c_in, f in zip((first_in, *dec_filters[:-1]), dec_filters)
        )
        self.out = nn.Conv2d(dec_filters[-1], in_channels, kernel_size=1)
        # created last, so the other parameters are initialised from the same RNG draws as
        # without clustering (the centroids start at zero and are set by k-means)
        self.clustering = (
            None
            if n_clusters is None
            else ClusteringHead(n_clusters, embed_dim=embed_dim, alpha=cluster_alpha)
        )
        self.forecast_leads = forecast_leads
        self.forecast_out: nn.Conv2d | None = None
        if forecast_leads:
            if not self.encoder.head.causal:
                raise ValueError(
                    "forecast_leads > 0 needs a causal subspace head: with bidirectional "
                    "temporal attention the embedding of step t already sees the steps it "
                    "is asked to predict. Pass head_kwargs={'causal': True} (in a config: "
                    "model.head_kwargs.causal: true, which loss.forecast sets by default)"
                )
            # created last, so every other parameter draws what it draws without the pretext
            self.forecast_out = nn.Conv2d(
                dec_filters[-1], in_channels * forecast_leads, kernel_size=1
            )

    def forward(
        self,
        x: torch.Tensor,
        times: Any = None,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> dict[str, Any]:
        b = x.shape[0]
        x, time_mask = prepare_input(x, mask)
        out = self.encoder(x, times=times, mask=time_mask, return_attention=return_attention)
        sizes = [tuple(h.shape[-2:]) for h, _ in out["states"]][::-1]

        h0, w0 = self.encoder.head.pool_size
        g = rearrange(self.lift(out["embeddings"]), "b t (d h w) -> b t d h w", h=h0, w=w0)
        g = resize_sequence(g, sizes[0])
        if self.skip_hidden:
            g = torch.cat([g, out["hidden"]], dim=2)
        for j, layer in enumerate(self.decoder):
            if tuple(g.shape[-2:]) != sizes[j]:
                g = resize_sequence(g, sizes[j])
            g, _, _ = layer(g, mask=time_mask)
        out["recon"] = rearrange(self.out(g.flatten(0, 1)), "(b t) c h w -> b t c h w", b=b)
        if self.forecast_out is not None:
            out["forecast"] = rearrange(
                self.forecast_out(g.flatten(0, 1)),
                "(b t) (l c) h w -> b t l c h w",
                b=b,
                l=self.forecast_leads,
            )
        if self.clustering is not None:
            out["cluster_probs"] = self.clustering.soft_assign(out["embeddings"])
        return out

    def regularization_loss(self) -> torch.Tensor:
        """The head's weighted orthogonality penalty (0 when disabled)."""
        return self.encoder.regularization_loss()
