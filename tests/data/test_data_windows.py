"""WindowDataset / collate_windows: contents, masks, time stamps, workers, bounded memory."""

import gc
import pickle

import dask.array as dsa
import numpy as np
import pandas as pd
import psutil
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader

from faconvlstm.data import (
    NormStats,
    WindowDataset,
    annual_phase,
    collate_windows,
    compute_stats,
    open_gridded,
    synthetic,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Failed to open Zarr store with consolidated metadata:RuntimeWarning"
)


@pytest.fixture
def da(simple):
    return open_gridded(simple)


def test_items_hold_normalised_window_mask_time_and_phase(da):
    stats = compute_stats(da)
    ds = WindowDataset(da, window=5, horizon=2, stride=3, stats=stats)
    assert len(ds) == (40 - 7) // 3 + 1
    item = ds[2]
    start = 6
    raw = da.isel(time=slice(start, start + 7)).values
    z = (raw - stats.mean[:, None, None]) / stats.std[:, None, None]
    assert item["x"].shape == (5, 2, 4, 8) and item["x"].dtype == torch.float32
    np.testing.assert_allclose(item["x"].numpy(), z[:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item["y"].numpy(), z[5:], rtol=1e-5, atol=1e-6)
    assert item["mask"].dtype == torch.bool and bool(item["mask"].all())
    np.testing.assert_array_equal(item["time"], da["time"].values[start : start + 5])
    np.testing.assert_array_equal(item["y_time"], da["time"].values[start + 5 : start + 7])
    np.testing.assert_allclose(item["phase"].numpy(), annual_phase(item["time"]), atol=1e-7)
    assert item["phase"].dtype == torch.float32 and item["index"] == start


def test_nan_becomes_zero_with_false_mask(simple):
    ds_nan = simple.copy(deep=True)
    ds_nan["v1"][3, 2, 5] = np.nan
    ds = WindowDataset(open_gridded(ds_nan), window=4)
    item = ds[1]  # steps 1..4 contain step 3
    assert not bool(item["mask"][2, 1, 2, 5])
    assert item["x"][2, 1, 2, 5].item() == 0.0
    assert int((~item["mask"]).sum()) == 1
    assert torch.isfinite(item["x"]).all()


def test_streamed_and_in_memory_items_are_identical(tmp_path, simple):
    path = tmp_path / "d.nc"
    simple.to_netcdf(path)
    da = open_gridded(path, chunks={"time": 7})
    a = WindowDataset(da, 6, horizon=1, in_memory=False)
    b = WindowDataset(da, 6, horizon=1, stats=a.stats, in_memory=True)
    assert not a.in_memory and b.in_memory
    for i in (0, 17, len(a) - 1):
        torch.testing.assert_close(a[i]["x"], b[i]["x"])
        torch.testing.assert_close(a[i]["y"], b[i]["y"])


def test_metadata_for_models(da):
    ds = WindowDataset(da, 4)
    assert ds.channels == ["v0", "v1"]
    assert ds.lat.dtype == np.float64 and ds.lat.shape == (4,)
    assert ds.periodic_lon is True and ds.shape == (2, 4, 8)
    assert ds.times.shape == (40,)
    assert ds.lat_weights.mean() == pytest.approx(1.0)


def test_too_few_steps_says_how_many_are_needed(da):
    with pytest.raises(ValueError, match="needs 12 steps, the data has 10"):
        WindowDataset(da.isel(time=slice(0, 10)), window=8, horizon=4)


def test_irregular_time_is_refused(da):
    gappy = da.isel(time=[0, 1, 2, 5, 6, 7, 8, 9])
    with pytest.raises(ValueError, match="irregular step"):
        WindowDataset(gappy, window=2)


def test_statistics_of_other_channels_are_refused(da):
    stats = NormStats(["v1", "v0"], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="computed for channels"):
        WindowDataset(da, 3, stats=stats)


def test_all_nan_channel_is_refused_even_with_given_stats(da):
    stats = compute_stats(da)
    empty = da.load().copy()
    empty[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"\['v1'\] are all NaN"):
        WindowDataset(empty, 3, stats=stats)


def test_collate_stacks_tensors_and_keeps_time_as_numpy(da):
    ds = WindowDataset(da, 4, horizon=1)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate_windows)))
    assert batch["x"].shape == (3, 4, 2, 4, 8) and batch["phase"].shape == (3, 4)
    assert isinstance(batch["time"], np.ndarray) and batch["time"].shape == (3, 4)
    assert batch["time"].dtype.kind == "M" and batch["y_time"].shape == (3, 1)
    assert batch["index"].tolist() == [0, 1, 2]


