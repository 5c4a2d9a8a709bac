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


def test_fields_are_one_cf_variable_per_field_with_levels(tmp_path):
    arr = np.random.default_rng(1).normal(size=(6, 4, 4, 8)).astype("float32")
    channels = ["t2m", "temperature@850", "temperature@500", "2m-dew"]
    path = write_fields(arr, TIMES, channels, LAT, LON, tmp_path / "fc.nc", name="reconstruction")
    with xr.open_dataset(path) as ds:
        assert sorted(ds.data_vars) == ["t2m", "temperature", "v_2m_dew"]
        assert ds["t2m"].dims == ("time", "lat", "lon")
        np.testing.assert_array_equal(ds["t2m"].values, arr[:, 0])
        assert ds["temperature"].dims == ("time", "level", "lat", "lon")
        assert ds["level"].values.tolist() == [850.0, 500.0]
        assert ds["level"].attrs["units"] == "hPa"
        np.testing.assert_array_equal(ds["temperature"].values, arr[:, 1:3])
        assert ds["t2m"].attrs["units"] == "K"
        assert ds["t2m"].attrs["standard_name"] == "air_temperature"
        assert "standard_name" not in ds["v_2m_dew"].attrs  # unknown: none invented
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lat"].attrs["axis"] == "Y"
        assert ds["lon"].attrs["standard_name"] == "longitude"
        assert "date_created" in ds.attrs and "faconvlstm" in ds.attrs["history"]


def test_coordinates_have_no_fill_value(tmp_path):
    import netCDF4

    path = write_fields(np.zeros((6, 1, 4, 8)), TIMES, ["t2m"], LAT, LON, tmp_path / "f.nc")
    with netCDF4.Dataset(path) as nc:
        for name in ("time", "lat", "lon"):
            assert "_FillValue" not in nc[name].ncattrs(), name
        assert "_FillValue" in nc["t2m"].ncattrs()  # data may be missing (NaN)


def test_embeddings_flag_their_split(tmp_path):
    times = pd.date_range("2000-12-30", periods=6, freq="D").values
    path = write_embeddings(
        np.zeros((6, 2)),
        times,
        tmp_path / "e.nc",
        splits={"train": (2000, 2000), "val": 2001, "test": None},
    )
    with xr.open_dataset(path) as ds:
        split = ds["split"]
        assert split.values.tolist() == [0, 0, 1, 1, 1, 1]
        assert split.attrs["flag_meanings"].split() == ["train", "val", "test", "unused"]
        assert list(split.attrs["flag_values"]) == [0, 1, 2, 3]


def test_forecasts_use_the_weatherbench2_layout(tmp_path):
    from faconvlstm.data import forecast_dataset, save_dataset

    init = TIMES[:3]
    valid = np.stack([TIMES[i + 1 : i + 3] for i in range(3)])
    fc = np.random.default_rng(2).normal(size=(3, 2, 3, 4, 8)).astype("float32")
    ds = forecast_dataset(fc, init, valid, ["tp", "z@500", "z@850"], LAT, LON)
    path = save_dataset(ds, tmp_path / "fc.nc")
    with xr.open_dataset(path) as ds:
        assert ds["tp"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
        assert ds["z"].dims == ("time", "prediction_timedelta", "level", "latitude", "longitude")
        assert ds["prediction_timedelta"].dtype.kind == "m"
        assert (ds["prediction_timedelta"].values == np.array([1, 2], "timedelta64[D]")).all()
        np.testing.assert_array_equal(ds["valid_time"].values, valid)
        assert ds["tp"].attrs["units"] == "mm day-1" and ds["z"].attrs["units"] == "m2 s-2"
        np.testing.assert_array_equal(ds["z"].values, fc[:, :, 1:])


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
