"""Every kind of NetCDF file faconvlstm writes passes a real CF checker, and records the
checkpoint's calendar.

The checker is the IOOS ``compliance-checker`` (PyPI, in the ``test`` extra; its ``cf-units``
wheels bundle UDUNITS-2, so nothing outside pip is needed), run as a library on the CF
version the files declare (``Conventions: CF-1.8``). A file passes when the checker reports
no failed check at all, except the warnings listed in :data:`ACCEPTED_DIMENSION_ORDER`, each
with the reason the layout is kept.

Files checked: ``faconvlstm predict`` of an autoencoder and of a forecaster (WeatherBench2
layout), ``faconvlstm embed`` with its ``--hidden`` and ``--attention`` siblings, and the
writers of :mod:`faconvlstm.data.io` (labels, fields with pressure levels, forecasts with
pressure levels), in the ``standard``, ``noleap`` and ``360_day`` calendars.
"""

from __future__ import annotations

import copy
import re

import cftime
import netCDF4
import numpy as np
import pytest
import xarray as xr
from compliance_checker.cf.cf import CF1_8Check
from compliance_checker.runner import CheckSuite

from faconvlstm.data import save_dataset

CF = "cf:1.8"  # the version global_attrs() declares; the checker tests that version's rules

#: ``§2.4 Dimensions`` warnings accepted, per file kind: the variables whose dimension order
#: differs from CF's recommendation (T, Z, Y, X; "other dimensions should, whenever
#: possible, be placed to the left"), and why. Any other warning, or one of these on a
#: variable not listed, fails the test.
ACCEPTED_DIMENSION_ORDER: dict[str, set[str]] = {
    # (time, embedding_dim): one row per time step, the (n_samples, n_features) layout
    # scikit-learn and the probes read directly.
    "embed": {"embedding"},
    "embed_forecaster": {"embedding"},
    "embed_360_day": {"embedding"},
    # cluster_probability(time, cluster_id): the same (n_samples, n_features) layout.
    "embed_clustered": {"embedding", "cluster_probability"},
    # (time, feature, lat, lon): the model's own (T, C, H, W) layout, one map per time step.
    "embed_hidden": {"hidden"},
    # (time, query, key) attention matrices: the key axis last, so each row sums to 1.
    "embed_attention": {"temporal_attention", "row_attention", "col_attention"},
    # (time, prediction_timedelta, [level,] latitude, longitude): the WeatherBench2 layout,
    # which its evaluation code reads; valid_time(time, prediction_timedelta) goes with it.
    "predict_forecaster": {"t2m", "z500", "tp", "valid_time"},
    "forecast_levels": {"t2m", "temperature", "valid_time"},
}

#: The tiny runs' trainer: one optimiser step, no sanity check (the checkpoint is what
#: matters here, not the fit).
ONE_STEP = {
    "max_epochs": 1,
    "limit_train_batches": 1,
    "limit_val_batches": 1,
    "num_sanity_val_steps": 0,
}


@pytest.fixture(scope="module")
def suite():
    """The checker with its CF-1.8 suite only (loading every installed suite imports the
    deprecated IOOS SOS checkers, which warn)."""
    CheckSuite.checkers[CF] = CF1_8Check
    return CheckSuite()


def cf_findings(suite, path) -> list[tuple[str, str]]:
    """``(section, message)`` for every check the CF checker failed on ``path``."""
    ds = suite.load_dataset(str(path))
    try:
        results, crashed = suite.run_all(ds, [CF], skip_checks=[])[CF]
    finally:
        ds.close()
    assert not crashed, f"the checker itself failed on {path.name}: {crashed}"
    found = []
    for r in results:
        passed = r.value[0] == r.value[1] if isinstance(r.value, tuple) else bool(r.value)
        if not passed:
            found += [(r.name, m) for m in r.msgs] or [(r.name, "(no message)")]
    return found


def unexpected(findings, kind) -> list[tuple[str, str]]:
    """The findings not accepted in :data:`ACCEPTED_DIMENSION_ORDER` for ``kind``."""
    allowed = ACCEPTED_DIMENSION_ORDER.get(kind, set())
    left = []
    for section, message in findings:
        var = re.match(r"(\w+)'s spatio-temporal dimensions are not in the recommended", message)
        if not (section == "§2.4 Dimensions" and var and var.group(1) in allowed):
            left.append((section, message))
    return left


