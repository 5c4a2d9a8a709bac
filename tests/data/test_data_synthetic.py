"""Synthetic climate: every advertised process is really there, with the stated sign."""

import time

import numpy as np
import pytest

from faconvlstm.data import compute_stats, latitude_weights, open_gridded, synthetic

QUIET = dict(
    seasonal_amplitude=0.0,
    enso_amplitude=0.0,
    regime_amplitude=0.0,
    wave_amplitude=0.0,
    trend=0.0,
    variance_change=0.0,
)


@pytest.fixture(scope="module")
def default():
    return synthetic(seed=0)


def test_default_is_small_fast_and_shaped_like_reanalysis():
    start = time.process_time()
    data, truth = synthetic(seed=1)
    assert time.process_time() - start < 2.0  # CPU time: robust to other jobs on the host
    assert dict(data.sizes) == {"time": 1461, "lat": 32, "lon": 64}
    assert list(data.data_vars) == ["t2m", "z500", "tp"]
    assert [data[v].attrs["units"] for v in data.data_vars] == ["K", "m", "mm day-1"]
    assert str(data["time"].values[0])[:10] == "2000-01-01"
    da = open_gridded(data)
    assert da.attrs["periodic_lon"] is True
    assert truth["regime"].dtype.kind == "i" and truth["regime"].dims == ("time",)
    assert truth["oscillator"].dims == ("time",)
    assert truth["regime_pattern"].dims == ("state", "variable", "lat", "lon")
    assert float(data["tp"].min()) > 0  # precipitation-like: positive


def test_deterministic_for_a_seed():
    kw = dict(n_years=1, nlat=8, nlon=16)
    a, ta = synthetic(seed=3, **kw)
    b, tb = synthetic(seed=3, **kw)
    c, _ = synthetic(seed=4, **kw)
    np.testing.assert_array_equal(a["t2m"].values, b["t2m"].values)
    np.testing.assert_array_equal(ta["regime"].values, tb["regime"].values)
    assert not np.allclose(a["t2m"].values, c["t2m"].values)


def test_seasonal_cycle_is_latitude_dependent_and_opposite_between_hemispheres(default):
    data, _ = default
    t2m = data["t2m"]
    month = t2m["time"].dt.month
    july = t2m.where(month == 7, drop=True).mean("time")
    jan = t2m.where(month == 1, drop=True).mean("time")
    amp = (july - jan).mean("lon")
    assert float(amp.sel(lat=70, method="nearest")) > 8  # ≈ 2·3·sin70°·2 K ≈ 11 K
    assert float(amp.sel(lat=-70, method="nearest")) < -8
    assert abs(float(amp.sel(lat=2.8, method="nearest"))) < 2


def test_teleconnection_lobes_have_opposite_sign_half_the_domain_apart(default):
    data, truth = default
    (ei, ej), (ri, rj) = truth.attrs["enso_center_index"], truth.attrs["remote_center_index"]
    assert truth.attrs["enso_variable"] == "t2m" and truth.attrs["remote_variable"] == "z500"
    np.testing.assert_allclose(truth["enso_center"], [data.lat[ei], data.lon[ej]])
    dlon = abs(float(truth["enso_center"][1] - truth["remote_center"][1])) % 360
    assert min(dlon, 360 - dlon) >= 180 - 1e-9  # half the periodic domain
    osc = truth["oscillator"].values
    tropical = data["t2m"].values[:, ei, ej]
    remote = data["z500"].values[:, ri, rj]
    # No seasonal cycle at the tropical point; the remote point's cycle is removed by
    # subtracting the calendar-month mean.
    months = data["time"].dt.month.values
    remote_anom = remote - np.array([remote[months == m].mean() for m in months])
    r_trop = np.corrcoef(tropical, osc)[0, 1]
    r_remote = np.corrcoef(remote_anom, osc)[0, 1]
    r_lobes = np.corrcoef(tropical, remote_anom)[0, 1]
    # 1461 daily values with ~20-day noise memory: ≈70 effective samples, so |r| > 0.3 is
    # well beyond chance (2σ ≈ 0.24); the expected values are ≈ 0.7, −0.6 and −0.45.
    assert r_trop > 0.5
    assert r_remote < -0.4
    assert r_lobes < -0.3
    # The remote lobe is on z500 only: t2m there does not follow the oscillator.
    t2m_remote = data["t2m"].values[:, ri, rj]
    t2m_remote = t2m_remote - np.array([t2m_remote[months == m].mean() for m in months])
    assert abs(np.corrcoef(t2m_remote, osc)[0, 1]) < 0.2


