"""Climate indices computed from gridded fields: the probe targets climate scientists know.

- :func:`~faconvlstm.evaluation.interpretability.nino34_index` — the Niño-3.4 box mean of
  SST (5°S–5°N, 170°W–120°W), ENSO;
- :func:`nao_index` — the North Atlantic Oscillation as the leading EOF's principal
  component of 500 hPa geopotential height anomalies over 20°–80°N, 90°W–40°E
  (Hurrell 1995; NOAA CPC's and the ``eofs`` package's convention), with the EOF fitted on
  a training period only;
- :func:`jet_index` — the strength (m s⁻¹) or latitude (degrees) of the eddy-driven jet:
  the maximum over a latitude band of the zonal-mean zonal wind at one level
  (e.g. Woollings et al. 2010 use 850–700 hPa over the North Atlantic).

All take an ``xarray.DataArray`` with a time dimension and latitude / longitude dimensions
(``lat``/``lon`` or WeatherBench2's ``latitude``/``longitude``, found automatically) and
return an index ``(time,)``. Missing values (NaN, e.g. land in SST) are skipped in means.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from faconvlstm.evaluation.interpretability import lon_in_range
from faconvlstm.evaluation.quality import _spatial_dims
from faconvlstm.models.eof import EOFEmbedding

__all__ = ["jet_index", "nao_index"]


def nao_index(
    z: xr.DataArray,
    *,
    train: xr.DataArray | None = None,
    lat_range: tuple[float, float] = (20.0, 80.0),
    lon_range: tuple[float, float] = (-90.0, 40.0),
    time_dim: str = "time",
    lat_dim: str | None = None,
    lon_dim: str | None = None,
) -> xr.DataArray:
    """North Atlantic Oscillation index: the standardised leading principal component of
    geopotential-height anomalies over the North Atlantic sector.

    With Z the √cos φ-weighted anomalies (training-period mean removed) of ``train`` (default:
    ``z`` itself) inside the sector, ``Z = U S Vᵀ``; the index of a field x is
    ``((x − x̄)·w) v₁ / σ₁`` with v₁ the leading EOF and σ₁ the standard deviation of the
    training period's PC (so the training period has unit variance). Sign convention: a
    positive index is low pressure in the north of the sector (Iceland) and high in the south
    (Azores) — v₁ is flipped if its mean loading north of the sector's middle latitude
    exceeds its mean loading south of it.

    Args:
        z: geopotential height (or its anomalies), ``(time, lat, lon)``, any units.
        train: the period the EOF is fitted on (same grid); default ``z``. Fit on the training
            years only and apply to held-out years, or the index has seen them.
        lat_range, lon_range: the sector in degrees (longitudes in either convention).

    Returns:
        ``(time,)`` index of ``z``, dimensionless.
    """
    lat_dim, lon_dim = _spatial_dims(z, lat_dim, lon_dim)
    train = z if train is None else train

    def sector(da: xr.DataArray) -> xr.DataArray:
        lat = da[lat_dim]
        keep = (lat >= min(lat_range)) & (lat <= max(lat_range))
        box = da.where(keep & lon_in_range(da[lon_dim], lon_range), drop=True)
        if box.sizes.get(lat_dim, 0) == 0 or box.sizes.get(lon_dim, 0) == 0:
            raise ValueError(
                f"the NAO sector lat {lat_range}, lon {lon_range} holds no grid point of the field"
            )
        return box.transpose(time_dim, lat_dim, lon_dim)

    fit_box = sector(train)
    eof = EOFEmbedding(1, time_dim=time_dim, lat_dim=lat_dim).fit(fit_box)
    pattern = eof.components_[0].reshape(fit_box.shape[1:])
    lats = fit_box[lat_dim].values
    middle = 0.5 * (lats.min() + lats.max())
    north = np.nanmean(pattern[lats > middle])
    south = np.nanmean(pattern[lats <= middle])
    sign = -1.0 if north > south else 1.0
    pc_train = sign * eof.transform(fit_box)[:, 0]
    scale = float(np.std(pc_train)) or 1.0
    pc = sign * eof.transform(sector(z))[:, 0] / scale
    return xr.DataArray(pc, dims=(time_dim,), coords={time_dim: z[time_dim].values}, name="nao")


def jet_index(
    u: xr.DataArray,
    *,
    lat_range: tuple[float, float] = (20.0, 70.0),
    lon_range: tuple[float, float] | None = None,
    what: Literal["strength", "latitude"] = "strength",
    time_dim: str = "time",
    lat_dim: str | None = None,
    lon_dim: str | None = None,
) -> xr.DataArray:
    """Jet strength or latitude from the zonal-mean zonal wind at one level.

    ``ū(t, φ)`` is the mean of ``u`` over longitude (all longitudes, or ``lon_range`` for a
    sector jet); the jet strength is ``max_φ ū(t, φ)`` over ``lat_range`` (units of ``u``,
    m s⁻¹) and its latitude the φ of that maximum (degrees north).

    Args:
        u: zonal wind at one level, ``(time, lat, lon)``.
        lat_range: the band searched (degrees; (20, 70) is the northern eddy-driven jet,
            (−70, −20) the southern).
        what: ``"strength"`` or ``"latitude"``.

    Returns:
        ``(time,)`` index.
    """
    lat_dim, lon_dim = _spatial_dims(u, lat_dim, lon_dim)
    band = u.where((u[lat_dim] >= min(lat_range)) & (u[lat_dim] <= max(lat_range)), drop=True)
    if lon_range is not None:
        band = band.where(lon_in_range(band[lon_dim], lon_range), drop=True)
    if band.sizes.get(lat_dim, 0) == 0:
        raise ValueError(f"the jet band lat {lat_range} holds no grid latitude of the field")
    zonal = band.mean(lon_dim, skipna=True).transpose(time_dim, lat_dim)
    values = zonal.values
    if what == "strength":
        out = np.nanmax(values, axis=1)
    elif what == "latitude":
        out = zonal[lat_dim].values[np.nanargmax(values, axis=1)].astype(float)
    else:
        raise ValueError(f"what must be 'strength' or 'latitude', got {what!r}")
    return xr.DataArray(
        out, dims=(time_dim,), coords={time_dim: u[time_dim].values}, name=f"jet_{what}"
    )
