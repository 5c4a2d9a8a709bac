"""EOF/PCA embeddings: the linear baseline climate scientists trust.

Empirical orthogonal functions (Lorenz 1956; e.g. Hannachi et al., 2007, "Empirical
orthogonal functions and related techniques in atmospheric science", Int. J. Climatol.)
are the principal components of the area-weighted anomaly field. Every learned
representation is compared with them through the same metrics.

Multivariate EOFs: all variables (channels) and grid points of one time step form one state
vector, so variables should be on comparable scales (normalised inputs are). Each grid point
is weighted by √cos φ so that the covariance — not the data — is area-weighted, the standard
convention (and that of the ``eofs`` package, to which this SVD is equivalent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["EOFEmbedding"]


def _state_vectors(x: Any, lat: Any, time_dim: str, lat_dim: str) -> tuple[np.ndarray, np.ndarray]:
    """``(T, P)`` state vectors and their ``(P,)`` √cos φ weights.

    ``x`` is a DataArray with ``time_dim`` and ``lat_dim`` dimensions (others are stacked into
    the state), or an array ``(T, [C,] H, W)`` with latitudes ``lat`` in degrees.
    """
    if isinstance(x, xr.DataArray):
        x = x.transpose(time_dim, ...)
        space = x.isel({time_dim: 0}, drop=True)
        lat_w = np.sqrt(np.clip(np.cos(np.deg2rad(x[lat_dim])), 0.0, None))
        w = lat_w.broadcast_like(space).transpose(*space.dims).values.ravel()
        return x.values.reshape(x.sizes[time_dim], -1).astype(np.float64), w
    values = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if lat is None:
        raise ValueError("array input needs its latitudes: pass lat=")
    lat_w = np.sqrt(np.clip(np.cos(np.deg2rad(np.asarray(lat, float))), 0.0, None))
    w = np.broadcast_to(lat_w[:, None], values.shape[-2:])
    w = np.broadcast_to(w, values.shape[1:]).ravel()
    return values.reshape(values.shape[0], -1), w


class EOFEmbedding:
    """Per-time-step embedding by projection on the leading multivariate EOFs.

    Fit on the training period: with X the ``(T, P)`` anomalies (time mean removed) times the
    √cos φ weights, ``X = U S Vᵀ`` (thin SVD); the EOFs are the first ``n_eofs`` rows of Vᵀ and
    the embedding of a field x is its principal components ``((x − x̄)·w) Vₖ``.
    Missing values (NaN) are treated as zero anomaly.

    Args:
        n_eofs: embedding width E (number of EOFs kept).
        time_dim, lat_dim: dimension names for xarray input.

    Attributes (after :meth:`fit`):
        mean_: ``(P,)`` training-period mean state.
        components_: ``(E, P)`` EOFs (orthonormal rows, in weighted space).
        explained_variance_ratio_: ``(E,)`` share of the weighted variance per EOF.

    Shapes:
        ``x``: DataArray ``(time, ..., lat, lon)`` or array ``(T, [C,] H, W)`` plus ``lat``.
        :meth:`transform` returns ``(T, E)``; :meth:`inverse_transform` ``(T, P)`` reshaped
        like one time step of the fitted input.
    """

    def __init__(self, n_eofs: int = 32, *, time_dim: str = "time", lat_dim: str = "lat"):
        self.n_eofs = n_eofs
        self.time_dim = time_dim
        self.lat_dim = lat_dim

    def fit(self, x: Any, lat: Any = None) -> EOFEmbedding:
        """Compute the EOFs of the training period ``x``."""
        values, w = _state_vectors(x, lat, self.time_dim, self.lat_dim)
        self.mean_ = np.nanmean(values, axis=0)
        self.weights_ = w
        self.state_shape_ = self._state_shape(x)
        anom = np.nan_to_num((values - self.mean_) * w)
        _, s, vt = np.linalg.svd(anom, full_matrices=False)
        k = min(self.n_eofs, vt.shape[0])
        self.components_ = vt[:k]
        var = s**2
        self.explained_variance_ratio_ = var[:k] / var.sum()
        return self

    def transform(self, x: Any, lat: Any = None) -> np.ndarray:
        """Principal components ``(T, E)`` of ``x`` on the fitted EOFs."""
        values, _ = _state_vectors(x, lat, self.time_dim, self.lat_dim)
        return np.nan_to_num((values - self.mean_) * self.weights_) @ self.components_.T

    def fit_transform(self, x: Any, lat: Any = None) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same data."""
        return self.fit(x, lat).transform(x, lat)

    def inverse_transform(self, pcs: Any) -> np.ndarray:
        """Fields ``(T, *state)`` rebuilt from principal components ``(T, E)``.

        The truncation to E EOFs is the only loss (points with zero weight, at the poles, come
        back as the mean).
        """
        weighted = np.asarray(pcs, dtype=np.float64) @ self.components_
        safe_w = np.where(self.weights_ > 0, self.weights_, np.inf)
        return (weighted / safe_w + self.mean_).reshape(-1, *self.state_shape_)

    def _state_shape(self, x: Any) -> tuple[int, ...]:
        if isinstance(x, xr.DataArray):
            return tuple(s for d, s in x.sizes.items() if d != self.time_dim)
        return tuple(x.shape[1:])