def test_oscillator_period_lies_between_2_and_7_years():
    _, truth = synthetic(seed=0, n_years=120, freq="MS", nlat=4, nlon=8)
    osc = truth["oscillator"].values
    power = np.abs(np.fft.rfft(osc - osc.mean())) ** 2
    freq = np.fft.rfftfreq(osc.size, d=1 / 12)  # cycles per year
    # Smooth over 9 frequency bins before locating the peak (single periodogram bins are
    # χ²₂-noisy).
    smooth = np.convolve(power, np.ones(9) / 9, mode="same")
    peak_period = 1 / freq[1:][np.argmax(smooth[1:])]
    assert 2 <= peak_period <= 7
    share = power[(freq >= 1 / 7) & (freq <= 1 / 2)].sum() / power[1:].sum()
    assert share > 0.6  # most variance in the ENSO band


def test_regimes_are_persistent_markov_states(default):
    _, truth = default
    labels = truth["regime"].values
    stay = np.mean(labels[1:] == labels[:-1])
    # Binomial std over 1460 transitions ≈ 0.008: 0.9 ± 0.03 is a 4σ band.
    assert stay == pytest.approx(0.9, abs=0.03)
    assert set(labels) == {0, 1, 2, 3}
    np.testing.assert_allclose(truth["transition_matrix"].sum("state_to"), 1.0)


def test_regimes_are_recoverable_from_the_field_but_not_from_one_point(default):
    data, truth = default
    da = open_gridded(data[["t2m", "z500"]])
    z = compute_stats(da, climatology=True).normalize(da).values.reshape(da.sizes["time"], -1)
    labels = truth["regime"].values
    patterns = truth["regime_pattern"].sel(variable=["t2m", "z500"]).values.reshape(4, -1)
    matched = np.argmax(z @ patterns.T, axis=1)
    assert np.mean(matched == labels) > 0.9  # measured ≈ 0.98
    # Best single grid point, even with the *true* per-regime means: nearest-mean rule.
    z = z.astype(np.float32)
    means = np.stack([z[labels == k].mean(0) for k in range(4)])  # (4, P)
    best_dist = np.full(z.shape, np.inf, dtype=np.float32)
    pred = np.zeros(z.shape, dtype=np.int8)
    for k in range(4):
        dist = np.abs(z - means[k])
        closer = dist < best_dist
        pred[closer], best_dist[closer] = k, dist[closer]
    best_single = np.max(np.mean(pred == labels[:, None], axis=0))
    assert best_single < 0.55  # measured ≈ 0.46; chance ≈ 0.27


def test_waves_propagate_eastward_at_the_stated_speed(default):
    data, truth = default
    lat = data["lat"].values
    band = data["z500"].values[:, np.abs(lat - 45) < 10].mean(axis=1)  # (T, W)
    m, period = truth.attrs["wave_number"], truth.attrs["wave_period"]
    coef = np.fft.fft(band - band.mean(0), axis=1)[:, m]  # zonal wave number m, (T,)
    # cos(mλ − ωt) puts the e^{imλ} coefficient at temporal frequency −1/P: eastward
    # motion is a peak at negative frequency; westward would be at +1/P.
    power = np.abs(np.fft.fft(coef)) ** 2
    freq = np.fft.fftfreq(coef.size)
    away_from_red_noise = np.abs(freq) > 0.05
    peak = freq[away_from_red_noise][np.argmax(power[away_from_red_noise])]
    assert peak == pytest.approx(-1 / period, abs=1 / coef.size)
    east = power[np.argmin(np.abs(freq + 1 / period))]
    west = power[np.argmin(np.abs(freq - 1 / period))]
    assert east > 100 * west


def test_trend_warms_and_noise_variance_grows():
    data, truth = synthetic(seed=2, **{**QUIET, "trend": 1.0})
    w = latitude_weights(data["lat"].values)[:, None]
    gm = (data["t2m"].values * w).mean(axis=(1, 2))
    years = data["time"].dt.year.values
    warming = gm[years == 2003].mean() - gm[years == 2000].mean()
    # 3 years × 1 noise unit/decade × σ=2 K × area-mean pattern (1 + sin²φ ≈ 1.33) = 0.8 K
    assert warming == pytest.approx(0.8, abs=0.25)
    data, truth = synthetic(seed=2, **{**QUIET, "variance_change": 0.5})
    x = data["z500"].values
    x = x - x.mean(axis=0)  # remove the latitudinal base state
    first, last = x[:180].std(), x[-180:].std()
    expected = truth["noise_scale"].values[-180:].mean() / truth["noise_scale"].values[:180].mean()
    assert last / first == pytest.approx(expected, rel=0.08)
    assert expected > 1.3


