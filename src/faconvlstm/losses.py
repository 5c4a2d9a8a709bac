"""Training losses: latitude-weighted, masked MSE and the subspace orthogonality penalty.

Latitude weights follow WeatherBench2 (Rasp et al., "WeatherBench 2: A benchmark for the
next generation of data-driven global weather models", JAMES 2024): each grid row is
weighted by the area of its cell, ``sin φ_{j+½} − sin φ_{j−½}``, normalised to mean 1, so
that a loss on a regular lat-lon grid is an area mean rather than an over-count of the
polar rows. The orthogonality penalty ``‖W Wᵀ − I‖²_F`` keeps the rows of the subspace
head's projection close to an orthonormal basis (docs/design.md §2.3), the learned analogue of EOFs.
:func:`window_contrastive_loss` is the window-contrastive term of the autoencoder
objective (``loss.contrastive``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "latitude_weights",
    "latitude_weights_numpy",
    "orthogonality_penalty",
    "weighted_mse",
    "window_contrastive_loss",
]


def latitude_weights_numpy(lat_deg: np.ndarray | Sequence[float]) -> np.ndarray:
    """WeatherBench2 cell-area weights of the rows of a lat-lon grid, normalised to mean 1.

    .. math::  w_j \\propto \\sin\varphi_{j+1/2} - \\sin\varphi_{j-1/2}

    Cell edges lie halfway between neighbouring latitudes; the outer edges lie half a
    spacing beyond the first and last latitude, clipped at ±90°. For global grids (with or
    without the poles) this equals WeatherBench2's ``get_lat_weights``; for regional grids
    the outer cells keep their own size instead of stretching to the poles. Ascending or
    descending latitudes both work. This is the one implementation in the package
    (:func:`latitude_weights` and :func:`faconvlstm.data.latitude_weights` call it).

    Args:
        lat_deg: latitudes in degrees north, shape ``(H,)``.

    Returns:
        float64 array ``(H,)``.
    """
    lat = np.asarray(lat_deg, dtype=np.float64).ravel()
    if lat.size == 1:
        return np.ones(1)
    mid = 0.5 * (lat[1:] + lat[:-1])
    edges = np.concatenate(
        [[lat[0] - (lat[1] - lat[0]) / 2], mid, [lat[-1] + (lat[-1] - lat[-2]) / 2]]
    )
    edges = np.deg2rad(np.clip(edges, -90.0, 90.0))
    area = np.abs(np.sin(edges[1:]) - np.sin(edges[:-1]))
    return area / area.mean()


def latitude_weights(lat_deg: torch.Tensor | np.ndarray | Sequence[float]) -> torch.Tensor:
    """:func:`latitude_weights_numpy` as a float32 tensor ``(H,)`` (for losses)."""
    if isinstance(lat_deg, torch.Tensor):
        lat_deg = lat_deg.detach().to(device="cpu", dtype=torch.float64).flatten().numpy()
    return torch.from_numpy(latitude_weights_numpy(lat_deg)).float()


def weighted_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    lat_weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Latitude-weighted mean squared error over valid cells.

    .. math::
        \mathrm{MSE} = \frac{\sum w_j\, m\, (\hat y - y)^2}{\sum w_j\, m},

    summed over every element, where ``w_j`` is the weight of the element's latitude row
    and ``m = 1`` for valid elements: ``mask`` True and ``target`` not NaN. Invalid elements
    contribute exactly nothing (their error is replaced, not multiplied, by 0, so a NaN
    target never leaks into the value or the gradient). Computed in float32 under AMP.
    With no valid element the loss is 0.

    Args:
        pred: prediction ``(..., H, W)``.
        target: truth, same shape; NaN marks missing values.
        lat_weights: ``(H,)`` row weights (see :func:`latitude_weights`); None = uniform.
        mask: bool, broadcastable to ``target``, True = valid (e.g. an ocean mask ``(H, W)``).

    Returns:
        scalar tensor.
    """
    pred = pred.float()
    target = target.float()
    valid = ~torch.isnan(target)
    if mask is not None:
        valid = valid & mask.to(device=target.device, dtype=torch.bool)
    sq = torch.where(valid, pred - torch.nan_to_num(target), pred.new_zeros(())).square()
    weight = valid.to(pred.dtype)
    if lat_weights is not None:
        weight = weight * lat_weights.to(device=pred.device, dtype=pred.dtype)[:, None]
    weight = weight.expand_as(sq)
    return (sq * weight).sum() / weight.sum().clamp_min(torch.finfo(pred.dtype).tiny)


