"""Writers: CF-annotated NetCDF/Zarr with the input's coordinates, written atomically."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from faconvlstm.data import save_dataset, write_embeddings, write_fields, write_labels

TIMES = pd.date_range("2001-01-01", periods=6, freq="D").values
LAT, LON = np.linspace(-60, 60, 4), np.arange(8) * 45.0


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_embeddings_round_trip_with_time(tmp_path, suffix):
    emb = np.random.default_rng(0).normal(size=(6, 3))
    path = write_embeddings(
        torch.tensor(emb),
        TIMES,
        tmp_path / f"emb{suffix}",
        attrs={"model": "fa", "seed": 0, "config": {"filters": [8]}},
    )
    with xr.open_dataset(path, engine="zarr" if suffix == ".zarr" else None) as ds:
        np.testing.assert_allclose(ds["embedding"].values, emb, rtol=1e-6)
        np.testing.assert_array_equal(ds["time"].values, TIMES)
        assert ds.attrs["model"] == "fa" and ds.attrs["Conventions"].startswith("CF")
        assert json.loads(ds.attrs["config"]) == {"filters": [8]}


def test_fields_carry_cf_grid_attributes_and_values(tmp_path):
    arr = np.random.default_rng(1).normal(size=(6, 2, 4, 8)).astype("float32")
    path = write_fields(
        arr, TIMES, ["t2m", "sst"], LAT, LON, tmp_path / "fc.nc", name="reconstruction"
    )
    with xr.open_dataset(path) as ds:
        var = ds["reconstruction"]
        assert var.dims == ("time", "channel", "lat", "lon")
        np.testing.assert_array_equal(var.values, arr)
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lat"].attrs["axis"] == "Y"
        assert ds["lon"].attrs["standard_name"] == "longitude"
        assert list(ds["channel_units"].values) == ["K", "K"]
        assert var.attrs["units"] == "K"  # shared by both channels
        assert list(ds["channel_standard_name"].values) == [
            "air_temperature",
            "sea_surface_temperature",
        ]


def test_fields_with_cftime_stamps(tmp_path):
    times = xr.date_range("2001-01-01", periods=6, freq="D", calendar="noleap", use_cftime=True)
    arr = np.zeros((6, 1, 4, 8))
    path = write_fields(arr, times, ["x"], LAT, LON, tmp_path / "cf.zarr")
    with xr.open_dataset(path, engine="zarr") as ds:
        assert ds["time"].values[0].calendar == "noleap"


def test_labels_are_integers_with_flag_values(tmp_path):
    path = write_labels(np.array([0, 1, 1, 2, 0, 2]), TIMES, tmp_path / "lab.nc")
    with xr.open_dataset(path) as ds:
        assert ds["label"].dtype.kind == "i"
        assert list(ds["label"].attrs["flag_values"]) == [0, 1, 2]


def test_shape_mismatches_are_explained(tmp_path):
    with pytest.raises(ValueError, match="6 time stamps for 5 rows"):
        write_embeddings(np.zeros((5, 2)), TIMES, tmp_path / "e.nc")
    with pytest.raises(ValueError, match="does not match fields"):
        write_fields(np.zeros((6, 1, 3, 8)), TIMES, ["x"], LAT, LON, tmp_path / "f.nc")
    with pytest.raises(ValueError, match=r"'.nc'.*'.zarr'"):
        save_dataset(xr.Dataset(), tmp_path / "out.csv")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_atomic_write_replaces_and_a_failure_keeps_the_old_file(tmp_path, suffix, monkeypatch):
    path = tmp_path / f"out{suffix}"
    engine = "zarr" if suffix == ".zarr" else None
    save_dataset(xr.Dataset({"a": ("x", [1.0, 2.0])}), path)
    save_dataset(xr.Dataset({"a": ("x", [3.0, 4.0])}), path)
    with xr.open_dataset(path, engine=engine) as ds:
        assert ds["a"].values.tolist() == [3.0, 4.0]
    method = "to_zarr" if suffix == ".zarr" else "to_netcdf"
    original = getattr(xr.Dataset, method)

    def write_half_then_fail(self, target, *args, **kwargs):
        original(self.isel(x=[0]), target, *args, **kwargs)  # partial output on disk
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, method, write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(xr.Dataset({"a": ("x", [5.0, 6.0])}), path)
    monkeypatch.undo()
    with xr.open_dataset(path, engine=engine) as ds:
        assert ds["a"].values.tolist() == [3.0, 4.0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary leftovers
