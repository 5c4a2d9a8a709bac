"""Climate indices as probe targets: Niño-3.4, NAO and jet, on planted fields and on the
observed samples the ``eofs`` package ships (no download)."""

import numpy as np
import pytest
import xarray as xr

from faconvlstm.data import sample
from faconvlstm.evaluation import jet_index, nao_index, nino34_index
from faconvlstm.evaluation.interpretability import lon_in_range


def _years(da: xr.DataArray) -> np.ndarray:
    return da["time"].dt.year.values


def test_nino34_on_observed_sst_ranks_the_two_super_el_ninos_first():
    # NDJFM-mean SST anomalies 1963/64-2011/12, WB2-style latitude/longitude names: the
    # 1982/83 and 1997/98 El Niños (stamped January 1983 / 1998) are the record's largest.
    sst = sample("sst")["sst"]
    idx = nino34_index(sst)
    top2 = set(_years(sst)[np.argsort(idx.values)[-2:]])
    assert top2 == {1983, 1998}


def test_nao_on_observed_z500_matches_eofs_and_the_known_extremes():
    from eofs.xarray import Eof

    z = sample("z500")["z"].isel(pressure=0)
    idx = nao_index(z)
    years = _years(z)
    order = np.argsort(idx.values)
    # DJF 2009/10 is the most negative winter NAO on record; 1988/89 strongly positive
    assert years[order[0]] == 2010
    assert years[order[-1]] == 1989
    # the same EOF as the eofs package (sign aside): √cos φ weights over the same sector
    weights = np.sqrt(np.clip(np.cos(np.deg2rad(z["latitude"])), 0, None)).broadcast_like(
        z.isel(time=0)
    )
    pc = Eof(z - z.mean("time"), weights=weights.values).pcs(npcs=1)[:, 0]
    assert abs(np.corrcoef(pc.values, idx.values)[0, 1]) > 0.999
    np.testing.assert_allclose(idx.std(), 1.0, rtol=1e-6)  # standardised on its fit period


def _dipole(n: int = 60, seed: int = 0) -> tuple[xr.DataArray, np.ndarray]:
    """z = s(t)·(south − north) + small noise on 20-80°N, 90°W-40°E: positive s is
    positive NAO (low in the north, high in the south)."""
    rng = np.random.default_rng(seed)
    lat = np.arange(20.0, 81.0, 5.0)
    lon = np.arange(-90.0, 41.0, 10.0)
    s = rng.standard_normal(n)
    pattern = np.where(lat > 50, -1.0, 1.0)[:, None] * np.ones(lon.size)
    z = s[:, None, None] * pattern + 0.05 * rng.standard_normal((n, lat.size, lon.size))
    times = np.arange(n).astype("datetime64[D]")
    da = xr.DataArray(
        z, dims=("time", "lat", "lon"), coords={"time": times, "lat": lat, "lon": lon}
    )
    return da, s


def test_nao_sign_convention_and_fit_on_the_training_period_only():
    z, s = _dipole()
    idx = nao_index(z, train=z.isel(time=slice(0, 40)))
    assert np.corrcoef(idx.values, s)[0, 1] > 0.99  # positive = low north, high south
    # changing the held-out part changes nothing of the training period's index
    shifted = z.copy()
    shifted[40:] = shifted[40:] * 3.0 + 1.0
    again = nao_index(shifted, train=shifted.isel(time=slice(0, 40)))
    np.testing.assert_allclose(again.values[:40], idx.values[:40], rtol=1e-10)
    # on a 0..360 grid the sector (-90, 40) crosses the prime meridian: same index
    z360 = z.assign_coords(lon=z["lon"] % 360).sortby("lon")
    np.testing.assert_allclose(nao_index(z360).values, nao_index(z).values, atol=1e-8)


def test_nao_refuses_a_field_outside_the_sector():
    z, _ = _dipole()
    with pytest.raises(ValueError, match="NAO sector"):
        nao_index(z.assign_coords(lat=z["lat"] - 100.0))


def test_jet_strength_and_latitude_recover_a_planted_jet():
    rng = np.random.default_rng(1)
    n, lat, lon = 20, np.arange(0.0, 90.1, 2.5), np.arange(0.0, 360.0, 10.0)
    strength = 20 + 10 * rng.random(n)
    where = rng.choice(lat[(lat >= 30) & (lat <= 60)], n)
    u = strength[:, None] * np.exp(-(((lat[None] - where[:, None]) / 8.0) ** 2))
    u = np.repeat(u[:, :, None], lon.size, axis=2)
    da = xr.DataArray(
        u,
        dims=("time", "latitude", "longitude"),
        coords={"time": np.arange(n).astype("datetime64[D]"), "latitude": lat, "longitude": lon},
    )
    np.testing.assert_allclose(jet_index(da).values, strength, rtol=1e-12)
    np.testing.assert_allclose(jet_index(da, what="latitude").values, where)
    with pytest.raises(ValueError, match="jet band"):
        jet_index(da, lat_range=(-80, -70))


@pytest.mark.parametrize(
    ("box", "inside"),
    [((-170, -120), [190, 200, 240]), ((-90, 40), [270, 0, 40]), ((160, -160), [160, 180, 200])],
)
def test_lon_in_range_handles_both_conventions_and_wrapping(box, inside):
    lon = xr.DataArray(np.arange(0.0, 360.0, 10.0), dims="lon")
    sel = lon.values[lon_in_range(lon, box).values]
    assert set(inside) <= set(sel)
    assert 100.0 not in sel
