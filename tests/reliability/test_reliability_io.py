"""Outputs are never half-written: interrupts, signals, permissions, full disks, file sets."""

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from faconvlstm.data import NormStats, save_dataset
from faconvlstm.data.io import save_datasets

SRC = Path(__file__).resolve().parents[2] / "src"

# The child writes 24 MiB (two 16 MiB write blocks) and sends itself the signal while
# xarray acquires its netCDF locks one by one: the interrupt then leaves one lock held and
# xarray's error path (`close`) waited for it forever. Deterministic, unlike a timer racing
# the write.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, xarray as xr
    from xarray.backends import locks
    from faconvlstm.data import save_dataset

    original, calls = locks.acquire, []
    def acquire(lock, blocking=True):
        got = original(lock, blocking)
        calls.append(lock)
        if len(calls) == 10:  # inside a CombinedLock, while writing the data
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        return got
    locks.acquire = acquire

    data = np.zeros((96, 256, 256), dtype="float32")
    save_dataset(xr.Dataset({"a": (("time", "y", "x"), data)}), sys.argv[1])
    print("written")
    """
)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_the_netcdf_write_ends_promptly_and_leaves_nothing(tmp_path, signame):
    target = tmp_path / "out.nc"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    try:
        # 60 s: a few seconds of imports on a loaded machine; the bug was an endless hang.
        proc = subprocess.run([sys.executable, "-c", CHILD, str(target), signame], env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{signame} during the NetCDF write hung the process")
    assert proc.returncode == -getattr(signal, signame), proc.stderr
    assert "written" not in proc.stdout
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    clim = xr.DataArray(np.zeros((12, 1, 2, 2), "float32"), dims=("key", "channel", "lat", "lon"),
                        coords={"key": np.arange(1, 13)}, name="climatology",
                        attrs={"kind": "month"})
    stats = NormStats(["a"], [0.0], [1.0], climatology=True, climatology_kind="month",
                      climatology_values=clim)
    old = os.umask(umask)
    try:
        nc = save_dataset(ds, tmp_path / "a.nc")
        store = save_dataset(ds, tmp_path / "a.zarr")
        js = stats.save(tmp_path / "stats.json")
    finally:
        os.umask(old)
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    for path in (nc, js, tmp_path / "stats.climatology.nc"):
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path
    assert stat.S_IMODE(store.stat().st_mode) == dir_mode


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, target, *args, **kwargs):
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(OSError, match=r"could not write .*out\.nc: no space left on device"):
        save_dataset(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_a_bare_netcdf_error_on_a_full_disk_is_explained(tmp_path, monkeypatch):
    # netCDF4 reports ENOSPC as RuntimeError("NetCDF: HDF error"); the free space tells.
    def hdf_error(self, target, *args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", hdf_error)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 0})())
    with pytest.raises(OSError, match="no space left on device"):
        save_dataset(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_a_set_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    first, second = tmp_path / "emb.nc", tmp_path / "emb.hidden.nc"
    save_datasets([(xr.Dataset(attrs={"run": "old"}), first),
                   (xr.Dataset(attrs={"run": "old"}), second)])
    original = xr.Dataset.to_netcdf

    def fail_on_second(self, target, *args, **kwargs):
        if self.attrs.get("part") == 2:
            raise OSError(errno.EIO, "I/O error")
        return original(self, target, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail_on_second)
    with pytest.raises(OSError, match=r"emb\.hidden\.nc"):
        save_datasets([(xr.Dataset(attrs={"run": "new", "part": 1}), first),
                       (xr.Dataset(attrs={"run": "new", "part": 2}), second)])
    for path in (first, second):  # the first file was complete, yet not put in place
        with xr.open_dataset(path) as ds:
            assert ds.attrs["run"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name, first.name]
