"""Synthetic multivariate climate with known ground truth, for tests, demos and evaluation.

:func:`synthetic` returns an ``xarray.Dataset`` that looks like reanalysis (real time stamps,
a global lat-lon grid periodic in longitude, three variables with units) and a second
Dataset with the answers. Every process has one amplitude knob, expressed in units of the
variable's noise standard deviation ("noise units", σ_v) so signal-to-noise ratios can be
read off directly. In noise units the anomaly of variable ``v`` is

.. math::

    a_v(t, φ, λ) = A_s\\,S_v(φ)\\cos 2π(ϕ(t) − 0.55)
                 + A_e\\,E_v(φ, λ)\\,e(t)
                 + A_r\\,R_{k(t), v}(φ, λ)
                 + A_w\\,W_v(φ)\\cos(m λ − 2π t / P_w)
                 + A_n\\,g(t)\\,n_v(t, φ, λ)
                 + A_τ\\,\\frac{t − \\bar t}{10\\,\\mathrm{yr}}\\,T_v(φ)

==========================  ================================================================
process                     definition (ground truth stored in ``truth``)
==========================  ================================================================
seasonal cycle ``A_s``      ``S_v = sin φ`` (scaled per variable): zero at the equator,
                            opposite in the two hemispheres, peak near mid-July in the north;
                            ``ϕ(t)`` is the calendar-aware annual phase.
ENSO-like oscillator        ``e(t)`` (``truth.oscillator``, unit variance): a cosine of period
``A_e``                     ``enso_period`` years whose phase random-walks, so the spectrum is
                            a peak spread over ~2–7 years. Pattern ``E``: a zonally elongated
                            warm lobe on **t2m** (and wet on tp) centred at the grid point
                            nearest (0°, 240°E) — the equatorial east Pacific — and an
                            *opposite-sign* lobe on **z500** centred nearest (45°N, 60°E),
                            180° of longitude away (half the periodic domain, the farthest
                            possible). ``truth.enso_center`` / ``truth.remote_center`` hold the
                            two (lat, lon) centres; their grid indices are in ``truth.attrs``.
regimes ``A_r``             ``k(t)`` (``truth.regime``): a Markov chain over ``n_regimes``
                            states that stays with probability ``regime_persistence`` per step
                            and otherwise jumps uniformly. Each regime has a multivariate
                            pattern ``R_k`` (``truth.regime_pattern``): extratropical blobs on
                            z500, the same sign on t2m and the opposite sign on tp; patterns
                            are centred over regimes and scaled to a peak of 1 noise unit.
                            With ``regime_mode="persistence"`` the regimes differ only in
                            time, not in space (below).
waves ``A_w``               eastward-propagating zonal wave number ``m`` (``wave_number``)
                            with period ``P_w`` steps (``wave_period``), in the mid-latitude
                            storm tracks of both hemispheres (t2m, z500; weakly tp).
red noise ``A_n``           ``n_v``: unit-variance sum of three independent AR(1) fields: large
                            (≈30°, 20-day decorrelation), synoptic (≈12°, 5 days) and
                            grid-scale (1 day) with variance shares 0.5 / 0.3 / 0.2.
nonstationarity             trend ``A_τ`` noise units per decade, pattern ``T_v`` stronger
                            toward the poles (polar amplification); noise standard deviation
                            ``g(t)`` grows linearly from 1 to ``1 + variance_change``.
==========================  ================================================================

Physical values: ``t2m = 288 − 40 sin²φ + 2 K · a``, ``z500 = 5800 − 600 sin²φ + 40 m · a``,
``tp = P₀(φ) · exp(0.5 · a)`` mm day⁻¹ (log-normal, so the processes act on log-precipitation;
``P₀`` peaks at 6 mm day⁻¹ on the equator).

Regimes are designed to be recoverable from the whole field but not from one grid point:
each regime's blobs sit at sites of their own, so a single point can only say "regime k or
not" (best single-point nearest-mean accuracy ≈ 0.45 with 4 regimes, chance 0.25), while a
matched filter with the true patterns labels ≈ 98 % of days correctly. At the defaults the
linear baseline (k-means on 10 EOFs of standardised day-of-year anomalies of t2m and z500)
reaches ARI ≈ 0.8–0.9; with ``regime_amplitude=1.5`` it drops to ≈ 0.1–0.3 while the matched
filter still reaches ≈ 95 %, a harder benchmark for learned representations.

**Regimes defined by their persistence** (``regime_mode="persistence"``). Blocking or a
monsoon break is recognised by how long a pattern lasts, not by the pattern alone. In this
mode every regime modulates one shared pattern ``R`` (``truth.regime_pattern``, the same
for every state) with an amplitude ``b(t)`` (``truth.regime_index``) that is an AR(1)
process whose lag-one coefficient is the regime's own (``truth.regime_ar``, evenly spaced
from 0 to 0.95 over the regimes):

.. math::

    b_t = φ_{k(t)}\\,b_{t−1} + \\sqrt{1 − φ_{k(t)}^2}\\;ε_t,\\qquad ε_t \\sim N(0, 1),
    \\qquad a_v \\mathrel{+}= A_r\\,R_v\\,b_t

so ``b`` has unit variance and the same Gaussian distribution on every day of every regime:
no function of one day's field, linear or not, beats chance at telling the regimes apart,
while a window of days does (the day-to-day change ``(b_t − b_{t−1})^2`` has mean
``2(1 − φ_k)``). Every other process is drawn exactly as in the default mode with the same
``seed`` (``b`` and ``R`` come from their own generator), so the two records differ only
in the regime term.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import lfilter

from faconvlstm.data.time import annual_phase, elapsed_days

__all__ = ["VARIABLES", "synthetic"]

#: name → (units, long name, noise scale σ_v in those units)
VARIABLES: dict[str, tuple[str, str, float]] = {
    "t2m": ("K", "2 metre temperature", 2.0),
    "z500": ("m", "geopotential height at 500 hPa", 40.0),
    "tp": ("mm day-1", "precipitation rate", 0.5),
}
_ENSO_TARGET = (0.0, 240.0)
_REMOTE_TARGET = (45.0, 60.0)
#: (length scale in degrees or None for grid scale, decorrelation time in days, variance share)
_NOISE_SCALES = ((30.0, 20.0, 0.5), (12.0, 5.0, 0.3), (None, 1.0, 0.2))
_FREQ_ALIASES = {
    "D": "D",
    "daily": "D",
    "1D": "D",
    "MS": "MS",
    "M": "MS",
    "ME": "MS",
    "monthly": "MS",
}


def _grid(nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred equiangular grid (the 32 × 64 default is WeatherBench's 5.625°)."""
    dlat, dlon = 180.0 / nlat, 360.0 / nlon
    lat = -90.0 + dlat * (np.arange(nlat) + 0.5)
    lon = dlon * np.arange(nlon)
    return lat, lon


