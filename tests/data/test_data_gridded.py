"""open_gridded: names mapped, channels stacked, lat ascending, lazy, clear errors."""

import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from faconvlstm.data import (
    detect_periodic_lon,
    latitude_weights,
    open_gridded,
    split_by_years,
    write_fields,
)


def test_era5_names_map_to_time_channel_lat_lon(era5_like):
    da = open_gridded(era5_like)
    assert da.dims == ("time", "channel", "lat", "lon")
    assert list(da["channel"].values) == [
        "temperature@500",
        "temperature@850",
        "geopotential@500",
        "geopotential@850",
    ]
    assert list(da["units"].values) == ["K", "K", "m2 s-2", "m2 s-2"]
    assert np.all(np.diff(da["lat"].values) > 0)
    # Values kept their place: flipping latitude must carry the data with it.
    src = era5_like["temperature"].sel(pressure_level=850, latitude=-90.0, longitude=45.0)
    got = da.sel(channel="temperature@850", lat=-90.0, lon=45.0)
    np.testing.assert_array_equal(got.values, src.values)
    assert da.attrs["periodic_lon"] is True


def test_result_is_lazy_dask(tmp_path, era5_like):
    path = tmp_path / "era5.nc"
    era5_like.to_netcdf(path)
    da = open_gridded(path, variables="temperature", levels=850)
    assert isinstance(da.data, dask.array.Array)
    assert list(da["channel"].values) == ["temperature@850"]


def test_cmip_plev_in_pa_becomes_hpa_channel_names():
    ds = xr.Dataset(
        {"ta": (("time", "plev", "lat", "lon"), np.zeros((3, 2, 4, 8)))},
        coords={
            "time": pd.date_range("2000", periods=3, freq="D"),
            "plev": ("plev", [85000.0, 50000.0], {"units": "Pa"}),
            "lat": np.linspace(-60, 60, 4),
            "lon": np.arange(8) * 45.0,
        },
    )
    da = open_gridded(ds, levels=[500])
    assert list(da["channel"].values) == ["ta@500"]


def test_dims_found_from_cf_attributes_and_overrides():
    ds = xr.Dataset(
        {"sst": (("t", "j", "i"), np.ones((3, 4, 5)))},
        coords={
            "t": pd.date_range("2000", periods=3, freq="D"),
            "j": ("j", np.linspace(-10, 10, 4), {"standard_name": "latitude"}),
            "i": ("i", np.arange(5.0), {"axis": "X"}),
        },
    )
    assert open_gridded(ds).dims == ("time", "channel", "lat", "lon")
    ds2 = ds.rename(j="row", i="col")
    ds2["row"].attrs, ds2["col"].attrs = {}, {}
    with pytest.raises(ValueError, match=r"no lat dimension.*dims="):
        open_gridded(ds2)
    assert open_gridded(ds2, dims={"lat": "row", "lon": "col"}).sizes["lat"] == 4


def test_missing_variable_lists_what_exists(era5_like):
    with pytest.raises(KeyError, match="available: \\['geopotential', 'temperature'\\]"):
        open_gridded(era5_like, variables=["temperature", "humidity"])


def test_missing_level_lists_available_levels(era5_like):
    with pytest.raises(KeyError, match=r"available levels.*'500', '850'"):
        open_gridded(era5_like, levels=[300])


def test_variables_on_different_grids_are_refused():
    time = pd.date_range("2000", periods=3, freq="D")
    a = xr.DataArray(
        np.zeros((3, 4, 8)),
        dims=("time", "lat", "lon"),
        coords={"time": time, "lat": np.linspace(-60, 60, 4), "lon": np.arange(8) * 45.0},
    )
    b = xr.DataArray(
        np.zeros((3, 5, 8)),
        dims=("time", "latitude", "lon"),
        coords={"time": time, "latitude": np.linspace(-60, 60, 5), "lon": np.arange(8) * 45.0},
    )
    with pytest.raises(ValueError, match=r"different grids.*lat has 4 points.*5 points"):
        open_gridded(xr.Dataset({"a": a, "b": b}))


def test_extra_dimension_must_be_selected_but_size_one_is_squeezed(simple):
    ens = simple.expand_dims(member=3)
    with pytest.raises(ValueError, match=r"extra dimension 'member'.*isel"):
        open_gridded(ens)
    assert open_gridded(simple.expand_dims(member=1)).sizes["channel"] == 2


def test_fill_values_and_1e20_become_nan(tmp_path, simple):
    ds = simple.copy(deep=True)
    ds["v0"][0, 0, 0] = 1e20  # CMIP missing value without attribute
    ds["v1"].attrs["missing_value"] = -999.0  # undecoded attribute on a user Dataset
    ds["v1"][1, 1, 1] = -999.0
    da = open_gridded(ds).compute()
    assert np.isnan(da.sel(channel="v0")[0, 0, 0])
    assert np.isnan(da.sel(channel="v1")[1, 1, 1])
    assert int(da.isnull().sum()) == 2
    # _FillValue written to a file is decoded by xarray on the way back.
    path = tmp_path / "fill.nc"
    simple.to_netcdf(path, encoding={"v0": {"_FillValue": -1.0}})
    with xr.open_dataset(path, mask_and_scale=False) as raw:
        assert raw["v0"].attrs.get("_FillValue", raw["v0"].encoding.get("_FillValue")) == -1
    ds3 = simple.copy(deep=True)
    ds3["v0"][2, 0, 0] = np.nan
    ds3.to_netcdf(path, encoding={"v0": {"_FillValue": -1.0}})
    assert np.isnan(open_gridded(path).sel(channel="v0")[2, 0, 0].values)


