"""Quality of reconstructions, forecasts and of the regimes read off the embeddings.

Field metrics follow WeatherBench2 (Rasp et al., 2024, ``weatherbench2/metrics.py``):

- area weights per latitude row are the cell areas ``sin φ_{j+½} − sin φ_{j−½}``, normalised
  to mean 1 (one place: :func:`faconvlstm.losses.latitude_weights`);
- RMSE is the square root of the *time-mean* of the area-weighted spatial-mean squared error;
- ACC is the uncentred anomaly correlation against a day-of-year climatology, computed per
  time step over space and then averaged over time.

Clustering metrics wrap scikit-learn. The composite-based scores (intra/inter-cluster RMSE,
spatial correlation of the cluster composites) are those used to judge multivariate
weather-regime classifications: a good classification has members close to their composite
and composites that differ from each other.

Dimension names: ``time`` unless ``time_dim`` says otherwise; latitude and longitude are
found as ``lat``/``latitude`` and ``lon``/``longitude`` (the WeatherBench2 datasets use
the long names; an explicit ``lat_dim``/``lon_dim`` wins). Other dimensions (``level``,
``prediction_timedelta``, ``channel``) are kept in the result. Numpy arrays are read as
``(time, [channel,] lat, lon)`` — or ``(window, time, channel, lat, lon)``, where every
leading dimension counts as time — together with the latitudes ``lat`` in degrees.

The day-of-year climatology is :func:`faconvlstm.data.compute_climatology`, the one that
normalises the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from threadpoolctl import threadpool_limits

from faconvlstm.data.stats import compute_climatology
from faconvlstm.evaluation._arrays import as_samples, to_numpy
from faconvlstm.losses import latitude_weights

__all__ = [
    "acc",
    "ari_nmi_truth",
    "cluster_quality",
    "dayofyear_climatology",
    "intra_inter_cluster_rmse",
    "lat_weighted_rmse",
    "spatial_correlation_matrix",
]

_NUMPY_DIMS = {
    3: ("time", "lat", "lon"),
    4: ("time", "channel", "lat", "lon"),
    5: ("window", "time", "channel", "lat", "lon"),
}


_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")


def _as_field(x: Any, lat: Any, lat_dim: str | None) -> xr.DataArray:
    """A labelled field; numpy/torch input gets the dimension names of ``_NUMPY_DIMS``."""
    if isinstance(x, xr.DataArray):
        return x
    values = to_numpy(x)
    if values.ndim not in _NUMPY_DIMS:
        raise ValueError(f"expected a 3-, 4- or 5-D field, got shape {values.shape}")
    if lat is None:
        raise ValueError("numpy fields need their latitudes: pass lat=")
    dims = _NUMPY_DIMS[values.ndim]
    field = xr.DataArray(values, dims=dims, coords={"lat": np.asarray(lat, dtype=float)})
    return field.rename({"lat": lat_dim}) if lat_dim else field


def _find_dim(field: xr.DataArray, given: str | None, names: tuple[str, ...], arg: str) -> str:
    """``given`` if set, else the first of ``names`` among the field's dimensions."""
    if given is not None:
        if given not in field.dims:
            raise ValueError(f"{arg}={given!r} is not a dimension of the field {tuple(field.dims)}")
        return given
    found = next((n for n in names if n in field.dims), None)
    if found is None:
        raise ValueError(
            f"no {' / '.join(names)} dimension among the field's dimensions "
            f"{tuple(field.dims)}: pass {arg}= with the right name"
        )
    return found


def _spatial_dims(field: xr.DataArray, lat_dim: str | None, lon_dim: str | None) -> tuple[str, str]:
    """The (latitude, longitude) dimension names of ``field`` (see the module doc)."""
    return (
        _find_dim(field, lat_dim, _LAT_NAMES, "lat_dim"),
        _find_dim(field, lon_dim, _LON_NAMES, "lon_dim"),
    )


