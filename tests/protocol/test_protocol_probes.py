"""The linear probes: blocked cross-validation by calendar year (known answers)."""

import numpy as np
import pytest
import torch

from faconvlstm.evaluation.interpretability import linear_probe_r2
from faconvlstm.protocol.heldout import EvalData, year_of
from faconvlstm.protocol.measure import probes, regime_field_baseline


def _years(n_years: int, per_year: int) -> np.ndarray:
    return np.repeat(np.arange(2000, 2000 + n_years), per_year)


def test_blocked_probe_recovers_an_exact_linear_target():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 6))
    target = z @ rng.normal(size=6) + 0.5
    # exact linear target: only the ridge penalty (chosen by RidgeCV, ≥ 1e-3) shrinks the fit
    assert linear_probe_r2(z, target, groups=_years(4, 100)) > 0.999


def test_blocked_probe_scores_noise_at_or_below_zero():
    rng = np.random.default_rng(1)
    z, noise = rng.normal(size=(400, 6)), rng.normal(size=400)
    # out-of-sample R² of an unrelated target is ≤ 0 up to sampling error (~ E/n = 0.015)
    assert linear_probe_r2(z, noise, groups=_years(4, 100)) < 0.03


def test_blocked_probe_does_not_reward_a_probe_that_only_learns_each_years_mean():
    """An embedding that encodes the year (and nothing else) predicts a slow target within
    the fitting years only; the held-out year is never seen, so R² ≤ 0."""
    years = _years(4, 100)
    z = np.eye(4)[years - 2000]  # one-hot year
    target = (years - 2000.0) ** 2  # differs from year to year
    assert linear_probe_r2(z, target, groups=years) < 0.0


def test_blocked_probe_errors_say_what_to_fix():
    z, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="at least 2 groups"):
        linear_probe_r2(z, y, groups=np.full(10, 2000))
    with pytest.raises(ValueError, match="one block label"):
        linear_probe_r2(z, y, groups=np.arange(5))
    with pytest.raises(ValueError, match="either groups or z_test"):
        linear_probe_r2(z, y, groups=np.arange(10), z_test=z, target_test=y)


def test_year_of_datetime64_and_cftime():
    import cftime

    t = np.array(["2001-12-31", "2002-01-01"], dtype="datetime64[D]").reshape(1, 2)
    np.testing.assert_array_equal(year_of(t), [[2001, 2002]])
    noleap = np.array([cftime.DatetimeNoLeap(1999, 5, 1), cftime.DatetimeNoLeap(2000, 1, 1)])
    np.testing.assert_array_equal(year_of(noleap), [1999, 2000])


class _Flatten:
    """A subject whose embedding is the field itself, flattened: (N·T, C·H·W)."""

    def embed(self, x, phase=None):
        x = torch.as_tensor(x).numpy()
        return x.reshape(-1, int(np.prod(x.shape[-3:])))


def _eval_data(rng, oscillator_of) -> EvalData:
    """Train 2000-2001 and held-out 2002 windows (N, T=5, C=1, 2, 2) of daily noise fields."""

    def period(first: str, n_windows: int):
        times = np.arange(np.datetime64(first), np.datetime64(first) + 5 * n_windows)
        x = rng.normal(size=(n_windows, 5, 1, 2, 2)).astype("float32")
        return torch.from_numpy(x), times.reshape(n_windows, 5)

    train_x, train_t = period("2000-01-01", 146)  # 730 days: 2000 and 2001 (leap) minus 1
    x, t = period("2002-01-01", 73)
    return EvalData(
        x=x,
        valid=torch.ones_like(x, dtype=torch.bool),
        phase=torch.zeros(x.shape[:2]),
        times=t,
        clim=np.zeros(x.shape),
        train_fields=np.zeros((1, 1, 2, 2)),
        train_x=train_x,
        train_phase=torch.zeros(train_x.shape[:2]),
        train_times=train_t,
        lat=np.array([-5.0, 5.0]),
        lon=np.array([0.0, 180.0]),
        channels=["v"],
        n_train_steps=730,
        oscillator=oscillator_of(x),
        train_oscillator=oscillator_of(train_x),
    )