def _fit(tiny, out, task="autoencoder", calendar="standard", clustered=False):
    import torch

    from faconvlstm.training.config import load_config
    from faconvlstm.training.fit import fit

    cfg = copy.deepcopy(tiny)
    cfg["task"] = task
    cfg["trainer"].update(ONE_STEP)
    cfg.pop("checkpoint", None)
    cfg["data"]["synthetic"]["calendar"] = calendar
    if task == "forecast":
        cfg["data"]["horizon"] = 2
    if clustered:  # joint deep clustering: one warm-up epoch, then centroids and the KL
        cfg["model"]["n_clusters"] = 2
        cfg["loss"] = {**cfg.get("loss", {}), "clustering": {"weight": 0.1, "warmup_epochs": 1}}
        cfg["trainer"]["max_epochs"] = 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit(load_config(cfg), out=out)
    finally:
        torch.set_num_threads(threads)


def _cli(*args):
    from faconvlstm import cli

    assert cli.main([str(a) for a in args]) == 0


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, tiny_for_module):
    """``outputs(kind) -> Path``: each kind of file, made on first request (seconds each)."""
    root = tmp_path_factory.mktemp("cf")
    ckpts, made = {}, {}

    def ckpt(name):
        if name not in ckpts:
            task, calendar = {
                "autoencoder": ("autoencoder", "standard"),
                "forecaster": ("forecast", "noleap"),
                "360_day": ("autoencoder", "360_day"),
                "clustered": ("autoencoder", "standard"),
            }[name]
            ckpts[name] = _fit(
                tiny_for_module, root / f"run_{name}", task, calendar, name == "clustered"
            )
        return ckpts[name]

    times = np.array(["2001-01-01", "2001-01-02", "2001-01-03"], dtype="datetime64[ns]")
    lat, lon = np.linspace(-60.0, 60.0, 4), np.arange(5) * 72.0
    levels = ["t2m", "temperature@500", "temperature@850"]

    def make(kind):
        # The writers are imported where used: the calendar tests also run (through the
        # CLI) against older source trees that lack forecast_dataset.
        from faconvlstm.data import io

        path = root / f"{kind}.nc"
        if kind == "predict_autoencoder":
            _cli("predict", "--ckpt", ckpt("autoencoder"), "--out", path)
        elif kind == "predict_forecaster":
            _cli("predict", "--ckpt", ckpt("forecaster"), "--out", path, "--stride", 30)
        elif kind == "predict_360_day":
            _cli("predict", "--ckpt", ckpt("360_day"), "--out", path)
        elif kind in ("embed", "embed_hidden", "embed_attention"):
            main = root / "embed.nc"
            _cli("embed", "--ckpt", ckpt("autoencoder"), "--out", main, "--hidden", "--attention")
            made.update(
                embed=main,
                embed_hidden=root / "embed.hidden.nc",
                embed_attention=root / "embed.attention.nc",
            )
            return made[kind]
        elif kind == "embed_forecaster":
            _cli("embed", "--ckpt", ckpt("forecaster"), "--out", path)
        elif kind == "embed_360_day":
            _cli("embed", "--ckpt", ckpt("360_day"), "--out", path)
        elif kind == "embed_clustered":
            _cli("embed", "--ckpt", ckpt("clustered"), "--out", path)
        elif kind == "labels":
            io.write_labels([0, 2, 2], times, path)
        elif kind == "fields_levels":
            cf_times = xr.date_range("2001-02-28", periods=3, calendar="360_day", use_cftime=True)
            io.write_fields(np.zeros((3, 3, 4, 5)), cf_times, levels, lat, lon, path)
        elif kind == "forecast_levels":
            valid = np.stack([times + np.timedelta64(6 * k, "h") for k in (1, 2)], axis=1)
            ds = io.forecast_dataset(np.zeros((3, 2, 3, 4, 5)), times, valid, levels, lat, lon)
            save_dataset(ds, path)
        else:
            raise KeyError(kind)
        return path

    def get(kind):
        if kind not in made:
            made[kind] = make(kind)
        return made[kind]

    get.ckpt = ckpt  # the checkpoints themselves: "autoencoder", "forecaster", "360_day"
    return get


KINDS = [
    "predict_autoencoder",
    "predict_forecaster",
    "predict_360_day",
    "embed",
    "embed_hidden",
    "embed_attention",
    "embed_forecaster",
    "embed_360_day",
    "embed_clustered",
    "labels",
    "fields_levels",
    "forecast_levels",
]


@pytest.mark.parametrize("kind", KINDS)
def test_the_cf_checker_finds_nothing_but_the_accepted_dimension_orders(suite, outputs, kind):
    findings = cf_findings(suite, outputs(kind))
    assert unexpected(findings, kind) == []


def test_every_accepted_warning_still_occurs(suite, outputs):
    # An accepted warning that no longer occurs is a stale excuse: drop it from the list.
    for kind, variables in ACCEPTED_DIMENSION_ORDER.items():
        seen = {
            re.match(r"\w+", message).group(0)
            for section, message in cf_findings(suite, outputs(kind))
            if section == "§2.4 Dimensions"
        }
        assert seen == variables, kind