def _area_weights(field: xr.DataArray, lat_dim: str) -> xr.DataArray:
    lat = field[lat_dim]
    w = np.asarray(latitude_weights(lat.values), dtype=np.float64)
    return xr.DataArray(w, dims=(lat_dim,), coords={lat_dim: lat})


def _time_dims(field: xr.DataArray, time_dim: str) -> list[str]:
    """``time_dim`` plus the ``window`` dimension of flattened numpy batches, where present."""
    return [d for d in ("window", time_dim) if d in field.dims]


def _spatial_mean(field: xr.DataArray, weights: xr.DataArray, lat_dim: str, lon_dim: str):
    # xarray's weighted mean renormalises over the valid (non-NaN) cells: masked land or
    # missing data drop out instead of counting as zero error.
    return field.weighted(weights).mean((lat_dim, lon_dim))


def lat_weighted_rmse(
    prediction: Any,
    target: Any,
    lat: Any = None,
    *,
    time_dim: str = "time",
    lat_dim: str | None = None,
    lon_dim: str | None = None,
) -> xr.DataArray:
    """Latitude-weighted RMSE, WeatherBench2 convention.

    .. math:: \\mathrm{RMSE} = \\sqrt{\\tfrac{1}{T}\\sum_t \\tfrac{1}{HW}\\sum_{j,k}
              w_j\\,(p_{tjk} - y_{tjk})^2}

    with w_j the area weights (mean 1). NaNs in either input are excluded.

    Args:
        prediction, target: fields of the same shape, in the target's units.
        lat: latitudes in degrees (numpy input only).
        time_dim: the dimension averaged before the square root.
        lat_dim, lon_dim: the spatial dimensions (default: found, see the module doc).

    Returns:
        RMSE in the target's units over the remaining dimensions (e.g. ``channel``,
        ``level``, ``prediction_timedelta``); a 0-d DataArray for a single variable.
    """
    p = _as_field(prediction, lat, lat_dim)
    y = _as_field(target, lat, lat_dim)
    lat_dim, lon_dim = _spatial_dims(y, lat_dim, lon_dim)
    mse = _spatial_mean((p - y) ** 2, _area_weights(y, lat_dim), lat_dim, lon_dim)
    return np.sqrt(mse.mean(_time_dims(mse, time_dim)))


def dayofyear_climatology(
    field: xr.DataArray, *, time_dim: str = "time", smooth_days: int = 0
) -> xr.DataArray:
    """Day-of-year mean climatology ``(dayofyear, ...)`` of a field with a time coordinate.

    .. math:: \\bar x(k) = \\frac{\\sum_{|j - k| \\le w/2} S(j)}{\\sum_{|j - k| \\le w/2} N(j)}

    with ``S(j)`` the sum and ``N(j)`` the count of valid values on day of year ``j`` and
    ``w`` = ``smooth_days`` (circular, so late December and early January pool together);
    this is :func:`faconvlstm.data.compute_climatology`, the WeatherBench2 climatology.

    Args:
        field: DataArray with datetime (numpy or cftime) time stamps along ``time_dim``.
        smooth_days: if > 1, the width ``w`` of the pooling window in days, to damp the
            sampling noise of short records (0 or 1: each day of year on its own).

    Returns:
        ``(dayofyear, ...)`` float32 in the field's units, ``dayofyear`` = 1…366; a day never
        seen is filled by the pooling window, else NaN.
    """
    if time_dim != "time":
        field = field.rename({time_dim: "time"})
    clim = compute_climatology(field, "dayofyear", window=max(int(smooth_days), 1))
    return clim.rename(key="dayofyear")