def test_protocol_probe_is_blocked_by_year_over_train_and_held_out_windows():
    rng = np.random.default_rng(2)
    linear = _eval_data(rng, lambda x: x.numpy().reshape(-1, 4) @ np.array([1.0, -2.0, 0.5, 3]))
    result = probes(_Flatten(), _Flatten().embed(linear.x), linear)
    assert result.probe_years == 3  # 2000, 2001, 2002: one fold each
    assert result.probe_r2 > 0.999  # an exact linear function of the embeddings
    assert result.probe_r2_index is None  # no lobes: no box index to probe
    noise = _eval_data(rng, lambda x: rng.normal(size=x.shape[0] * x.shape[1]))
    # unrelated target: ≤ 0 up to sampling error (E/n = 4/1095)
    assert probes(_Flatten(), _Flatten().embed(noise.x), noise).probe_r2 < 0.02


def test_protocol_quadratic_probe_reads_what_the_linear_one_cannot():
    """The protocol scores every probe twice: a driver that is an even function of the
    embedding (its squared size) is invisible to the linear probe and read by the
    quadratic one; a linear driver is read by both alike (the degree is chosen inside
    the fitting years)."""
    rng = np.random.default_rng(4)
    even = _eval_data(rng, lambda x: (x.numpy().reshape(-1, 4) ** 2).sum(1))
    result = probes(_Flatten(), _Flatten().embed(even.x), even)
    assert result.probe_r2 < 0.02
    assert result.probe_r2_quad > 0.99  # an exact quadratic function of the embeddings
    linear = _eval_data(rng, lambda x: x.numpy().reshape(-1, 4) @ np.array([1.0, -2.0, 0.5, 3]))
    result = probes(_Flatten(), _Flatten().embed(linear.x), linear)
    assert result.probe_r2_quad == pytest.approx(result.probe_r2, abs=1e-3)


class _CausalMean:
    """A subject whose embedding at step t is the mean of the window's fields up to t: it
    integrates the recent past, as a recurrent encoder can."""

    def embed(self, x, phase=None):
        x = torch.as_tensor(x).numpy()
        steps = np.arange(1, x.shape[1] + 1).reshape(1, -1, 1, 1, 1)
        return (np.cumsum(x, axis=1) / steps).reshape(-1, int(np.prod(x.shape[-3:])))


def _regime_data(rng) -> EvalData:
    """Regimes that persist for a window (5 days): each day's field is the regime's pattern
    (one of the 4 grid points at +1) buried in noise of sd 2."""
    data = _eval_data(rng, lambda x: np.zeros(x.shape[0] * x.shape[1]))

    def fill(x: torch.Tensor) -> np.ndarray:
        regime = np.repeat(rng.integers(0, 4, x.shape[0]), x.shape[1])
        pattern = np.eye(4)[regime].reshape(x.shape).astype("float32")
        x.copy_(torch.from_numpy(pattern + 2.0 * x.numpy()))
        return regime

    data.train_regime, data.regime = fill(data.train_x), fill(data.x)
    return data


def test_regime_probe_rewards_an_embedding_that_integrates_persistence():
    data = _regime_data(np.random.default_rng(3))
    baseline = regime_field_baseline(data)
    one_day = probes(_Flatten(), _Flatten().embed(data.x), data).probe_acc_regime
    integrated = probes(_CausalMean(), _CausalMean().embed(data.x), data).probe_acc_regime
    # the flattened field is the baseline's own feature set: the same score
    assert one_day == pytest.approx(baseline)
    # one day: SNR 1/2 per grid point, well above chance (1/4) but far from 1
    assert 0.3 < baseline < 0.6
    # the causal mean of up to 5 days averages the noise down; the regime persists, so a
    # linear readout of it beats every linear function of one day (margin 0.08-0.14 over
    # data seeds 3, 5, 6)
    assert integrated > baseline + 0.05


def test_regime_probe_needs_the_regime_over_the_training_windows_too():
    data = _regime_data(np.random.default_rng(4))
    data.train_regime = None  # e.g. labels given for the held-out period only
    assert probes(_Flatten(), _Flatten().embed(data.x), data).probe_acc_regime is None
    assert regime_field_baseline(data) is None
