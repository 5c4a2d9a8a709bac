"""User-given probe targets and regime labels (``evaluation.targets`` / ``labels``)."""

import copy
import json

import numpy as np
import pytest
import xarray as xr
from tiny_compare import TINY

from faconvlstm.data import synthetic
from faconvlstm.protocol.config import LabelsConfig, TargetConfig, load_compare_config
from faconvlstm.protocol.runs import compare
from faconvlstm.protocol.targets import read_labels, target_series
from faconvlstm.training.config import ConfigError


@pytest.mark.parametrize(
    ("targets", "match"),
    [
        ([{"name": "x", "index": "nino35"}], r"evaluation.targets\[0\].index"),
        ([{"name": "x", "index": "file"}], "needs 'file' and 'variable'"),
        ([{"index": "nao"}], r"'evaluation.targets\[0\].name' is required"),
        ([{"name": "x", "index": "nao"}, {"name": "x", "index": "jet"}], "must be unique"),
        ([{"name": "a b", "index": "nao"}], "must be unique and made of letters"),
        ([{"name": "x", "index": "nao", "lat_range": [1]}], "lat_range"),
        ({"name": "x"}, "expected a list"),
    ],
)
def test_bad_targets_are_refused_naming_the_key(targets, match):
    cfg = copy.deepcopy(TINY)
    cfg["evaluation"]["targets"] = targets
    with pytest.raises(ConfigError, match=match):
        load_compare_config(cfg)


def test_labels_need_file_and_variable():
    cfg = copy.deepcopy(TINY)
    cfg["evaluation"]["labels"] = {"file": "x.nc"}
    with pytest.raises(ConfigError, match=r"'evaluation\.labels\.variable' is required"):
        load_compare_config(cfg)


def _fields(n=40, seed=0):
    rng = np.random.default_rng(seed)
    lat, lon = np.arange(-20.0, 21.0, 5.0), np.arange(150.0, 300.0, 10.0)
    fields = rng.standard_normal((n, 2, lat.size, lon.size))
    times = np.arange("2000-01-01", n, dtype="datetime64[D]")[:n]
    return fields, times, lat, lon


def test_builtin_index_is_computed_from_the_named_channel():
    fields, times, lat, lon = _fields()
    box = (np.abs(lat) <= 5)[:, None] & ((lon >= 190) & (lon <= 240))[None]
    fields[:, 1][:, box] += np.linspace(-3, 3, fields.shape[0])[:, None]  # ENSO in "sst"
    out = target_series(
        [TargetConfig("n34", "nino34", channel="sst")], fields, 20, times, lat, lon, ["t", "sst"]
    )
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones(lon.size)
    expected = (fields[:, 1] * np.where(box, w, 0)).sum((1, 2)) / np.where(box, w, 0).sum()
    np.testing.assert_allclose(out["n34"], expected, rtol=1e-10)
    with pytest.raises(ConfigError, match=r"targets\[0\].channel': the nino34 index needs"):
        target_series([TargetConfig("n34", "nino34")], fields, 20, times, lat, lon, ["t", "sst"])
    with pytest.raises(ConfigError, match="no channel 'u'"):
        target_series(
            [TargetConfig("j", "jet", channel="u")], fields, 20, times, lat, lon, ["t", "sst"]
        )


@pytest.mark.parametrize("suffix", [".csv", ".nc"])
def test_file_target_is_read_at_the_data_stamps_and_a_missing_stamp_is_named(tmp_path, suffix):
    fields, times, lat, lon = _fields()
    series = np.sin(np.arange(times.size) / 5.0)
    da = xr.DataArray(series, dims="time", coords={"time": times}, name="idx")
    path = tmp_path / f"idx{suffix}"
    if suffix == ".csv":
        da.to_dataframe().reset_index().to_csv(path, index=False)
    else:
        da.to_netcdf(path)
    target = TargetConfig("idx", "file", file=str(path), variable="idx")
    # the file holds the stamps in another order than asked: values follow the stamps
    order = np.random.default_rng(0).permutation(times.size)
    out = target_series([target], fields[order], 20, times[order], lat, lon, ["t", "sst"])
    np.testing.assert_allclose(out["idx"], series[order])
    later = times + np.timedelta64(1, "D")
    with pytest.raises(ConfigError, match=r"has no value at 2000-02-10.*1 of the 40 stamps"):
        target_series([target], fields, 20, later, lat, lon, ["t", "sst"])
    with pytest.raises(ConfigError, match="has no variable 'nope'"):
        target_series(
            [TargetConfig("i", "file", file=str(path), variable="nope")],
            fields,
            20,
            times,
            lat,
            lon,
            ["t"],
        )


