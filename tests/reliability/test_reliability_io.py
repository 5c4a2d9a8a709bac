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

    # a job started in the background by a non-interactive shell inherits SIGINT ignored;
    # these tests are about a Ctrl-C that is delivered, as in a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(target), signame],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{signame} during the NetCDF write hung the process")
    assert proc.returncode == -getattr(signal, signame), proc.stderr
    assert "written" not in proc.stdout
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    clim = xr.DataArray(
        np.zeros((12, 1, 2, 2), "float32"),
        dims=("key", "channel", "lat", "lon"),
        coords={"key": np.arange(1, 13)},
        name="climatology",
        attrs={"kind": "month"},
    )
    stats = NormStats(
        ["a"], [0.0], [1.0], climatology=True, climatology_kind="month", climatology_values=clim
    )
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
    save_datasets(
        [(xr.Dataset(attrs={"run": "old"}), first), (xr.Dataset(attrs={"run": "old"}), second)]
    )
    original = xr.Dataset.to_netcdf

    def fail_on_second(self, target, *args, **kwargs):
        if self.attrs.get("part") == 2:
            raise OSError(errno.EIO, "I/O error")
        return original(self, target, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail_on_second)
    with pytest.raises(OSError, match=r"emb\.hidden\.nc"):
        save_datasets(
            [
                (xr.Dataset(attrs={"run": "new", "part": 1}), first),
                (xr.Dataset(attrs={"run": "new", "part": 2}), second),
            ]
        )
    for path in (first, second):  # the first file was complete, yet not put in place
        with xr.open_dataset(path) as ds:
            assert ds.attrs["run"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name, first.name]


# ---------------------------------------------------------------------------------------
# embed / predict from the command line

IO_TINY = {
    "seed": 0,
    "task": "autoencoder",
    "data": {
        "source": "synthetic",
        "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
        "window": 6,
        "stride": 8,
        "train_years": [2000, 2000],
        "val_years": [2001, 2001],
        "batch_size": 4,
    },
    "model": {"cell": "fa", "filters": [4], "embed_dim": 8, "layer_kwargs": {"attention_every": 3}},
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "limit_train_batches": 1,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "num_sanity_val_steps": 0,
    },
}


@pytest.fixture(scope="module")
def io_ckpt(tmp_path_factory):
    """A checkpoint of a tiny autoencoder trained for one step (seconds)."""
    import torch

    from faconvlstm.training.config import load_config
    from faconvlstm.training.fit import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit(load_config(IO_TINY), out=tmp_path_factory.mktemp("io_run"))
    finally:
        torch.set_num_threads(threads)


def _main(*args):
    from faconvlstm import cli

    return cli.main([str(a) for a in args])


def test_embed_writes_one_set_from_one_run_and_drops_stale_siblings(tmp_path, io_ckpt):
    out = tmp_path / "emb.nc"
    assert _main("embed", "--ckpt", io_ckpt, "--out", out, "--hidden", "--attention") == 0
    files = [out, tmp_path / "emb.hidden.nc", tmp_path / "emb.attention.nc"]
    ids = set()
    for path in files:
        with xr.open_dataset(path) as ds:
            ids.add((ds.attrs["run_id"], ds.attrs["checkpoint_sha256"]))
    assert len(ids) == 1
    assert _main("embed", "--ckpt", io_ckpt, "--out", out) == 0  # no --hidden this time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.nc"]
    with xr.open_dataset(out) as ds:
        assert ds.attrs["run_id"] not in {i for i, _ in ids}