def acc(
    prediction: Any,
    target: Any,
    climatology: Any,
    lat: Any = None,
    *,
    time_dim: str = "time",
    lat_dim: str | None = None,
    lon_dim: str | None = None,
) -> xr.DataArray:
    """Uncentred anomaly correlation coefficient, WeatherBench2 convention.

    .. math:: \\mathrm{ACC} = \\frac{1}{T}\\sum_t
              \\frac{\\sum_{jk} w_j\\, p'_{tjk}\\, y'_{tjk}}
                    {\\sqrt{\\sum_{jk} w_j\\, p'^2_{tjk}\\;\\sum_{jk} w_j\\, y'^2_{tjk}}},
              \\qquad p' = p - c,\\; y' = y - c

    "Uncentred": the spatial mean of the anomalies is not removed.

    Args:
        prediction, target: fields of the same shape.
        climatology: either a day-of-year climatology with a ``dayofyear`` dimension (see
            :func:`dayofyear_climatology`; the target needs a datetime ``time`` coordinate),
            or an array of the target's shape (already aligned in time).
        lat: latitudes in degrees (numpy input only).
        time_dim: the dimension averaged over (and matched to the day of year).
        lat_dim, lon_dim: the spatial dimensions (default: found, see the module doc).

    Returns:
        ACC in [−1, 1] over the remaining dimensions (e.g. ``channel``, ``level``).
    """
    p = _as_field(prediction, lat, lat_dim)
    y = _as_field(target, lat, lat_dim)
    lat_dim, lon_dim = _spatial_dims(y, lat_dim, lon_dim)
    if isinstance(climatology, xr.DataArray) and "dayofyear" in climatology.dims:
        c = climatology.sel(dayofyear=y[time_dim].dt.dayofyear).drop_vars("dayofyear")
    else:
        c = _as_field(climatology, lat, lat_dim)
    pa, ya = p - c, y - c
    w = _area_weights(y, lat_dim)
    num = _spatial_mean(pa * ya, w, lat_dim, lon_dim)
    den = np.sqrt(
        _spatial_mean(pa**2, w, lat_dim, lon_dim) * _spatial_mean(ya**2, w, lat_dim, lon_dim)
    )
    return (num / den).mean(_time_dims(num, time_dim))


def cluster_quality(z: Any, labels: Any) -> dict[str, float]:
    """Internal clustering scores of a partition of the embeddings (scikit-learn).

    - silhouette ∈ [−1, 1], higher is better (mean of (b − a)/max(a, b), a = mean distance to
      the own cluster, b = to the nearest other one);
    - Davies–Bouldin ≥ 0, lower is better (mean over clusters of the worst
      (s_i + s_j)/d_ij, s = spread, d = centroid distance);
    - Calinski–Harabasz > 0, higher is better (between/within dispersion ratio, scaled by
      (n − k)/(k − 1)).

    Args:
        z: ``(n, E)`` embeddings.
        labels: ``(n,)`` integer cluster labels.

    Returns:
        ``{"silhouette", "davies_bouldin", "calinski_harabasz"}``; NaN when there are fewer
        than two clusters.
    """
    z = as_samples(z)
    labels = np.asarray(labels).ravel()
    if len(np.unique(labels)) < 2:
        return {"silhouette": np.nan, "davies_bouldin": np.nan, "calinski_harabasz": np.nan}
    with threadpool_limits(1):  # small problems; avoids thread pools fighting PyTorch's
        return {
            "silhouette": float(silhouette_score(z, labels)),
            "davies_bouldin": float(davies_bouldin_score(z, labels)),
            "calinski_harabasz": float(calinski_harabasz_score(z, labels)),
        }