def test_labels_become_integer_codes(tmp_path):
    times = np.arange("2000-01-01", 6, dtype="datetime64[D]")[:6]
    da = xr.DataArray(["warm", "cold", "warm", "neutral", "cold", "warm"], dims="time")
    da = da.assign_coords(time=times).rename("phase")
    da.to_dataframe().reset_index().to_csv(tmp_path / "l.csv", index=False)
    codes = read_labels(LabelsConfig(str(tmp_path / "l.csv"), "phase"), times)
    assert codes.tolist() == [2, 0, 2, 1, 0, 2]


def test_a_given_series_scores_as_the_builtin_probe_and_given_labels_as_the_truth(tmp_path):
    """The planted oscillator and regimes, written to files and given as a target and as
    labels, give exactly the built-in probe R² and ARI (EOF only: no training)."""
    cfg = copy.deepcopy(TINY)
    cfg["models"], cfg["cost"]["enabled"] = ["eof"], False
    _, truth = synthetic(**cfg["train"]["data"]["synthetic"], seed=0)
    truth["oscillator"].to_dataframe().reset_index()[["time", "oscillator"]].to_csv(
        tmp_path / "osc.csv", index=False
    )
    truth[["regime"]].to_netcdf(tmp_path / "regime.nc")
    builtin = json.loads(compare(cfg, tmp_path / "builtin", progress=False).read_text())
    cfg["evaluation"]["targets"] = [
        {"name": "osc", "file": str(tmp_path / "osc.csv"), "variable": "oscillator"},
        {"name": "box", "index": "nino34", "channel": "t2m", "lat_range": [-30, 30]},
    ]
    cfg["evaluation"]["labels"] = {"file": str(tmp_path / "regime.nc"), "variable": "regime"}
    given = json.loads(compare(cfg, tmp_path / "given", progress=False).read_text())
    b, g = builtin["models"]["eof"]["summary"], given["models"]["eof"]["summary"]
    assert g["probe_r2_target:osc"] == pytest.approx(b["probe_r2"], abs=1e-12)
    assert g["ari_truth"] == pytest.approx(b["ari_truth"], abs=1e-12)
    assert np.isfinite(g["probe_r2_target:box"])
    assert given["data"]["targets"] == ["osc", "box"]
    assert given["data"]["labels"].endswith("regime.nc:regime")
    report = (tmp_path / "given" / "report.md").read_text()
    assert "| linear-probe R² of osc (given target, blocked CV by year) |" in report
    assert "regimes labelled in" in report
    # the climatology baseline is the RMS of the held-out anomalies: EOFs must beat it
    clim = given["data"]["recon_rmse_climatology"]
    assert b["recon_rmse"] < clim and f"reconstruction RMSE {clim:.3f}" in report
    # a headline metric no model has (FA internals, with EOF only) is not a row of dashes
    assert "| embedding drift in the last epoch" not in report
    # labels over both periods give the built-in regime probe and its single-day baseline
    assert g["probe_acc_regime"] == pytest.approx(b["probe_acc_regime"], abs=1e-12)
    assert given["data"]["probe_acc_regime_field"] == pytest.approx(
        builtin["data"]["probe_acc_regime_field"], abs=1e-12
    )
    # labels of the held-out year only: ARI as before, no regime probe (nothing to fit on)
    truth[["regime"]].sel(time=slice("2001-01-01", None)).to_netcdf(tmp_path / "heldout.nc")
    cfg["evaluation"]["labels"] = {"file": str(tmp_path / "heldout.nc"), "variable": "regime"}
    held = json.loads(compare(cfg, tmp_path / "heldout", progress=False).read_text())
    h = held["models"]["eof"]["summary"]
    assert h["ari_truth"] == pytest.approx(b["ari_truth"], abs=1e-12)
    assert h.get("probe_acc_regime") is None and held["data"]["probe_acc_regime_field"] is None