def _blob(
    lat: np.ndarray, lon: np.ndarray, center: tuple[float, float], width: tuple[float, float]
) -> np.ndarray:
    """Gaussian bump (H, W), peak 1, periodic in longitude."""
    dlat = (lat[:, None] - center[0]) / width[0]
    dlon = ((lon[None, :] - center[1] + 180.0) % 360.0 - 180.0) / width[1]
    return np.exp(-0.5 * (dlat**2 + dlon**2))


def _nearest(lat: np.ndarray, lon: np.ndarray, target: tuple[float, float]) -> tuple[int, int]:
    i = int(np.argmin(np.abs(lat - target[0])))
    j = int(np.argmin(np.abs((lon - target[1] + 180.0) % 360.0 - 180.0)))
    return i, j


def _oscillator(rng: np.random.Generator, years: np.ndarray, period: float) -> np.ndarray:
    """Narrow-band oscillator: cos of a phase that drifts by a random walk, unit variance."""
    dt = np.diff(years, prepend=years[0])
    # Phase diffusion 0.5 rad² / yr broadens the spectral peak over roughly 2–7 years.
    phase = (
        2 * np.pi * years / period
        + np.cumsum(rng.normal(size=years.size) * np.sqrt(0.5 * dt))
        + rng.uniform(0, 2 * np.pi)
    )
    envelope = 1.0 + 0.3 * np.cos(2 * np.pi * years / (2.7 * period) + rng.uniform(0, 6.3))
    e = envelope * np.cos(phase)
    return (e - e.mean()) / e.std()


def _markov_chain(
    rng: np.random.Generator, n: int, k: int, stay: float
) -> tuple[np.ndarray, np.ndarray]:
    move = (1.0 - stay) / max(k - 1, 1)
    trans = np.full((k, k), move)
    np.fill_diagonal(trans, stay if k > 1 else 1.0)
    u = rng.uniform(size=n)
    states = np.empty(n, dtype=np.int64)
    states[0] = rng.integers(k)
    cum = np.cumsum(trans, axis=1)
    for t in range(1, n):
        states[t] = min(int(np.searchsorted(cum[states[t - 1]], u[t])), k - 1)
    return states, trans