def ari_nmi_truth(labels: Any, truth: Any) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information against ground-truth regimes.

    Both are invariant to relabelling; ARI ≈ 0 for a random partition, 1 for a perfect one.
    """
    labels, truth = np.asarray(labels).ravel(), np.asarray(truth).ravel()
    return {
        "ari": float(adjusted_rand_score(truth, labels)),
        "nmi": float(normalized_mutual_info_score(truth, labels)),
    }


def _weighted_samples(
    fields: Any, lat: Any, time_dim: str, lat_dim: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fields as ``(n, P)`` samples with per-column area weights ``(P,)``.

    Every time-like dimension (``time``, and ``window`` for numpy batches) becomes a sample;
    columns with a NaN anywhere (land, missing data) are dropped.
    """
    f = _as_field(fields, lat, lat_dim)
    lat_dim = _find_dim(f, lat_dim, _LAT_NAMES, "lat_dim")
    tdims = _time_dims(f, time_dim)
    f = f.transpose(*tdims, ...)
    space = f.isel(dict.fromkeys(tdims, 0))
    w = _area_weights(f, lat_dim).broadcast_like(space).transpose(*space.dims)
    x = f.values.reshape(-1, space.size)
    w = w.values.ravel()
    valid = np.isfinite(x).all(axis=0)
    return x[:, valid], w[valid]


def _composites(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ks = np.unique(labels)
    return ks, np.stack([x[labels == k].mean(axis=0) for k in ks])


def intra_inter_cluster_rmse(
    fields: Any,
    labels: Any,
    lat: Any = None,
    *,
    time_dim: str = "time",
    lat_dim: str | None = None,
) -> dict[str, Any]:
    """Spatio-temporal RMSE within and between the regimes of a classification.

    With composites μ_k (mean field of the members of cluster k) and the area-weighted mean
    over all variables and grid points ⟨·⟩_w:

    - intra_k = mean over members t of √⟨(x_t − μ_k)²⟩_w (how far members are from their
      composite; lower is better);
    - inter_kl = √⟨(μ_k − μ_l)²⟩_w (how distinct the composites are; higher is better);
    - ratio = mean intra / mean off-diagonal inter (lower is better).

    Args:
        fields: ``(time, [channel,] lat, lon)`` — usually normalised anomalies so that
            variables are comparable.
        labels: ``(time,)`` cluster labels.

    Returns:
        ``{"labels": (k,), "intra": (k,), "inter": (k, k), "ratio": float}``, in the fields'
        units.
    """
    x, w = _weighted_samples(fields, lat, time_dim, lat_dim)
    labels = np.asarray(labels).ravel()
    ks, mu = _composites(x, labels)
    intra = np.array(
        [
            np.sqrt(((x[labels == k] - mu[i]) ** 2 * w).sum(1) / w.sum()).mean()
            for i, k in enumerate(ks)
        ]
    )
    diff = mu[:, None, :] - mu[None, :, :]
    inter = np.sqrt((diff**2 * w).sum(-1) / w.sum())
    off = inter[~np.eye(len(ks), dtype=bool)]
    ratio = float(intra.mean() / off.mean()) if off.size and off.mean() > 0 else np.nan
    return {"labels": ks, "intra": intra, "inter": inter, "ratio": ratio}


def spatial_correlation_matrix(
    fields: Any,
    labels: Any,
    lat: Any = None,
    *,
    time_dim: str = "time",
    lat_dim: str | None = None,
) -> xr.DataArray:
    """Pattern correlation between the composites of every pair of clusters.

    .. math:: r_{kl} = \\frac{\\sum_p w_p\\, \\tilde\\mu_{kp}\\, \\tilde\\mu_{lp}}
              {\\sqrt{\\sum_p w_p \\tilde\\mu_{kp}^2 \\sum_p w_p \\tilde\\mu_{lp}^2}}

    with μ̃ the composite minus its area-weighted spatial mean (a centred pattern
    correlation over all variables and grid points). Distinct regimes have off-diagonal
    values near 0 or negative.

    Returns:
        ``(cluster, cluster_)`` DataArray, ones on the diagonal.
    """
    x, w = _weighted_samples(fields, lat, time_dim, lat_dim)
    ks, mu = _composites(x, np.asarray(labels).ravel())
    mu = mu - (mu * w).sum(1, keepdims=True) / w.sum()
    cov = (mu * w) @ mu.T
    d = np.sqrt(np.diag(cov))
    r = cov / np.outer(d, d)
    return xr.DataArray(r, dims=("cluster", "cluster_"), coords={"cluster": ks, "cluster_": ks})
