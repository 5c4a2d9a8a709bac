"""Real sample data shipped with eofs, loadable by name."""

import numpy as np
import pytest

from faconvlstm.data import WindowDataset, compute_stats, open_gridded, sample


def test_sst_sample_has_land_missing_and_pacific_grid():
    ds = sample("sst")
    sst = ds["sst"]
    assert sst.dims == ("time", "latitude", "longitude") and sst.shape == (50, 18, 30)
    assert sst.attrs["units"] == "K"
    land = float(sst.isnull().isel(time=0).mean())
    assert 0.05 < land < 0.5  # Central America and Asia coasts in the box
    assert not any(str(v).startswith("bounds") for v in ds.variables)
    # Anomalies: centred near 0, no 1e20 left.
    assert abs(float(sst.mean())) < 0.2 and float(np.abs(sst).max()) < 10


def test_z500_sample_is_ascending_heights_at_500_hpa():
    da = open_gridded(sample("z500"))
    assert list(da["channel"].values) == ["z@500"]
    assert np.all(np.diff(da["lat"].values) > 0) and da["lat"].values[-1] == 90
    assert 4800 < float(da.min()) and float(da.max()) < 6000  # metres
    assert da.attrs["periodic_lon"] is False  # 80°W–40°E sector


def test_sample_windows_with_land_mask():
    da = open_gridded(sample("sst"))
    ds = WindowDataset(da, window=4, stats=compute_stats(da, (1963, 1999)))
    item = ds[0]
    assert item["x"].shape == (4, 1, 18, 30)
    land = ~item["mask"][0, 0]
    assert land.any() and (item["x"][0, 0][land] == 0).all()


def test_unknown_sample_lists_names():
    with pytest.raises(KeyError, match=r"available: \['sst', 'z500'\]"):
        sample("t2m")