def _switching_ar1(rng: np.random.Generator, states: np.ndarray, ar: np.ndarray) -> np.ndarray:
    """Unit-variance AR(1) series whose coefficient switches with the state:
    ``b_t = φ_{s_t} b_{t−1} + √(1 − φ_{s_t}²) ε_t``, ``b_0 ~ N(0, 1)``, so every ``b_t`` is
    N(0, 1) whatever the states."""
    eps = rng.standard_normal(states.size)
    phi = ar[states]
    b = np.empty(states.size)
    b[0] = eps[0]
    for t in range(1, states.size):
        b[t] = phi[t] * b[t - 1] + np.sqrt(1.0 - phi[t] ** 2) * eps[t]
    return b


def _regime_patterns(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, k: int, blobs_per_regime: int = 3
) -> np.ndarray:
    """(k, 3, H, W) patterns: z500 blobs, t2m same sign (0.8), tp opposite sign (−0.6).

    Every blob of every regime sits at its own extratropical site, at least 35° (great
    circle; less when many regimes crowd the bands) from all others, so one grid point can
    tell at most "regime k or not" — never all regimes apart — while the whole field
    identifies the regime.
    """
    sites: list[tuple[float, float]] = []
    min_distance, failures = 35.0, 0
    while len(sites) < k * blobs_per_regime:
        cand = (float(rng.choice([-1, 1]) * rng.uniform(35, 70)), float(rng.uniform(0, 360)))
        if all(_great_circle(cand, s) > min_distance for s in sites):
            sites.append(cand)
        else:
            failures += 1
            if failures % 200 == 0:  # many regimes: the bands are full, pack tighter
                min_distance *= 0.9
    base = np.zeros((k, lat.size, lon.size))
    for r in range(k):
        for b in range(blobs_per_regime):
            sign = 1.0 if b % 2 == 0 else -1.0
            base[r] += sign * _blob(lat, lon, sites[r * blobs_per_regime + b], (10.0, 25.0))
    if k > 1:
        base -= base.mean(axis=0, keepdims=True)
    base /= max(np.abs(base).max(), 1e-12)
    return np.stack([0.8 * base, base, -0.6 * base], axis=1)


