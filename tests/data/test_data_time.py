"""Calendar-aware annual phase and time-axis checks (faconvlstm.data.time)."""

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from faconvlstm.data.time import (
    annual_phase,
    check_time_axis,
    day_of_year,
    days_in_year,
    elapsed_days,
    time_step_days,
)


def test_annual_phase_known_gregorian_values():
    times = np.array(
        ["2001-01-01", "2001-07-02T12:00", "2000-12-31T12:00", "2000-03-01"],
        dtype="datetime64[ns]",
    )
    expected = [0.0, 182.5 / 365, 365.5 / 366, 60 / 366]  # 2000 is a leap year
    np.testing.assert_allclose(annual_phase(times), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("calendar", "date", "expected", "year_length"),
    [
        ("360_day", (2001, 7, 1), 180 / 360, 360),
        ("noleap", (2000, 3, 1), 59 / 365, 365),
        ("all_leap", (2001, 3, 1), 60 / 366, 366),
        ("julian", (1900, 12, 31), 365 / 366, 366),  # 1900 is leap in Julian
        ("proleptic_gregorian", (1900, 12, 31), 364 / 365, 365),  # … not in Gregorian
    ],
)
def test_annual_phase_follows_the_model_calendar(calendar, date, expected, year_length):
    t = cftime.datetime(*date, calendar=calendar)
    assert annual_phase([t])[0] == pytest.approx(expected, abs=1e-12)
    assert days_in_year([t])[0] == year_length


def test_annual_phase_accepts_xarray_pandas_and_cftime_indexes():
    idx = pd.date_range("2001-01-01", periods=4, freq="90D")
    ref = annual_phase(idx.values)
    np.testing.assert_array_equal(annual_phase(idx), ref)
    np.testing.assert_array_equal(annual_phase(xr.DataArray(idx, dims="time")), ref)
    cf = xr.date_range("2001-01-01", periods=4, freq="MS", calendar="360_day", use_cftime=True)
    np.testing.assert_allclose(annual_phase(cf), [0, 30 / 360, 60 / 360, 90 / 360])


def test_annual_phase_keeps_the_batch_shape():
    times = np.array(
        [["2001-01-01", "2001-07-02T12"], ["2000-01-01", "2000-01-01"]], dtype="datetime64[ns]"
    )
    phase = annual_phase(times)
    assert phase.shape == (2, 2)
    np.testing.assert_allclose(phase, [[0.0, 0.5], [0.0, 0.0]])
    cf = np.array([[cftime.datetime(2001, 7, 1, calendar="360_day")] * 3] * 2)
    np.testing.assert_allclose(annual_phase(cf), np.full((2, 3), 0.5))


def test_annual_phase_of_missing_stamp_is_nan():
    phase = annual_phase(np.array(["2001-01-01", "NaT"], dtype="datetime64[ns]"))
    assert phase[0] == 0.0 and np.isnan(phase[1])


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(
        min_value=pd.Timestamp("1700-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2200-12-31").to_pydatetime(),
    )
)
def test_annual_phase_is_in_unit_interval_and_matches_day_of_year(dt):
    t = np.array([np.datetime64(dt, "ns")])
    phase = annual_phase(t)[0]
    assert 0.0 <= phase < 1.0
    # The phase lies within the day of year it belongs to.
    doy, n = day_of_year(t)[0], days_in_year(t)[0]
    assert (doy - 1) / n <= phase < doy / n + 1e-12


def test_check_time_axis_accepts_daily_monthly_midmonth_and_yearly_steps():
    check_time_axis(pd.date_range("2000-01-01", periods=50, freq="D"))
    # Mid-month stamps (15th/16th) and month lengths differ, yet the step is one month.
    mid = [np.datetime64(f"2000-{m:02d}-{15 + m % 2:02d}T12") for m in range(1, 13)]
    check_time_axis(np.array(mid, dtype="datetime64[ns]"))
    check_time_axis(pd.date_range("1963-01-15", periods=30, freq="YS") + pd.Timedelta("14D"))
    check_time_axis(
        xr.date_range("2000-01-01", periods=24, freq="MS", calendar="noleap", use_cftime=True)
    )


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        (["2001-01-01", "2001-01-02", "2001-01-02"], "duplicated"),
        (["2001-01-01", "2001-01-03", "2001-01-02"], "not monotonically increasing"),
        (["2001-01-01", "2001-01-02", "2001-01-04", "2001-01-05"], "irregular step"),
    ],
)
def test_check_time_axis_errors_name_the_problem_and_fix(stamps, message):
    with pytest.raises(ValueError, match=message) as err:
        check_time_axis(np.array(stamps, dtype="datetime64[ns]"))
    assert "2001-01-0" in str(err.value)  # the offending stamp is shown


def test_elapsed_days_and_step_in_model_calendar():
    t = xr.date_range("2001-01-01", periods=3, freq="MS", calendar="360_day", use_cftime=True)
    np.testing.assert_allclose(elapsed_days(t), [0, 30, 60])
    assert time_step_days(t) == 30
