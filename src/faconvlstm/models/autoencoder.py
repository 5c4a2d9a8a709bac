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

import numpy as np
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
from faconvlstm.models.eof import EOFEmbedding

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
        eof_path: False (default: exactly the plain autoencoder) or True: add a fixed
            linear EOF path beside the learned one (state-dict keys ``eof_*``), so that the
            model starts at the best linear code and learns a correction to it,

            .. math::
                p_t &= \big((x_t - \mu)\circ w\big) V_E^\top, \qquad
                z_t = p_t + \gamma_z\, z^{\text{learned}}_t,\\
                \hat x_t &= \big(z_t V_E\big) \oslash w + \mu
                + \gamma_x\, \hat x^{\text{learned}}_t(z),

            with ``V_E`` the ``(E, C·H·W)`` leading multivariate EOFs of the normalised
            training period, ``μ`` its mean state, ``w`` the √cos φ weights
            (:class:`~faconvlstm.models.EOFEmbedding`; missing cells are zero anomaly),
            ``z^learned`` the encoder's embedding and ``x̂^learned`` the decoder's
            reconstruction from ``z``. ``V_E``, ``μ`` are fixed buffers set once by
            :meth:`init_eof_path` (``faconvlstm fit`` calls it on the training period
            before the first step; a resumed run loads them from the checkpoint); the
            gates ``γ = (γ_z, γ_x)`` (``eof_gate``) are learned and start at 0, so the
            untrained model *is* the E-EOF reconstruction and its embedding the principal
            components. Both parts of the reconstruction read ``z`` only, so the
            embedding stays a bottleneck of E numbers per step, the width of the EOF
            baseline it is compared with (until 2026-12-07 the linear part read ``p``, a
            second E-number path around ``z``; docs/claim.md, "The EOF path's bypass").
            It answers whether a learned model adds anything to EOFs on held-out years
            (docs/claim.md). Needs ``grid``; the path is grid-specific.
        grid: ``(H, W)`` of the input grid, needed by (and only by) ``eof_path``; set from
            the data by :func:`faconvlstm.training.build_model`.
        decoder: ``"recurrent"`` (default: the decoder layers run over the window's steps
            in order, so :math:`\hat x_t` depends on :math:`z_1..z_t`) or ``"per_step"``:
            the same layers, same parameters, run on every step as a sequence of length one
            (time folded into the batch), so that

            .. math:: \hat x_t = \mathrm{Dec}(z_t)

            and each step's embedding alone must reconstruct its step, as each day's
            principal components do for the EOF baseline. A recurrent decoder carries what
            it has read in its state, so a slowly varying part of the field need be in the
            embedding of only one step of a window (docs/claim.md, "A decoder without memory").
            An FA decoder layer then attends at every step (each step is its sequence's
            last).

    Inputs: ``x, times=None, mask=None, return_attention=False`` — as for
    :class:`~faconvlstm.models.Encoder`.

    Outputs: dict with
        - ``"recon"``: ``(B, T, C, H, W)``;
        - ``"embeddings"``: ``(B, T, E)`` (with ``eof_path``, ``z = p + γ_z z^learned``);
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

    eof_encode: torch.Tensor
    eof_decode: torch.Tensor
    eof_mean: torch.Tensor
    eof_initialized: torch.Tensor

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
        eof_path: bool = False,
        grid: Sequence[int] | None = None,
        decoder: str = "recurrent",
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
        if eof_path:  # without the path, the config (and checkpoints) of today
            if grid is None or len(tuple(grid)) != 2 or min(int(g) for g in grid) < 1:
                raise ValueError(
                    "eof_path=True needs grid=(H, W), the input grid the EOFs are fitted on "
                    f"(faconvlstm fit sets it from the data), got grid={grid!r}"
                )
            self._config.update(eof_path=True, grid=tuple(int(g) for g in grid))
        elif grid is not None:
            raise ValueError("grid is only used by eof_path=True; remove it or set eof_path")
        if decoder not in ("recurrent", "per_step"):
            raise ValueError(f"decoder must be 'recurrent' or 'per_step', got {decoder!r}")
        if decoder != "recurrent":  # the default keeps the config (and checkpoints) of today
            self._config.update(decoder=decoder)
        self.decoder_kind = decoder
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
        self.eof_path = bool(eof_path)
        self.eof_gate: nn.Parameter | None = None
        if self.eof_path:  # created last: every other parameter draws what it draws without
            n_state = in_channels * int(grid[0]) * int(grid[1])  # type: ignore[index]
            self.eof_shape = (in_channels, int(grid[0]), int(grid[1]))  # type: ignore[index]
            self.register_buffer("eof_encode", torch.zeros(embed_dim, n_state))
            self.register_buffer("eof_decode", torch.zeros(embed_dim, n_state))
            self.register_buffer("eof_mean", torch.zeros(n_state))
            self.register_buffer("eof_initialized", torch.tensor(False))
            self.eof_gate = nn.Parameter(torch.zeros(2))

    @torch.no_grad()
    def init_eof_path(self, fields: Any, lat: Any) -> EOFEmbedding:
        """Fit the EOF path on the training period and store it (``eof_path=True`` only).

        Args:
            fields: ``(T, C, H, W)`` normalised training fields, NaN where missing (the
                input the EOF baseline of ``compare`` is fitted on).
            lat: ``(H,)`` latitudes in degrees.

        Returns:
            The fitted :class:`~faconvlstm.models.EOFEmbedding` (its ``transform`` equals
            the embedding of the model while ``γ = 0``).
        """
        if not self.eof_path:
            raise RuntimeError("init_eof_path needs a model built with eof_path=True")
        fields = np.asarray(fields, dtype=np.float64)
        if fields.ndim != 4 or tuple(fields.shape[1:]) != self.eof_shape:
            raise ValueError(
                f"init_eof_path expects fields (T, C, H, W) with (C, H, W) = {self.eof_shape}, "
                f"got shape {fields.shape}"
            )
        eof = EOFEmbedding(n_eofs=self.eof_encode.shape[0]).fit(fields, lat=lat)
        k = eof.components_.shape[0]
        w = eof.weights_
        safe_w = np.where(w > 0, w, np.inf)
        dev, dt = self.eof_encode.device, self.eof_encode.dtype
        self.eof_encode.zero_()
        self.eof_decode.zero_()
        self.eof_encode[:k] = torch.as_tensor(eof.components_ * w, device=dev, dtype=dt)
        self.eof_decode[:k] = torch.as_tensor(eof.components_ / safe_w, device=dev, dtype=dt)
        self.eof_mean.copy_(torch.as_tensor(np.nan_to_num(eof.mean_), device=dev, dtype=dt))
        self.eof_initialized.fill_(True)
        return eof

    def eof_pcs(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Principal components ``(B, T, E)`` of ``x`` ``(B, T, C, H, W)`` on the EOF path."""
        if tuple(x.shape[2:]) != self.eof_shape:
            raise ValueError(
                f"this model's EOF path was fitted on (C, H, W) = {self.eof_shape}; the input "
                f"has {tuple(x.shape[2:])}: the path is grid-specific, regrid the input"
            )
        if not bool(self.eof_initialized):
            raise RuntimeError(
                "the EOF path (eof_path=True) was never fitted: call "
                "model.init_eof_path(train_fields, lat) before training (faconvlstm fit does)"
            )
        anom = torch.where(valid, x - self.eof_mean.view(self.eof_shape), x.new_zeros(()))
        return anom.flatten(2) @ self.eof_encode.to(x.dtype).T

    def eof_reconstruct(self, pcs: torch.Tensor) -> torch.Tensor:
        """The E-EOF truncation ``(B, T, C, H, W)`` of principal components ``(B, T, E)``:
        ``(p V_E) ⊘ w + μ``, the linear part of the reconstruction of the EOF path."""
        linear = pcs @ self.eof_decode.to(pcs.dtype) + self.eof_mean
        return linear.view(*pcs.shape[:2], *self.eof_shape)

    def encode(
        self, x: torch.Tensor, times: Any = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The embeddings ``(B, T, E)`` of ``forward(x, times, mask)["embeddings"]``, without
        running the decoder (the protocol embeds whole records many times over: the
        training years for the probes, every perturbation of the robustness curves)."""
        return self._encode(x, times, mask, False)[0]["embeddings"]

    def _encode(
        self, x: torch.Tensor, times: Any, mask: torch.Tensor | None, return_attention: bool
    ) -> tuple[dict[str, Any], torch.Tensor | None, torch.Tensor | None]:
        """The encoder's outputs (with the EOF path's embedding ``z = p + γ_z z_learned``),
        the time mask and the principal components ``p`` (``None`` off the EOF path)."""
        raw = x
        x, time_mask = prepare_input(x, mask)
        out = self.encoder(x, times=times, mask=time_mask, return_attention=return_attention)
        pcs = None
        if self.eof_gate is not None:
            valid = ~torch.isnan(raw)
            if mask is not None and mask.ndim >= 3:
                valid = valid & mask.to(device=x.device, dtype=torch.bool)
            pcs = self.eof_pcs(x, valid)
            out["embeddings"] = pcs + self.eof_gate[0] * out["embeddings"]
        return out, time_mask, pcs

    def forward(
        self,
        x: torch.Tensor,
        times: Any = None,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> dict[str, Any]:
        b = x.shape[0]
        out, time_mask, pcs = self._encode(x, times, mask, return_attention)
        sizes = [tuple(h.shape[-2:]) for h, _ in out["states"]][::-1]

        h0, w0 = self.encoder.head.pool_size
        g = rearrange(self.lift(out["embeddings"]), "b t (d h w) -> b t d h w", h=h0, w=w0)
        g = resize_sequence(g, sizes[0])
        if self.skip_hidden:
            g = torch.cat([g, out["hidden"]], dim=2)
        dec_mask = time_mask
        if self.decoder_kind == "per_step":  # every step its own sequence of length one
            g = g.flatten(0, 1).unsqueeze(1)
            dec_mask = None if time_mask is None else time_mask.reshape(-1, 1)
        for j, layer in enumerate(self.decoder):
            if tuple(g.shape[-2:]) != sizes[j]:
                g = resize_sequence(g, sizes[j])
            g, _, _ = layer(g, mask=dec_mask)
        if self.decoder_kind == "per_step":
            g = g.reshape(b, -1, *g.shape[2:])
        out["recon"] = rearrange(self.out(g.flatten(0, 1)), "(b t) c h w -> b t c h w", b=b)
        if pcs is not None and self.eof_gate is not None:
            # the linear part reads the embedding z, not the PCs p: the reconstruction then
            # depends on the input only through z's E numbers, as the EOF baseline's does
            linear = self.eof_reconstruct(out["embeddings"])
            out["recon"] = linear + self.eof_gate[1] * out["recon"]
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