EMBED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import faconvlstm.data.io as io
    from faconvlstm import cli

    # a job started in the background by a non-interactive shell inherits SIGINT ignored;
    # these tests are about a Ctrl-C that is delivered, as in a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)

    original = io._write_one
    def write_one(ds, path, tmp):
        original(ds, path, tmp)
        if path.name.endswith(".hidden.nc"):  # the first file is complete, the rest not
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    io._write_one = write_one
    sys.exit(cli.main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize(("signame", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_while_embed_writes_keeps_the_previous_set(tmp_path, io_ckpt, signame, status):
    out = tmp_path / "emb.nc"
    args = ["embed", "--ckpt", str(io_ckpt), "--out", str(out), "--hidden", "--attention"]
    assert _main(*args) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", EMBED_CHILD, signame, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == status, proc.stderr[-2000:]
    assert "nothing new written" in proc.stderr and "Traceback" not in proc.stderr
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # same names (no temporaries) and the old contents


def test_unavailable_cuda_device_exits_2_before_reading_the_checkpoint(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        device = f"cuda:{torch.cuda.device_count()}"  # one past the last
    else:
        device = "cuda:7"
    status = _main(
        "embed", "--ckpt", tmp_path / "none.ckpt", "--out", tmp_path / "e.nc", "--device", device
    )
    err = capsys.readouterr().err
    assert status == 2 and f"--device {device}" in err and "none.ckpt" not in err


def test_out_below_a_regular_file_exits_2(tmp_path, io_ckpt, capsys):
    (tmp_path / "plain").write_text("x")
    status = _main("predict", "--ckpt", io_ckpt, "--out", tmp_path / "plain" / "sub" / "r.nc")
    assert status == 2 and "is a file, not a folder" in capsys.readouterr().err


def test_out_in_a_read_only_folder_exits_2(tmp_path, io_ckpt, capsys, monkeypatch):
    # The tests may run as root, for whom chmod 0o555 does not stop writes: fake the answer.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: Path(p) != locked and real_access(p, m))
    status = _main("embed", "--ckpt", io_ckpt, "--out", locked / "e.nc")
    assert status == 2 and "not writable" in capsys.readouterr().err


def test_a_full_disk_during_embed_exits_2_and_leaves_nothing(
    tmp_path, io_ckpt, capsys, monkeypatch
):
    def full(self, target, *args, **kwargs):
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    status = _main("embed", "--ckpt", io_ckpt, "--out", tmp_path / "e.nc")
    err = capsys.readouterr().err
    assert status == 2 and "could not write" in err and "no space left on device" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty (0 bytes)"),
        (b"time,lat,lon\n1,2,3\n", "is not a NetCDF"),
    ],
)
def test_unreadable_data_files_exit_2_naming_the_file(tmp_path, io_ckpt, capsys, content, message):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(content)
    status = _main("embed", "--ckpt", io_ckpt, "--data", bad, "--out", tmp_path / "e.nc")
    err = capsys.readouterr().err
    assert status == 2 and message in err and "bad.nc" in err
    assert "engine" not in err  # the configuration has no such option to suggest
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------
# what embed / predict write


def test_embed_outputs_carry_splits_coordinates_and_cf_attributes(tmp_path, io_ckpt):
    out = tmp_path / "emb.nc"
    assert _main("embed", "--ckpt", io_ckpt, "--out", out, "--hidden", "--attention") == 0
    with xr.open_dataset(out) as emb:
        years = emb["time"].dt.year.values
        split = emb["split"].values
        assert (split[years == 2000] == 0).all() and (split[years == 2001] == 1).all()
        assert emb["split"].attrs["flag_meanings"] == "train val test unused"
        assert {"history", "date_created", "Conventions"} <= set(emb.attrs)
    with xr.open_dataset(tmp_path / "emb.attention.nc") as att:
        for var in att.data_vars.values():  # every axis has coordinate values
            assert all(dim in att.coords for dim in var.dims), var.name
        np.testing.assert_array_equal(att["lon_query"].values, att["lon_key"].values)
        assert att["lat"].attrs["units"] == "degrees_north"
    with xr.open_dataset(tmp_path / "emb.hidden.nc") as hid:
        assert hid["hidden"].dims == ("time", "feature", "lat", "lon")


@pytest.fixture(scope="module")
def io_noleap_forecaster(tmp_path_factory):
    """A one-step forecaster trained on a 'noleap' (cftime) synthetic record."""
    import copy

    import torch

    from faconvlstm.training.config import load_config
    from faconvlstm.training.fit import fit

    cfg = copy.deepcopy(IO_TINY)
    cfg["task"] = "forecast"
    cfg["data"]["horizon"] = 2
    cfg["data"]["synthetic"]["calendar"] = "noleap"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit(load_config(cfg), out=tmp_path_factory.mktemp("io_noleap"))
    finally:
        torch.set_num_threads(threads)


def test_a_noleap_forecaster_writes_noleap_weatherbench2_forecasts(tmp_path, io_noleap_forecaster):
    import netCDF4

    out = tmp_path / "fc.nc"
    assert (
        _main(
            "predict",
            "--ckpt",
            io_noleap_forecaster,
            "--out",
            out,
            "--years",
            2001,
            2001,
            "--stride",
            30,
        )
        == 0
    )
    with netCDF4.Dataset(out) as nc:
        assert nc["time"].calendar == "noleap"
        assert nc["valid_time"].calendar == "noleap"
    with xr.open_dataset(out) as fc:
        assert fc["prediction_timedelta"].dtype.kind == "m"
        for var in fc.data_vars.values():
            assert var.dims[:2] == ("time", "prediction_timedelta")
            assert var.dims[-2:] == ("latitude", "longitude") and var.attrs.get("units")
    emb = tmp_path / "emb.nc"
    assert _main("embed", "--ckpt", io_noleap_forecaster, "--out", emb) == 0
    with netCDF4.Dataset(emb) as nc:
        assert nc["time"].calendar == "noleap"