def test_the_checker_reports_what_plain_xarray_writes(suite, tmp_path):
    # The same embeddings written by plain xarray (int64 times and indices, no latitude
    # attributes): the checker must flag them, or the tests above would pass on anything.
    path = tmp_path / "plain.nc"
    xr.Dataset(
        {"embedding": (("time", "embedding_dim", "lat"), np.zeros((3, 2, 4), "float32"))},
        coords={
            "time": np.array(["2001-01-01", "2001-01-02", "2001-01-03"], "datetime64[ns]"),
            "embedding_dim": np.arange(2),
            "lat": ("lat", np.linspace(-60.0, 60.0, 4), {"units": "degrees_north"}),
        },
        attrs={"Conventions": "CF-1.8"},
    ).to_netcdf(path)
    found = cf_findings(suite, path)
    assert ("§2.2 Data Types", "The variable time failed because the datatype is int64") in found
    assert any(s == "§4.1 Latitude Coordinate" and "'lat'" in m for s, m in found), found


def test_netcdf_integers_and_times_are_cf18_types_and_round_trip_exactly(tmp_path):
    # Seconds since 1900 up to 2025 overflow int32 (2**31 s ≈ 68 years): float64 keeps them.
    times = np.array(["1900-01-01T00:00:00", "2025-01-01T00:00:01"], "datetime64[ns]")
    ds = xr.Dataset(
        {"big": ("time", np.array([0, 2**40], "int64"))},
        coords={
            "time": times,
            "lead": ("lead", np.array([6, 12], "timedelta64[h]").astype("timedelta64[ns]")),
            "index": ("index", np.arange(3)),
            "noleap": ("noleap", [cftime.datetime(2001, 2, 28, calendar="noleap")]),
        },
    )
    path = save_dataset(ds, tmp_path / "types.nc")
    with netCDF4.Dataset(path) as nc:
        kinds = {name: nc[name].dtype.str[1:] for name in ("time", "lead", "index", "noleap")}
        assert kinds == {"time": "f8", "lead": "f8", "index": "i4", "noleap": "f8"}
        assert nc["big"].dtype.str[1:] == "i8"  # does not fit int32: written as it is
    with xr.open_dataset(path, use_cftime=None) as back:
        np.testing.assert_array_equal(back["time"].values, times)
        np.testing.assert_array_equal(back["lead"].values, ds["lead"].values)
        np.testing.assert_array_equal(back["index"].values, [0, 1, 2])
        np.testing.assert_array_equal(back["big"].values, [0, 2**40])
        assert back["noleap"].values[0] == cftime.datetime(2001, 2, 28, calendar="noleap")


@pytest.mark.parametrize(
    ("kind", "calendar", "first", "count"),
    [
        # 2000 is a leap year in the standard calendar, not in noleap: 730 days in two years.
        ("embed_forecaster", "noleap", (2000, 1, 1), 730),
        ("predict_forecaster", "noleap", (2000, 1, 6), 25),  # window 6, a forecast every 30
        ("embed_360_day", "360_day", (2000, 1, 1), 720),  # twelve 30-day months a year
        ("predict_360_day", "360_day", (2000, 1, 1), 720),
    ],
)
def test_the_checkpoint_calendar_is_recorded(outputs, kind, calendar, first, count):
    path = outputs(kind)
    with netCDF4.Dataset(path) as nc:
        for name in ("time", "valid_time"):
            if name in nc.variables:
                assert nc[name].calendar == calendar, name
    with xr.open_dataset(path) as ds:
        stamps = ds["time"].values
        assert ds["time"].encoding["calendar"] == calendar
        assert stamps.size == count
        assert stamps[0] == cftime.datetime(*first, calendar=calendar)
        assert all(t.calendar == calendar for t in stamps)
        if calendar == "360_day":  # a day no other calendar has
            assert cftime.datetime(2000, 2, 30, calendar=calendar) in set(stamps)


# The checkpoint's own record, meta["data"]["calendar"], used to come from
# time.attrs["calendar"], which xarray leaves empty for cftime stamps (it keeps a decoded
# calendar in .encoding, and synthetic cftime stamps have neither): cftime runs recorded
# "standard". It now comes from the stamps themselves (fails before: noleap != standard).
@pytest.mark.parametrize(
    ("run", "calendar"),
    [
        ("autoencoder", "standard"),
        ("forecaster", "noleap"),
        ("360_day", "360_day"),
    ],
)
def test_the_checkpoint_metadata_records_the_training_calendar(outputs, run, calendar):
    from faconvlstm.training.infer import load_model

    _, meta = load_model(outputs.ckpt(run))
    assert meta["data"]["calendar"] == calendar