def _great_circle(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in degrees between (lat, lon) points."""
    la, oa, lb, ob = map(np.deg2rad, (*a, *b))
    cos = np.sin(la) * np.sin(lb) + np.cos(la) * np.cos(lb) * np.cos(oa - ob)
    return float(np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0))))


def _red_noise(
    rng: np.random.Generator, n_time: int, lat: np.ndarray, lon: np.ndarray, step_days: float
) -> np.ndarray:
    """Unit-variance multi-scale AR(1) noise (T, H, W), float32, built in spectral space.

    Latitude is padded to 2H rows before the periodic FFT so the poles do not touch.
    """
    h, w = lat.size, lon.size
    dlat, dlon = 180.0 / h, 360.0 / w
    ky = np.fft.fftfreq(2 * h, d=dlat) * 2 * np.pi  # rad / degree
    kx = np.fft.rfftfreq(w, d=dlon) * 2 * np.pi
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    spectrum = np.zeros((n_time, 2 * h, kx.size), dtype=np.complex64)
    out = np.zeros((n_time, h, w), dtype=np.float32)
    for length, tau, share in _NOISE_SCALES:
        a = float(np.exp(-step_days / tau))
        if length is None:
            e = rng.standard_normal((n_time, h, w), dtype=np.float32)
            e[0] /= np.sqrt(1 - a * a) if a < 1 else 1.0
            out += np.sqrt(share) * lfilter([np.sqrt(1 - a * a)], [1, -a], e, axis=0).astype(
                np.float32
            )
            continue
        gain = np.exp(-0.5 * k2 * length**2)
        keep = gain > 1e-3
        rows, cols = np.nonzero(keep)
        coef = rng.standard_normal(
            (n_time, rows.size), dtype=np.float32
        ) + 1j * rng.standard_normal((n_time, rows.size), dtype=np.float32)
        coef[0] /= np.sqrt(1 - a * a)
        coef = lfilter([np.sqrt(1 - a * a)], [1, -a], coef, axis=0)
        spectrum[:, rows, cols] += (np.sqrt(share) * gain[rows, cols] * coef).astype(np.complex64)
    field = np.fft.irfft2(spectrum, s=(2 * h, w), axes=(1, 2))[:, :h]
    large = field - field.mean()
    large_share = sum(s for length, _, s in _NOISE_SCALES if length is not None)
    out += (large * np.sqrt(large_share) / large.std()).astype(np.float32)
    return out


def synthetic(
    seed: int = 0,
    *,
    n_years: int = 4,
    freq: str = "D",
    start: str = "2000-01-01",
    calendar: str = "standard",
    nlat: int = 32,
    nlon: int = 64,
    n_regimes: int = 4,
    regime_persistence: float = 0.9,
    seasonal_amplitude: float = 3.0,
    enso_amplitude: float = 1.5,
    enso_period: float = 4.0,
    teleconnection_strength: float = 1.0,
    regime_amplitude: float = 2.0,
    regime_mode: str = "pattern",
    wave_amplitude: float = 0.5,
    wave_number: int = 4,
    wave_period: float = 8.0,
    noise_amplitude: float = 1.0,
    trend: float = 1.0,
    variance_change: float = 0.5,
    missing_fraction: float = 0.0,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Generate synthetic gridded climate with known regimes, oscillator and teleconnection.

    Deterministic for a given ``seed`` and arguments. Amplitudes are in noise units σ_v
    (see the module docstring for the full equation); set any to 0 to switch a process off.

    Parameters
    ----------
    seed : int
        Seed of the random generator.
    n_years : int
        Length of the record in calendar years from ``start``.
    freq : {"D", "MS"}
        Daily or monthly (month-start stamps) steps.
    start : str
        First time stamp (ISO date).
    calendar : str
        CF calendar; ``"standard"`` gives ``datetime64`` stamps, others (``"noleap"``,
        ``"360_day"`` …) give ``cftime`` stamps, as in climate-model output.
    nlat, nlon : int
        Grid size; cell-centred latitudes, longitudes from 0°E (periodic).
    n_regimes : int
        Number of hidden regimes.
    regime_persistence : float
        Probability that the regime stays the same from one step to the next (mean regime
        duration ``1 / (1 − p)`` steps: 10 days by default).
    seasonal_amplitude : float
        Seasonal-cycle amplitude at the poles (noise units).
    enso_amplitude : float
        Peak of the tropical oscillator pattern on t2m (noise units).
    enso_period : float
        Central oscillator period in years (the random phase drift spreads it).
    teleconnection_strength : float
        Peak of the remote, opposite-sign z500 lobe relative to ``enso_amplitude``.
    regime_amplitude : float
        Peak of the regime patterns (noise units).
    regime_mode : {"pattern", "persistence"}
        ``"pattern"``: each regime has its own spatial pattern (decodable from one day).
        ``"persistence"``: the regimes share one pattern and differ only in the lag-one
        autocorrelation of its amplitude (module docstring): one day cannot tell them apart.
    wave_amplitude : float
        Amplitude of the eastward-propagating wave (noise units).
    wave_number : int
        Zonal wave number m.
    wave_period : float
        Wave period in time steps (8 daily steps: ≈11° longitude per day at m = 4).
    noise_amplitude : float
        Standard deviation of the multi-scale red noise at the start of the record.
    trend : float
        Trend in noise units per decade (pattern ×2 at the poles relative to the equator).
    variance_change : float
        Relative growth of the noise standard deviation over the record.
    missing_fraction : float
        Fraction of values set to NaN at random (to exercise masking).

    Returns
    -------
    data : xarray.Dataset
        Variables ``t2m`` (K), ``z500`` (m), ``tp`` (mm day⁻¹), each (time, lat, lon),
        float32, with CF attributes; coordinates ``time``, ``lat`` (ascending), ``lon``.
    truth : xarray.Dataset
        ``regime`` (time,) int64, ``oscillator`` (time,), ``noise_scale`` (time,),
        ``regime_pattern`` (state, variable, lat, lon), ``regime_index`` (time,) (the
        amplitude multiplying the regime term: 1 in ``"pattern"`` mode, ``b(t)`` in
        ``"persistence"`` mode), ``regime_ar`` (state,) (0 in ``"pattern"`` mode),
        ``enso_pattern``
        (variable, lat, lon), ``seasonal_pattern`` (variable, lat), ``trend_pattern``
        (variable, lat), ``transition_matrix`` (state, state_to), ``enso_center`` and
        ``remote_center`` (point = [lat, lon]); attrs name the ENSO and remote variables,
        the centres' grid indices and every knob.
    """
    freq_key = _FREQ_ALIASES.get(freq)
    if freq_key is None:
        raise ValueError(f"freq must be 'D' (daily) or 'MS' (monthly), got {freq!r}")
    if n_years < 1 or nlat < 4 or nlon < 8 or n_regimes < 1:
        raise ValueError(
            f"need n_years ≥ 1, nlat ≥ 4, nlon ≥ 8, n_regimes ≥ 1; got "
            f"{n_years=}, {nlat=}, {nlon=}, {n_regimes=}"
        )
    if not 0.0 <= regime_persistence <= 1.0 or not 0.0 <= missing_fraction < 1.0:
        raise ValueError("regime_persistence must be in [0, 1] and missing_fraction in [0, 1)")
    if regime_mode not in ("pattern", "persistence"):
        raise ValueError(f"regime_mode must be 'pattern' or 'persistence', got {regime_mode!r}")
    rng = np.random.default_rng(seed)
    first_year = int(str(start)[:4])
    end = f"{first_year + n_years:04d}{str(start)[4:]}"
    times = xr.date_range(
        start,
        end,
        freq=freq_key,
        calendar=calendar,
        use_cftime=calendar not in ("standard", "gregorian", "proleptic_gregorian"),
        inclusive="left",
    )
    n = len(times)
    days = elapsed_days(times)
    years = days / 365.25
    step_days = float(np.median(np.diff(days)))
    lat, lon = _grid(nlat, nlon)
    lat_rad = np.deg2rad(lat)
    names = list(VARIABLES)

    # Seasonal cycle: (V, H) patterns times cos of the annual phase.
    seasonal = np.stack([np.sin(lat_rad), np.sin(lat_rad), 0.5 * np.sin(lat_rad)])
    phase = annual_phase(times)
    season_t = np.cos(2 * np.pi * (phase - 0.55))

    # ENSO-like oscillator and the teleconnection.
    oscillator = _oscillator(rng, years, enso_period)
    enso_ij = _nearest(lat, lon, _ENSO_TARGET)
    remote_ij = _nearest(lat, lon, _REMOTE_TARGET)
    enso_center = (lat[enso_ij[0]], lon[enso_ij[1]])
    remote_center = (lat[remote_ij[0]], lon[remote_ij[1]])
    tropical = _blob(lat, lon, enso_center, (10.0, 40.0))
    remote = _blob(lat, lon, remote_center, (12.0, 25.0))
    enso_pattern = np.stack([tropical, -teleconnection_strength * remote, 0.8 * tropical])

    regimes, trans = _markov_chain(rng, n, n_regimes, regime_persistence)
    regime_pattern = _regime_patterns(rng, lat, lon, n_regimes)
    regime_ar = np.zeros(n_regimes)
    regime_index = np.ones(n)
    if regime_mode == "persistence":
        # Own generator: every other process stays exactly as in "pattern" mode.
        regime_rng = np.random.default_rng([seed, 1])
        shared = _regime_patterns(regime_rng, lat, lon, 1)[0]
        regime_pattern = np.broadcast_to(shared, regime_pattern.shape).copy()
        regime_ar = np.linspace(0.0, 0.95, n_regimes) if n_regimes > 1 else np.array([0.95])
        regime_index = _switching_ar1(regime_rng, regimes, regime_ar)

    storm_track = np.exp(-0.5 * ((np.abs(lat) - 45.0) / 15.0) ** 2)
    wave_phase = wave_number * np.deg2rad(lon)[None, :] - 2 * np.pi * np.arange(n)[:, None] / (
        wave_period
    )
    wave = np.cos(wave_phase)  # (T, W)
    wave_pattern = np.stack([0.7 * storm_track, storm_track, 0.3 * storm_track])

    noise_scale = 1.0 + variance_change * (days - days[0]) / max(days[-1] - days[0], 1.0)
    trend_pattern = np.stack(
        [1 + np.sin(lat_rad) ** 2, 0.5 * (1 + np.sin(lat_rad) ** 2), np.zeros_like(lat)]
    )
    decades = (years - years.mean()) / 10.0

    data_vars = {}
    for v, name in enumerate(names):
        a = noise_amplitude * noise_scale[:, None, None] * _red_noise(rng, n, lat, lon, step_days)
        a += (seasonal_amplitude * season_t)[:, None, None] * seasonal[v][None, :, None]
        a += enso_amplitude * oscillator[:, None, None] * enso_pattern[v][None]
        a += regime_amplitude * regime_index[:, None, None] * regime_pattern[regimes, v]
        a += wave_amplitude * wave[:, None, :] * wave_pattern[v][None, :, None]
        a += trend * decades[:, None, None] * trend_pattern[v][None, :, None]
        s2 = np.sin(lat_rad)[None, :, None] ** 2
        if name == "t2m":
            x = 288.0 - 40.0 * s2 + VARIABLES[name][2] * a
        elif name == "z500":
            x = 5800.0 - 600.0 * s2 + VARIABLES[name][2] * a
        else:
            p0 = 1.0 + 5.0 * np.exp(-0.5 * (lat / 12.0) ** 2)
            x = p0[None, :, None] * np.exp(VARIABLES[name][2] * a)
        x = x.astype(np.float32)
        if missing_fraction > 0:
            x[rng.uniform(size=x.shape) < missing_fraction] = np.nan
        units, long_name, _ = VARIABLES[name]
        data_vars[name] = (("time", "lat", "lon"), x, {"units": units, "long_name": long_name})

    coords = {
        "time": (
            "time",
            times.values if hasattr(times, "values") else np.asarray(times),
            {"standard_name": "time", "axis": "T"},
        ),
        "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }
    knobs = dict(
        seed=seed,
        n_years=n_years,
        freq=freq_key,
        calendar=calendar,
        n_regimes=n_regimes,
        regime_persistence=regime_persistence,
        seasonal_amplitude=seasonal_amplitude,
        enso_amplitude=enso_amplitude,
        enso_period=enso_period,
        teleconnection_strength=teleconnection_strength,
        regime_amplitude=regime_amplitude,
        regime_mode=regime_mode,
        wave_amplitude=wave_amplitude,
        wave_number=wave_number,
        wave_period=wave_period,
        noise_amplitude=noise_amplitude,
        trend=trend,
        variance_change=variance_change,
        missing_fraction=missing_fraction,
    )
    data = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "title": "faconvlstm synthetic climate",
            "Conventions": "CF-1.8",
            **{f"synthetic_{k}": v for k, v in knobs.items()},
        },
    )

    truth = xr.Dataset(
        {
            "regime": ("time", regimes, {"long_name": "hidden regime label"}),
            "oscillator": (
                "time",
                oscillator.astype(np.float64),
                {"long_name": "ENSO-like oscillator index (unit variance)"},
            ),
            "noise_scale": ("time", noise_scale, {"long_name": "noise std multiplier g(t)"}),
            "regime_pattern": (
                ("state", "variable", "lat", "lon"),
                regime_pattern,
                {"units": "noise units"},
            ),
            "regime_index": (
                "time",
                regime_index,
                {"long_name": "amplitude of the regime term (b(t) in persistence mode)"},
            ),
            "regime_ar": (
                "state",
                regime_ar,
                {"long_name": "lag-one autocorrelation of b(t) in each regime"},
            ),
            "enso_pattern": (
                ("variable", "lat", "lon"),
                enso_pattern,
                {"units": "noise units per unit oscillator, × enso_amplitude"},
            ),
            "seasonal_pattern": (
                ("variable", "lat"),
                seasonal,
                {"long_name": "seasonal amplitude, × seasonal_amplitude"},
            ),
            "trend_pattern": (
                ("variable", "lat"),
                trend_pattern,
                {"long_name": "trend per decade, × trend"},
            ),
            "wave_pattern": (("variable", "lat"), wave_pattern),
            "transition_matrix": (("state", "state_to"), trans),
            "noise_std": (
                "variable",
                [VARIABLES[v][2] for v in names],
                {"long_name": "σ_v: one noise unit in the variable's units (tp: in log space)"},
            ),
            "enso_center": ("point", np.array(enso_center, dtype=float)),
            "remote_center": ("point", np.array(remote_center, dtype=float)),
        },
        coords={
            "time": coords["time"],
            "lat": coords["lat"],
            "lon": coords["lon"],
            "variable": np.array(names, dtype=object),
            "state": np.arange(n_regimes),
            "state_to": np.arange(n_regimes),
            "point": np.array(["lat", "lon"], dtype=object),
        },
        attrs={
            "enso_variable": "t2m",
            "remote_variable": "z500",
            "enso_center_index": list(enso_ij),
            "remote_center_index": list(remote_ij),
            **knobs,
        },
    )
    return data, truth