def test_cftime_calendars_flow_through_to_the_batch():
    data, _ = synthetic(n_years=2, freq="MS", calendar="360_day", nlat=8, nlon=16)
    ds = WindowDataset(open_gridded(data), window=12, stride=12)
    batch = collate_windows([ds[0], ds[1]])
    assert batch["time"].dtype == object and batch["time"].shape == (2, 12)
    np.testing.assert_allclose(batch["phase"][0].numpy(), np.arange(12) / 12, atol=1e-6)


def test_dataset_pickles_and_workers_return_the_same_batches(tmp_path, simple):
    path = tmp_path / "w.nc"
    simple.to_netcdf(path)
    ds = WindowDataset(open_gridded(path, chunks={"time": 5}), 4, horizon=2, in_memory=False)
    clone = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(clone[7]["x"], ds[7]["x"])
    serial = [b["x"] for b in ds.loader(batch_size=5)]
    parallel = [b["x"] for b in ds.loader(batch_size=5, num_workers=2, persistent_workers=False)]
    assert len(serial) == len(parallel) == 7
    for a, b in zip(serial, parallel):
        torch.testing.assert_close(a, b)


def _write_zarr(path, n_time: int, nlat: int = 64, nlon: int = 128) -> int:
    """Two float32 variables written chunk by chunk (never whole in memory); returns bytes."""
    chunks = (32, nlat, nlon)
    values = (
        dsa.sin(dsa.arange(n_time * nlat * nlon, chunks=chunks[0] * nlat * nlon, dtype="float32"))
        .reshape(n_time, nlat, nlon)
        .rechunk(chunks)
    )
    ds = xr.Dataset(
        {"a": (("time", "lat", "lon"), values), "b": (("time", "lat", "lon"), 2 * values)},
        coords={
            "time": pd.date_range("2000-01-01", periods=n_time, freq="D"),
            "lat": np.linspace(-89, 89, nlat),
            "lon": np.arange(nlon) * 360.0 / nlon,
        },
    )
    ds.to_zarr(path, mode="w", consolidated=False)
    return 2 * n_time * nlat * nlon * 4


def _rss_growth_while_iterating(path, window: int = 8) -> tuple[int, int]:
    da = open_gridded(path)
    stats = NormStats(["a", "b"], [0.0, 0.0], [1.0, 1.0])  # no full pass needed
    ds = WindowDataset(da, window, stride=window, stats=stats, in_memory=False)
    loader = ds.loader(batch_size=4)
    proc = psutil.Process()
    batches = iter(loader)
    next(batches)  # warm-up: codecs, allocator pools
    gc.collect()
    base = peak = proc.memory_info().rss
    n = 1
    for _ in batches:
        peak = max(peak, proc.memory_info().rss)
        n += 1
    assert n == len(loader)
    return peak - base, n


def test_memory_stays_bounded_while_streaming_a_larger_dataset(tmp_path):
    # 2 × 800 × 64 × 128 float32 = 52 MB of data; the loader must never hold much of it.
    # Limit: 16 MB. Measured ≈ 8 MB (one default 2 MiB dask chunk per variable, decoded
    # copies, a batch and caches); loading the dataset instead grows RSS by ≈ 50 MB.
    size = _write_zarr(tmp_path / "big.zarr", n_time=800)
    growth, n = _rss_growth_while_iterating(tmp_path / "big.zarr")
    assert size > 50e6 and n == 25
    assert growth < 16e6, f"RSS grew by {growth / 1e6:.1f} MB while streaming {size / 1e6} MB"


@pytest.mark.slow
def test_memory_stays_bounded_on_a_400mb_archive(tmp_path):
    # 2 × 6400 × 64 × 128 float32 = 420 MB; same 16 MB limit (a 26× margin).
    size = _write_zarr(tmp_path / "huge.zarr", n_time=6400)
    growth, _ = _rss_growth_while_iterating(tmp_path / "huge.zarr")
    assert size > 400e6
    assert growth < 16e6, f"RSS grew by {growth / 1e6:.1f} MB while streaming {size / 1e6} MB"
