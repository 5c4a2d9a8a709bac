"""SeasonalPositionalEncoding: phase and values at known dates, calendars, no gradients."""

import math

import cftime
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from faconvlstm.heads import SeasonalPositionalEncoding

# float32 sin/cos of angles ≤ 2π·K: absolute error well below 1e-5.
ATOL = 1e-5


def phase(times) -> np.ndarray:
    """The encoding's annual phase φ (float32, so compare with relative error ~1e-7)."""
    return SeasonalPositionalEncoding(8, harmonics=1).phase(times).numpy()


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2021-01-01T00", 0.0),
        ("2021-01-02T00", 1 / 365),
        ("2021-01-01T12", 0.5 / 365),  # the time of day counts (hourly ERA5)
        ("2021-12-31T00", 364 / 365),
        ("2020-12-31T00", 365 / 366),  # leap year: 366 days
        ("2020-03-01T00", 60 / 366),
        ("2021-03-01T00", 59 / 365),
        ("2000-02-29T00", 59 / 366),  # divisible by 400: leap
        ("1900-03-01T00", 59 / 365),  # divisible by 100 only: not leap
    ],
)
def test_phase_of_datetime64_at_known_dates(stamp, expected):
    assert phase(np.array([stamp], dtype="datetime64[h]"))[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("calendar", "date", "expected"),
    [
        ("360_day", (2001, 3, 1), 60 / 360),
        ("360_day", (2001, 12, 30), 359 / 360),
        ("360_day", (2000, 2, 30), 59 / 360),  # 30 February exists
        ("noleap", (2000, 3, 1), 59 / 365),  # no 29 February even in 2000
        ("noleap", (2000, 12, 31), 364 / 365),
        ("standard", (2000, 12, 31), 365 / 366),
        ("all_leap", (2001, 12, 31), 365 / 366),
    ],
)
def test_phase_of_cftime_calendars(calendar, date, expected):
    t = cftime.datetime(*date, calendar=calendar)
    assert phase(np.array([t], dtype=object))[0] == pytest.approx(expected)


def test_phase_accepts_pandas_xarray_and_keeps_batch_shape():
    index = pd.date_range("2021-01-01", periods=6, freq="D")
    expected = np.arange(6) / 365
    np.testing.assert_allclose(phase(index), expected, rtol=1e-6)
    np.testing.assert_allclose(phase(pd.Series(index)), expected, rtol=1e-6)
    np.testing.assert_allclose(phase(xr.DataArray(index.values, dims="time")), expected, rtol=1e-6)
    cf = xr.date_range("2001-01-01", periods=6, freq="D", calendar="360_day", use_cftime=True)
    np.testing.assert_allclose(phase(cf), np.arange(6) / 360, rtol=1e-6)
    batch = phase(index.values.reshape(2, 3))
    assert batch.shape == (2, 3)
    np.testing.assert_allclose(batch, expected.reshape(2, 3), rtol=1e-6)
    cf_batch = phase(np.asarray(cf).reshape(3, 2))
    np.testing.assert_allclose(cf_batch, np.arange(6).reshape(3, 2) / 360, rtol=1e-6)


def test_encoding_layout_and_values_at_known_dates():
    enc = SeasonalPositionalEncoding(12, harmonics=2, max_period=100.0)
    times = np.array(["2021-01-01", "2021-04-02", "2021-07-02"], dtype="datetime64[D]")
    out = enc(times)
    assert out.shape == (3, 12) and out.dtype == torch.float32
    phi = np.array([0.0, 91 / 365, 182 / 365])
    for k in (1, 2):
        np.testing.assert_allclose(out[:, 2 * k - 2], np.sin(2 * np.pi * k * phi), atol=ATOL)
        np.testing.assert_allclose(out[:, 2 * k - 1], np.cos(2 * np.pi * k * phi), atol=ATOL)
    # index part: D = 8 channels, ω_i = 100^(-2i/8), i = 0..3, at steps 0, 1, 2
    step = np.arange(3)[:, None]
    omega = 100.0 ** (-2 * np.arange(4) / 8)
    np.testing.assert_allclose(out[:, 4::2], np.sin(step * omega), atol=ATOL)
    np.testing.assert_allclose(out[:, 5::2], np.cos(step * omega), atol=ATOL)
    # January 1st: sin = 0, cos = 1 for every harmonic
    np.testing.assert_allclose(out[0, :4], [0, 1, 0, 1], atol=ATOL)


