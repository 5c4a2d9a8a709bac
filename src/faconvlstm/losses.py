"""Training losses: latitude-weighted, masked MSE and the subspace orthogonality penalty.

Latitude weights follow WeatherBench2 (Rasp et al., "WeatherBench 2: A benchmark for the
next generation of data-driven global weather models", JAMES 2024): each grid row is
weighted by the area of its cell, ``sin φ_{j+½} − sin φ_{j−½}``, normalised to mean 1, so
that a loss on a regular lat-lon grid is an area mean rather than an over-count of the
polar rows. The orthogonality penalty ``‖W Wᵀ − I‖²_F`` keeps the rows of the subspace
head's projection close to an orthonormal basis (docs/design.md §2.3), the learned analogue of EOFs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["latitude_weights", "latitude_weights_numpy", "orthogonality_penalty", "weighted_mse"]


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