def orthogonality_penalty(weight: torch.Tensor) -> torch.Tensor:
    """``‖W Wᵀ − I‖²_F`` for the rows of ``weight`` ``(m, ...)`` (flattened to ``(m, n)``).

    Zero exactly when the ``m`` rows are orthonormal (possible for ``m ≤ n``).
    """
    w = weight.float().flatten(1)
    gram = w @ w.T
    return (gram - torch.eye(w.shape[0], device=w.device, dtype=w.dtype)).square().sum()


def window_contrastive_loss(
    z: torch.Tensor, temperature: float = 0.1, valid: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Window-contrastive (InfoNCE) loss of per-step embeddings: steps of one window attract.

    Every step embedding is an anchor; the other steps of its own window are its
    positives, the steps of every other window in the batch its negatives (the supervised
    contrastive loss of Khosla et al., NeurIPS 2020, with the window as the label; the
    temporal-neighbour objective of time-contrastive learning). With
    :math:`u_{bt} = z_{bt} / \lVert z_{bt} \rVert`, :math:`a = (b, t)` an anchor,
    :math:`P(a) = \{(b, s) : s \ne t\}` and :math:`A(a)` every valid step but :math:`a`:

    .. math::
        L = -\frac{1}{|\mathcal A|}\sum_{a}\frac{1}{|P(a)|}\sum_{p\in P(a)}
            \log\frac{\exp(u_a\cdot u_p/\tau)}{\sum_{n\in A(a)}\exp(u_a\cdot u_n/\tau)}

    A code that minimises it carries what is constant over a window and differs between
    windows (a persistent regime, a slow oscillation, the season) — information that a
    one-day reconstruction does not ask for. Negatives are the windows of the local batch
    only (under DDP each rank contrasts its own batch).

    Args:
        z: embeddings ``(B, T, E)`` (any units; only their directions count).
        temperature: :math:`\tau > 0`.
        valid: optional ``(B, T)`` bool, the steps that take part (an anchor needs at least
            one valid positive to count).

    Returns:
        scalar tensor (nats): ``log(B·T − 1)`` for embeddings that carry nothing of the
        window (all directions equal), falling towards 0 as each window's steps align
        and the windows separate. A batch of one window has no negatives: the loss is 0.
    """
    if z.dim() != 3:
        raise ValueError(
            f"window_contrastive_loss expects embeddings (B, T, E), got {tuple(z.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b, t, _ = z.shape
    if valid is None:
        valid = torch.ones(b, t, dtype=torch.bool, device=z.device)
    valid = valid.reshape(b * t)
    u = torch.nn.functional.normalize(z.reshape(b * t, -1).float(), dim=-1)
    logits = (u @ u.T) / temperature
    window = torch.arange(b, device=z.device).repeat_interleave(t)
    eye = torch.eye(b * t, dtype=torch.bool, device=z.device)
    others = valid[None, :] & valid[:, None] & ~eye  # the denominator's set A(a)
    positive = others & (window[:, None] == window[None, :])
    denominator = logits.masked_fill(~others, float("-inf"))
    log_prob = logits - torch.logsumexp(denominator, dim=1, keepdim=True)
    n_pos = positive.sum(1)
    anchors = valid & (n_pos > 0) & (others.sum(1) > n_pos)
    if not bool(anchors.any()):
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(1)) / n_pos.clamp(min=1)
    return per_anchor[anchors].mean().to(z.dtype)