def test_same_date_in_different_years_shares_the_seasonal_part():
    enc = SeasonalPositionalEncoding(16, harmonics=4)
    years = [2019, 2021, 2022, 2023]  # non-leap years: identical phase
    times = np.array([[f"{y}-05-17", f"{y}-05-18"] for y in years], dtype="datetime64[D]")
    out = enc(times)
    assert out.shape == (4, 2, 16)
    for b in range(1, 4):
        torch.testing.assert_close(out[b], out[0], atol=0.0, rtol=0.0)
    # a leap year shifts dates after February by at most one day: |Δφ| < 1/365
    leap = enc(np.array(["2020-05-17", "2020-05-18"], dtype="datetime64[D]"))
    bound = 2 * math.pi * 4 / 365  # Lipschitz constant of sin/cos(2πKφ) times |Δφ|
    assert (leap[:, :8] - out[0, :, :8]).abs().max() < bound
    assert (leap[:, :8] - out[0, :, :8]).abs().max() > 0


def test_new_year_neighbours_are_close_and_far_dates_are_not():
    enc = SeasonalPositionalEncoding(16, harmonics=4)
    dec31, jan1, jul1 = enc(
        np.array(["2021-12-31", "2022-01-01", "2022-07-01"], dtype="datetime64[D]")
    )[:, :8]
    one_day = (dec31 - jan1).norm()
    assert one_day < 0.2  # chord of 1/365 turn for K = 4 harmonics ≈ 0.09
    assert (jul1 - jan1).norm() > 10 * one_day


def test_cftime_360_day_and_phase_tensor_give_same_encoding():
    enc = SeasonalPositionalEncoding(16, harmonics=3)
    times = np.array(
        [cftime.datetime(2001, m, 15, calendar="360_day") for m in (1, 4, 7, 10)], dtype=object
    )
    phases = torch.tensor([14, 104, 194, 284], dtype=torch.float32) / 360
    torch.testing.assert_close(enc(times), enc(phases), atol=ATOL, rtol=0)
    # equal spacing in a 360-day calendar: a quarter turn between consecutive stamps
    out = enc(times)
    np.testing.assert_allclose(out[1, 0], math.sin(2 * math.pi * 104 / 360), atol=ATOL)


def test_without_times_only_the_index_encoding_remains():
    enc = SeasonalPositionalEncoding(16, harmonics=4)
    no_times = enc(length=5)
    with_times = enc(pd.date_range("2021-03-01", periods=5, freq="D"))
    assert no_times.shape == (5, 16)
    assert torch.count_nonzero(no_times[:, :8]) == 0
    torch.testing.assert_close(no_times[:, 8:], with_times[:, 8:])
    shifted = enc(length=3, offset=2)
    torch.testing.assert_close(shifted[:, 8:], no_times[2:, 8:])
    with pytest.raises(ValueError, match="times or length"):
        enc()


def test_encoding_has_no_parameters_and_no_gradient():
    enc = SeasonalPositionalEncoding(32, harmonics=4)
    assert list(enc.parameters()) == []
    assert enc.state_dict() == {}  # buffers are derived, not saved
    phase = torch.rand(2, 6, requires_grad=True)
    out = enc(phase)
    assert not out.requires_grad
    assert out.grad_fn is None


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="harmonics"):
        SeasonalPositionalEncoding(6, harmonics=4)
    with pytest.raises(TypeError, match="float phases"):
        SeasonalPositionalEncoding(8, harmonics=2)(torch.arange(4))
