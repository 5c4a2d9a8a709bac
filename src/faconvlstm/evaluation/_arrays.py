"""Small conversions shared by the evaluation metrics (not public API).

Metrics accept numpy arrays, xarray objects or torch tensors; inside they work on float64
numpy so that results do not depend on the framework the embeddings came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a float64 numpy array (torch tensors are detached and moved to CPU)."""
    if isinstance(x, (xr.DataArray, xr.Variable)):
        x = x.values
    elif hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def as_samples(z: Any) -> np.ndarray:
    """Embeddings as a 2-D ``(n_samples, n_features)`` array.

    ``(T, E)`` is kept; ``(B, T, E)`` (a batch of windows) is flattened to ``(B·T, E)``;
    a 1-D array becomes one feature.
    """
    z = to_numpy(z)
    if z.ndim == 1:
        return z[:, None]
    return z.reshape(-1, z.shape[-1])