def test_many_files_by_glob_and_list_are_combined_along_time(tmp_path, simple):
    simple.isel(time=slice(0, 20)).to_netcdf(tmp_path / "part_a.nc")
    simple.isel(time=slice(20, None)).to_netcdf(tmp_path / "part_b.nc")
    by_glob = open_gridded(str(tmp_path / "part_*.nc"))
    by_list = open_gridded([tmp_path / "part_a.nc", tmp_path / "part_b.nc"])
    expected = open_gridded(simple)
    np.testing.assert_allclose(by_glob.values, expected.values)
    np.testing.assert_allclose(by_list.values, expected.values)


def test_files_on_different_grids_are_refused(tmp_path, make_dataset):
    make_dataset(n_time=5, nlat=4).to_netcdf(tmp_path / "a.nc")
    make_dataset(n_time=5, nlat=6, start="2000-01-06").to_netcdf(tmp_path / "b.nc")
    with pytest.raises(ValueError, match="share one grid"):
        open_gridded([tmp_path / "a.nc", tmp_path / "b.nc"])


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_zarr_store_and_fsspec_url(tmp_path, simple):
    path = tmp_path / "store.zarr"
    simple.to_zarr(path, mode="w")
    expected = open_gridded(simple).values
    np.testing.assert_allclose(open_gridded(path).values, expected)
    np.testing.assert_allclose(open_gridded(f"file://{path}").values, expected)


def test_netcdf_behind_an_fsspec_url(simple):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    with fs.open("/faconvlstm-test/remote.nc", "wb") as fh:
        fh.write(simple.to_netcdf(engine="h5netcdf"))
    da = open_gridded("memory://faconvlstm-test/remote.nc")
    np.testing.assert_allclose(da.values, open_gridded(simple).values)
    fs.rm("/faconvlstm-test", recursive=True)


def test_user_dask_chunks_are_kept(simple):
    da = open_gridded(simple.chunk({"time": 7}))
    assert da.chunks[0][:2] == (7, 7)
    assert open_gridded(simple).chunks[0] == (40,)  # small: one default chunk


@pytest.mark.parametrize(
    ("lon", "periodic"),
    [
        (np.arange(144) * 2.5, True),
        (np.arange(-180, 180, 5.625), True),
        (np.arange(120, 262.6, 5.0), False),  # Pacific box
        (np.r_[np.arange(180, 360, 10.0), np.arange(0, 180, 10.0)], True),  # rolled grid
    ],
)
def test_periodic_longitude_detection(lon, periodic):
    assert detect_periodic_lon(lon) is periodic


def test_time_errors_surface_on_open(simple):
    rev = simple.isel(time=[1, 0, 2])
    with pytest.raises(ValueError, match="sortby"):
        open_gridded(rev)
    dup = simple.isel(time=[0, 1, 1, 2])
    with pytest.raises(ValueError, match="duplicated"):
        open_gridded(dup)


def test_split_by_years_inclusive_and_disjoint(make_dataset):
    ds = make_dataset(n_time=6, freq="YS", start="2000-01-01")
    da = open_gridded(ds)
    parts = split_by_years(da, train=(2000, 2002), val=2003, test=(2004, 2005))
    assert parts["train"]["time"].dt.year.values.tolist() == [2000, 2001, 2002]
    assert parts["val"]["time"].dt.year.values.tolist() == [2003]
    with pytest.raises(ValueError, match="overlap"):
        split_by_years(da, train=(2000, 2003), val=(2003, 2004))
    with pytest.raises(ValueError, match="covers 2000–2005"):
        split_by_years(da, test=(2010, 2011))


def test_latitude_weights_are_cell_areas_with_mean_one():
    lat = np.linspace(-87.1875, 87.1875, 32)
    w = latitude_weights(lat)
    assert w.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(w, w[::-1])  # hemispheric symmetry
    # Thin cells: the area weight tends to cos(lat) (normalised).
    np.testing.assert_allclose(
        w / w.max(), np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat)).max(), atol=2e-3
    )
    # A grid that includes the poles gives the polar rows half-width cells.
    wp = latitude_weights(np.linspace(-90, 90, 73))
    assert wp[0] < 0.02 and wp[0] > 0


def test_written_fields_reopen_with_channel_names(tmp_path):
    arr = np.random.default_rng(0).normal(size=(5, 2, 4, 8)).astype("float32")
    times = pd.date_range("2001-01-01", periods=5, freq="D").values
    path = write_fields(
        arr,
        times,
        ["t2m", "z@500"],
        np.linspace(-60, 60, 4),
        np.arange(8) * 45.0,
        tmp_path / "f.nc",
    )
    da = open_gridded(path)
    assert list(da["channel"].values) == ["t2m", "z@500"]
    assert list(da["units"].values) == ["K", "m2 s-2"]
    assert list(open_gridded(da)["units"].values) == ["K", "m2 s-2"]  # idempotent
    np.testing.assert_allclose(da.values, arr)
