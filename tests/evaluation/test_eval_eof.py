"""EOF/PCA baseline embeddings: √cos φ weighted multivariate EOFs of the training period."""

import numpy as np
import pytest
import xarray as xr
from eofs.standard import Eof

from faconvlstm.models.eof import EOFEmbedding

LAT = np.arange(-60.0, 61.0, 10.0)
LON = np.arange(0.0, 360.0, 20.0)


def _planted(t: int = 120, seed: int = 0):
    """Two variables driven by two independent time series through fixed patterns."""
    rng = np.random.default_rng(seed)
    p1 = rng.normal(size=(2, LAT.size, LON.size))
    p2 = rng.normal(size=(2, LAT.size, LON.size))
    a, b = rng.normal(size=(2, t)) * np.array([[3.0], [1.0]])
    return 1.0 + a[:, None, None, None] * p1 + b[:, None, None, None] * p2


def test_two_planted_modes_explain_everything_and_reconstruct_exactly():
    x = _planted()
    eof = EOFEmbedding(n_eofs=4).fit(x, lat=LAT)
    assert eof.explained_variance_ratio_[:2].sum() == pytest.approx(1.0)
    pcs2 = eof.transform(x, lat=LAT)[:, :2]
    eof.components_ = eof.components_[:2]
    np.testing.assert_allclose(eof.inverse_transform(pcs2), x, atol=1e-9)


def test_principal_components_match_the_eofs_package():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, LAT.size, LON.size)).cumsum(0)
    ours = EOFEmbedding(n_eofs=3).fit_transform(x, lat=LAT)
    w = np.sqrt(np.cos(np.deg2rad(LAT)))[:, None] * np.ones(LON.size)
    ref = Eof(x, weights=w).pcs(pcscaling=0, npcs=3)
    for k in range(3):  # EOFs are defined up to sign
        assert abs(np.corrcoef(ours[:, k], ref[:, k])[0, 1]) == pytest.approx(1.0, abs=1e-10)
        np.testing.assert_allclose(np.abs(ours[:, k]), np.abs(ref[:, k]), rtol=1e-8, atol=1e-8)


def test_xarray_and_numpy_inputs_give_the_same_embedding():
    x = _planted(40)
    da = xr.DataArray(
        x,
        dims=("time", "variable", "lat", "lon"),
        coords={"time": np.arange(40), "lat": LAT, "lon": LON},
    )
    a = EOFEmbedding(n_eofs=3).fit(x[:30], lat=LAT).transform(x[30:], lat=LAT)
    b = (
        EOFEmbedding(n_eofs=3)
        .fit(da.isel(time=slice(0, 30)))
        .transform(da.isel(time=slice(30, None)))
    )
    assert a.shape == (10, 3)
    np.testing.assert_allclose(a, b)