def test_calendars_monthly_steps_and_missing_values():
    data, truth = synthetic(
        n_years=3, freq="MS", calendar="noleap", nlat=8, nlon=16, missing_fraction=0.1
    )
    assert data.sizes["time"] == 36
    assert type(data["time"].values[0]).__name__ == "DatetimeNoLeap"
    frac = float(data["t2m"].isnull().mean())
    assert frac == pytest.approx(0.1, abs=0.02)  # 3072 values: binomial std ≈ 0.005
    assert truth["regime"].size == 36


def test_unknown_frequency_is_refused():
    with pytest.raises(ValueError, match="freq must be 'D'"):
        synthetic(freq="6h")


PERSIST = dict(n_years=6, nlat=8, nlon=16, n_regimes=2, regime_persistence=0.95)


@pytest.fixture(scope="module")
def persistence():
    return synthetic(seed=3, regime_mode="persistence", **PERSIST)


def test_persistence_mode_changes_only_the_regime_term(persistence):
    """Same seed: every other process is identical, so pattern-mode data minus its regime
    term equals persistence-mode data minus its own (t2m is linear in the anomaly)."""
    data_p, truth_p = persistence
    data_r, truth_r = synthetic(seed=3, **PERSIST)
    np.testing.assert_array_equal(truth_p["regime"], truth_r["regime"])
    np.testing.assert_array_equal(truth_p["oscillator"], truth_r["oscillator"])
    sigma, amp = 2.0, 2.0  # t2m noise unit (K) and the default regime_amplitude
    k = truth_r["regime"].values
    term_r = amp * truth_r["regime_pattern"].values[k, 0]
    term_p = (
        amp * truth_p["regime_index"].values[:, None, None] * truth_p["regime_pattern"].values[k, 0]
    )
    rest_r = data_r["t2m"].values - sigma * term_r
    rest_p = data_p["t2m"].values - sigma * term_p
    np.testing.assert_allclose(rest_p, rest_r, atol=1e-3)  # float32 data near 288 K: ~3e-5 ulp
    assert float(np.abs(term_p - term_r).max()) > 1.0  # and the regime term did change
    # the default mode states its own (trivial) amplitude and coefficients
    np.testing.assert_array_equal(truth_r["regime_index"], 1.0)
    np.testing.assert_array_equal(truth_r["regime_ar"], 0.0)
    assert data_p.attrs["synthetic_regime_mode"] == "persistence"


def test_persistence_regimes_share_a_pattern_and_differ_only_in_autocorrelation(persistence):
    _, truth = persistence
    pattern = truth["regime_pattern"].values
    np.testing.assert_array_equal(pattern[0], pattern[1])
    assert float(np.abs(pattern).max()) == pytest.approx(1.0)
    ar = truth["regime_ar"].values
    np.testing.assert_allclose(ar, [0.0, 0.95])
    b, k = truth["regime_index"].values, truth["regime"].values
    same = k[1:] == k[:-1]
    for r in (0, 1):
        on = k == r
        # one day's amplitude has the same N(0, 1) law in both regimes (n ≈ 1100 days
        # each: the standard error of a mean is ~0.03, of a std ~0.02; red noise at
        # φ = 0.95 inflates the mean's error ~6×, hence the looser mean bound)
        assert abs(b[on].mean()) < 0.35 and abs(b[on].std() - 1.0) < 0.15
        pairs = same & (k[1:] == r)
        lag1 = np.corrcoef(b[1:][pairs], b[:-1][pairs])[0, 1]
        assert lag1 == pytest.approx(ar[r], abs=0.08)


def test_persistence_regimes_are_told_apart_by_a_window_not_by_one_day(persistence):
    """The design goal: a classifier of the regime on one day's amplitude is at chance, a
    feature of the last 8 days (mean squared day-to-day change) is far above it. The
    trailing window straddles a switch on ~8 of every 20-day episode, which caps the window
    feature near 0.8 (measured 0.77 at this seed); chance is 0.5."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    _, truth = persistence
    b, k = truth["regime_index"].values, truth["regime"].values
    half = b.size // 2
    change = np.convolve(np.r_[0.0, np.diff(b)] ** 2, np.ones(8) / 8)[: b.size]
    for feature, lo, hi in ((b, 0.0, 0.6), (change, 0.7, 1.0)):
        f = feature[:, None]
        clf = LogisticRegression().fit(f[:half], k[:half])
        score = balanced_accuracy_score(k[half:], clf.predict(f[half:]))
        assert lo <= score <= hi


def test_unknown_regime_mode_is_refused():
    with pytest.raises(ValueError, match="regime_mode"):
        synthetic(seed=0, n_years=1, nlat=8, nlon=16, regime_mode="duration")
