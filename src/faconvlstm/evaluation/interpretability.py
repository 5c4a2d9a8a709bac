"""Reading what a model attends to and what its embeddings know.

- Axial attention maps: the row (zonal) and column (meridional) softmax weights that
  ``FAConvLSTM2D.capture_internals()`` records are turned into a map on the grid for a
  query point, and scored by the attention mass that falls on a region (e.g. the remote lobe
  of a teleconnection) against the chance level, the region's share of the grid.
- SE weights and dilation-branch energies summarised by season.
- Per-variable attribution by occlusion.
- Linear probes: cross-validated R² of a known driver (the synthetic oscillator, or an index
  computed from the data such as the Niño-3.4 box mean of SST) regressed on the embeddings,
  blocked by year for slow drivers; and the balanced accuracy of a linear classifier of
  known regime labels, blocked the same way. Beside each, a quadratic probe (the same
  readout on the embeddings and all their pairwise products) scored the same way reads
  what lies in the size of a feature rather than its sign; k-nearest-neighbour probes are
  there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold, LeaveOneGroupOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from faconvlstm.evaluation._arrays import as_samples, to_numpy
from faconvlstm.evaluation.quality import _spatial_dims

__all__ = [
    "KNN_KS",
    "QUADRATIC_ALPHAS",
    "QUADRATIC_CS",
    "attention_map",
    "attention_mass_on_region",
    "box_mean_index",
    "knn_probe_accuracy",
    "knn_probe_r2",
    "linear_probe_accuracy",
    "linear_probe_r2",
    "nino34_index",
    "occlusion_attribution",
    "quadratic_probe_accuracy",
    "quadratic_probe_r2",
    "region_mask",
    "se_branch_statistics",
    "uniform_attention_map",
]


def attention_map(
    row: Any, col: Any, query: tuple[int, int], *, hops: int = 1, batch_index: int | None = None
) -> np.ndarray:
    """Where one query point's axial attention goes, as a map on the grid.

    At an attention step the update at query q = (i, j) is the sum of a row attention over
    (i, ·) and a column attention over (·, j). Splitting its mass equally between the two
    gives a distribution on the grid (a cross through q); heads and batch are averaged:

    .. math:: P_1(i', j') = \\tfrac12\\,\\delta_{i'i}\\,R_{i}[j, j'] +
              \\tfrac12\\,\\delta_{j'j}\\,C_{j}[i, i']

    A single step only reaches q's own row and column; because the attended state feeds the
    recurrence, later attention steps compose. ``hops = n`` propagates the distribution n
    times through the same operator (attention rollout, Abnar & Zuidema 2020, without the
    residual term), which is how a point at another latitude *and* longitude is reached.

    Args:
        row: ``(B, H, heads, W, W)`` row-attention weights (rows sum to 1).
        col: ``(B, W, heads, H, H)`` column-attention weights.
        query: ``(i, j)`` grid indices (latitude row, longitude column) of the query.
        hops: number of propagation steps (≥ 1).
        batch_index: one sample instead of the batch mean.

    Returns:
        ``(H, W)`` non-negative map summing to 1.
    """
    r, c = to_numpy(row), to_numpy(col)
    if batch_index is not None:
        r, c = r[batch_index : batch_index + 1], c[batch_index : batch_index + 1]
    r = r.mean(axis=(0, 2))  # (H, W, W): R[i][j, j']
    c = c.mean(axis=(0, 2))  # (W, H, H): C[j][i, i']
    h, w = r.shape[0], c.shape[0]
    p = np.zeros((h, w))
    p[query] = 1.0
    for _ in range(hops):
        along_row = np.einsum("ij,ijk->ik", p, r)  # p(i, j) R_i[j, k] -> (i, k)
        along_col = np.einsum("ij,jik->kj", p, c)  # p(i, j) C_j[i, k] -> (k, j)
        p = 0.5 * (along_row + along_col)
    return p


def region_mask(lat: Any, lon: Any, centre: tuple[float, float], radius_deg: float) -> np.ndarray:
    """``(H, W)`` bool mask of the grid points within ``radius_deg`` (great circle) of ``centre``.

    Args:
        lat, lon: grid coordinates in degrees; ``centre = (lat, lon)`` in degrees.
    """
    la, lo = np.deg2rad(np.meshgrid(np.asarray(lat, float), np.asarray(lon, float), indexing="ij"))
    c_la, c_lo = np.deg2rad(centre)
    cos_d = np.sin(la) * np.sin(c_la) + np.cos(la) * np.cos(c_la) * np.cos(lo - c_lo)
    return np.rad2deg(np.arccos(np.clip(cos_d, -1.0, 1.0))) <= radius_deg


def uniform_attention_map(
    shape: tuple[int, int], query: tuple[int, int], hops: int = 1
) -> np.ndarray:
    """:func:`attention_map` of an uninformed layer: every row and column weight uniform.

    The chance level of an axial map: one hop only reaches the query's row and column, so
    "chance" is this map, not the region's share of the grid.
    """
    h, w = shape
    row = np.full((1, h, 1, w, w), 1.0 / w)
    col = np.full((1, w, 1, h, h), 1.0 / h)
    return attention_map(row, col, query, hops=hops)


def attention_mass_on_region(
    attn_map: Any, region: Any, chance_map: Any = None
) -> dict[str, float]:
    """Share of an attention map's mass that falls on a region, against chance.

    Args:
        attn_map: ``(H, W)`` non-negative map (e.g. :func:`attention_map`).
        region: ``(H, W)`` bool mask (e.g. :func:`region_mask` around a teleconnection lobe).
        chance_map: the map an uninformed model would give (e.g.
            :func:`uniform_attention_map` for the same query and hops); without it, chance
            is the region's share of grid points.

    Returns:
        ``{"mass": Σ_region A / Σ A, "chance": the same for the chance map,
        "ratio": mass / chance}`` — ratio > 1 means the region is attended above chance.
    """
    a = to_numpy(attn_map)
    region = np.asarray(region, dtype=bool)
    mass = float(a[region].sum() / a.sum())
    if chance_map is None:
        chance = float(region.mean())
    else:
        c = to_numpy(chance_map)
        chance = float(c[region].sum() / c.sum())
    return {"mass": mass, "chance": chance, "ratio": mass / chance if chance > 0 else np.nan}


def linear_probe_r2(
    z: Any,
    target: Any,
    *,
    z_test: Any = None,
    target_test: Any = None,
    groups: Any = None,
    n_splits: int = 5,
) -> float:
    """Out-of-sample R² of a ridge regression of a known driver on the embeddings.

    The probe is ``StandardScaler`` + ``RidgeCV`` (penalty chosen on the fitting data only).
    Three ways to keep it out of sample:

    - ``groups`` (e.g. the calendar year of every sample): blocked cross-validation, one
      fold per group — the probe scoring group g is fitted on all the other groups. This is
      what a slow driver needs: an oscillator with a 2–7-year period is not sampled by one
      held-out year, but every year scored by a probe that never saw it is.
    - ``z_test``/``target_test``: fitted on ``(z, target)`` (e.g. the training period),
      scored on the held-out pair.
    - neither: ``n_splits`` contiguous blocks of time (no shuffling), so the strong
      autocorrelation of climate series does not leak the answer from neighbouring days.

    Either way the score is pooled over all out-of-sample predictions ŷ:

    .. math:: R^2 = 1 - \\frac{\\sum (y - \\hat y)^2}{\\sum (y - \\bar y)^2}

    (ȳ: mean of all scored targets), so a probe that only tracks each fold's mean does not
    score, and pure noise gives R² ≤ 0.

    Args:
        z: ``(n, E)`` embeddings.
        target: ``(n,)`` driver, e.g. the synthetic oscillator or :func:`nino34_index`.
        z_test, target_test: ``(m, E)`` and ``(m,)`` held-out pair.
        groups: ``(n,)`` block label of each sample (at least 2 distinct values).

    Returns:
        R² (≤ 1; ≤ 0 means the driver is not linearly decodable out of sample).
    """
    x = as_samples(z)
    y = to_numpy(target).ravel()
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if z_test is not None:
        if groups is not None:
            raise ValueError("linear_probe_r2: pass either groups or z_test/target_test")
        y_test = to_numpy(target_test).ravel()
        return float(r2_score(y_test, model.fit(x, y).predict(as_samples(z_test))))
    if groups is not None:
        groups = np.asarray(groups).ravel()
        if groups.shape != y.shape:
            raise ValueError(
                f"linear_probe_r2: groups has {groups.size} labels for {y.size} samples; "
                "give one block label (e.g. the year) per sample"
            )
        if np.unique(groups).size < 2:
            raise ValueError(
                "linear_probe_r2: blocked cross-validation needs at least 2 groups (years); "
                f"got only {np.unique(groups).tolist()}"
            )
        pred = cross_val_predict(model, x, y, cv=LeaveOneGroupOut(), groups=groups)
        return float(r2_score(y, pred))
    pred = cross_val_predict(model, x, y, cv=KFold(n_splits=n_splits, shuffle=False))
    return float(r2_score(y, pred))


#: Candidate ridge penalties of :func:`quadratic_probe_r2` (on standardised features).
QUADRATIC_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 4, 11))
#: Candidate inverse penalties of :func:`quadratic_probe_accuracy`.
QUADRATIC_CS: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)


def quadratic_probe_r2(
    z: Any, target: Any, *, groups: Any, alphas: Sequence[float] = QUADRATIC_ALPHAS
) -> float:
    r"""Out-of-sample R² of a ridge regression of a driver on the embeddings and all their
    products: the nonlinear companion of :func:`linear_probe_r2` with ``groups``.

    The features are the standardised embedding ``z`` and every product ``z_i z_j``
    (``i ≤ j``; ``E + E(E+1)/2`` features, 152 for E = 16), standardised again, then a
    ridge regression:

    .. math:: \hat y = b + \sum_i w_i z_i + \sum_{i \le j} v_{ij} z_i z_j

    Its function class contains the linear probe's and what lies in the *size* of a
    feature rather than its sign: ``z₁²``, ``(z₁ − z₂)²``, a radius. With 152 features
    the penalty matters, days are autocorrelated, and products amplify any growth of the
    anomalies from year to year: fitted outright on three training years of the demo's
    record, the quadratic readout scored R² < 0 where the linear one scored 0.2–0.5
    (``benchmarks/claim/probe_check.py``). So the readout is *chosen*: the degree (1: the
    standardised ``z`` alone, 2: with the products) and the penalty ``α`` (from ``alphas``)
    are chosen per outer fold by an inner leave-one-*group*-out on the fitting groups only
    (nested blocked CV, as :func:`linear_probe_accuracy` chooses ``C``). The quadratic terms
    are used where the other years say they help and nowhere else; predictions are pooled
    over the outer folds (one per group) and scored by the pooled R² of
    :func:`linear_probe_r2`.

    With G groups that is G·(G−1) inner fitting sets; every candidate ``(degree, α)`` of
    a set is solved from one eigendecomposition of its Gram matrix (the result of
    scikit-learn's ``StandardScaler``/``PolynomialFeatures``/``Ridge`` pipelines to
    rounding, a test compares them), so 18 years take seconds, not minutes
    (``benchmarks/probe_cost.py``).

    Args:
        z: ``(n, E)`` embeddings.
        target: ``(n,)`` driver.
        groups: ``(n,)`` block label of each sample (e.g. calendar year; at least 2).
        alphas: candidate ridge penalties (positive).

    Returns:
        R² (≤ 1; ≤ 0: not decodable out of sample by a quadratic function).
    """
    x = as_samples(z)
    y = to_numpy(target).ravel().astype(float)
    groups = _check_blocked("quadratic_probe_r2", x, y, groups)
    alphas = [float(a) for a in alphas]
    if not alphas or min(alphas) <= 0:
        raise ValueError(f"quadratic_probe_r2: alphas must be positive, got {alphas}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("quadratic_probe_r2: the embeddings and the target must be finite")
    pred = _nested_blocked_ridge(x, y, groups, alphas)
    return float(r2_score(y, pred))


def _standardised(fit: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit`` and ``other`` standardised by the mean and standard deviation of ``fit``
    (scikit-learn's ``StandardScaler``: ddof 0, and a scale of 1 for a feature that is
    constant to rounding)."""
    mean, var, n = fit.mean(0), fit.var(0), fit.shape[0]
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.where(constant, 1.0, np.sqrt(var))
    return (fit - mean) / scale, (other - mean) / scale


def _products(u: np.ndarray) -> np.ndarray:
    """``u`` and its pairwise products ``u_i u_j`` (``i ≤ j``), in the column order of
    scikit-learn's ``PolynomialFeatures(2, include_bias=False)``."""
    i, j = np.triu_indices(u.shape[1])
    return np.concatenate([u, u[:, i] * u[:, j]], axis=1)


def _ridge_predictions(
    x: np.ndarray, y: np.ndarray, fit: np.ndarray, at: np.ndarray, alphas: Sequence[float]
) -> dict[tuple[int, float], np.ndarray]:
    """Predictions at the rows ``at`` of the ridge probes of :func:`quadratic_probe_r2`,
    fitted on the rows ``fit``: one per (degree, α), keyed ``(degree, α)``.

    The probe of degree 1 is ``StandardScaler`` + ``Ridge(α)``, of degree 2 ``StandardScaler``
    + ``PolynomialFeatures(2)`` + ``StandardScaler`` + ``Ridge(α)``, both with an intercept.
    With centred features ``X`` (F columns) and targets ``y − ȳ``, ridge solves
    ``(XᵀX + αI) w = Xᵀ(y − ȳ)``; one eigendecomposition ``XᵀX = V Λ Vᵀ`` gives every α
    at once, ``w_α = V (Λ + αI)⁻¹ Vᵀ Xᵀ(y − ȳ)``: the same solution as scikit-learn's
    Cholesky solve, to rounding (a test compares the two), for one ``F³`` factorisation
    instead of one per α."""
    u_fit, u_at = _standardised(x[fit], x[at])
    y_fit = y[fit]
    y_mean = y_fit.mean()
    out = {}
    for degree in (1, 2):
        if degree == 1:
            f_fit, f_at = u_fit, u_at
        else:
            f_fit, f_at = _standardised(_products(u_fit), _products(u_at))
        offset = f_fit.mean(0)
        centred = f_fit - offset
        lam, vec = np.linalg.eigh(centred.T @ centred)
        proj = vec.T @ (centred.T @ (y_fit - y_mean))
        at_v = (f_at - offset) @ vec
        for a in alphas:
            out[degree, a] = y_mean + at_v @ (proj / (lam + a))
    return out


def _nested_blocked_ridge(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, alphas: Sequence[float]
) -> np.ndarray:
    """Out-of-fold predictions of the ridge probes of :func:`quadratic_probe_r2` by nested
    blocked cross-validation: :func:`_nested_blocked_predict` with the candidates
    ``(degree, α)`` for degree 1 then 2 and each α, computed by :func:`_ridge_predictions`
    (every candidate of one fitting set from one eigendecomposition).

    With G groups the nested scheme fits G·(G−1) inner sets; through scikit-learn it cost
    one pipeline fit per set *and candidate* (22 of them), 6 732 fits and minutes for the
    18 years of a 20-year record, and hours for an 80-year reanalysis."""
    params = [(degree, a) for degree in (1, 2) for a in alphas]
    pred = np.empty_like(y)
    rows = np.arange(y.size)
    for g in np.unique(groups):
        fit, at = rows[groups != g], rows[groups == g]
        gt, yt = groups[fit], y[fit]
        p = params[0]
        if np.unique(gt).size >= 2 and np.unique(yt).size >= 2:  # else: no inner fold
            inner = {q: np.empty(fit.size) for q in params}
            for h in np.unique(gt):
                held = gt == h
                preds = _ridge_predictions(x, y, fit[~held], fit[held], alphas)
                for q in params:
                    inner[q][held] = preds[q]
            scores = [r2_score(yt, inner[q]) for q in params]
            p = params[int(np.argmax(scores))]
        pred[at] = _ridge_predictions(x, y, fit, at, alphas)[p]
    return pred


def _features(degree: int) -> list[Any]:
    """The feature steps of a probe of ``degree`` 1 (standardised z) or 2 (standardised z
    and its standardised pairwise products)."""
    if degree == 1:
        return [StandardScaler()]
    return [StandardScaler(), PolynomialFeatures(degree, include_bias=False), StandardScaler()]


def linear_probe_accuracy(
    z: Any, labels: Any, *, groups: Any, cs: Sequence[float] = (0.01, 0.1, 1.0)
) -> float:
    r"""Out-of-sample balanced accuracy of a linear classifier of known labels (regimes).

    The probe is ``StandardScaler`` + multinomial ``LogisticRegression`` with an L2
    penalty, scored by nested blocked cross-validation: one outer fold per group (e.g.
    calendar year), each predicted by a probe fitted on all the other groups, whose
    inverse penalty ``C`` (from ``cs``) is chosen by an inner leave-one-group-out on those
    other groups only. Predictions are pooled over the outer folds and scored by the
    balanced accuracy

    .. math:: \mathrm{BA} = \frac{1}{K}\sum_{k=1}^{K}
              \frac{\#\{i : \hat y_i = k,\ y_i = k\}}{\#\{i : y_i = k\}}

    (the mean recall over the K classes present), so chance is 1/K whatever the class
    frequencies. A regime that persists for days is a property of the trajectory, not of
    one day: a per-step embedding that integrates the recent past can classify it better
    than any linear function of the same day's field.

    Args:
        z: ``(n, F)`` features per sample (embeddings, or a flattened field per day).
        labels: ``(n,)`` integer class of each sample.
        groups: ``(n,)`` block label of each sample (at least 2 distinct values; with 2,
            the first of ``cs`` is used, there being no inner fold).
        cs: candidate inverse penalties (scikit-learn's ``C``, on standardised features).

    Returns:
        Balanced accuracy in [0, 1] (1/K: chance).
    """
    return _logistic_probe_accuracy("linear_probe_accuracy", 1, z, labels, groups, cs)


def quadratic_probe_accuracy(
    z: Any, labels: Any, *, groups: Any, cs: Sequence[float] = QUADRATIC_CS
) -> float:
    """Out-of-sample balanced accuracy of a logistic classifier of known labels on the
    embeddings and all their products: the nonlinear companion of
    :func:`linear_probe_accuracy`, scored the same way (nested blocked CV, ``C`` chosen
    inside the fitting years, pooled balanced accuracy).

    The features are those of :func:`quadratic_probe_r2` (standardised ``z`` and every
    standardised ``z_i z_j``), so its decision boundaries are quadrics: it separates two
    regimes that differ in the size of a feature rather than its sign — e.g. one regime
    with large day-to-day change ``(z_t − z_{t−1})²`` where the embedding holds both days,
    or two regimes on two lines through the origin — which no hyperplane separates. As in
    :func:`quadratic_probe_r2`, the degree (1 or 2) is chosen with ``C`` inside the
    fitting years, so the products are used only where the other years say they help.

    Args and returns: those of :func:`linear_probe_accuracy`.
    """
    return _logistic_probe_accuracy("quadratic_probe_accuracy", 2, z, labels, groups, cs)


def _logistic_probe_accuracy(
    name: str, degree: int, z: Any, labels: Any, groups: Any, cs: Sequence[float]
) -> float:
    x = as_samples(z)
    y = np.asarray(to_numpy(labels)).ravel().astype(int)
    groups = _check_blocked(name, x, y, groups)
    if np.unique(y).size < 2:
        raise ValueError(f"{name}: the labels hold a single class")
    if not cs:
        raise ValueError(f"{name}: cs must hold at least one C")

    def probe(p: tuple[int, float]):
        return make_pipeline(*_features(p[0]), LogisticRegression(C=p[1], max_iter=2000))

    # degree 2 chooses between the linear and the quadratic readout inside the fitting years
    params = [(d, float(c)) for d in range(1, degree + 1) for c in cs]
    pred = _nested_blocked_predict(probe, params, x, y, groups, balanced_accuracy_score)
    return float(balanced_accuracy_score(y, pred))


#: Candidate neighbour counts of the k-NN probes (chosen per outer fold by the inner CV).
KNN_KS: tuple[int, ...] = (5, 20, 80)


def knn_probe_r2(z: Any, target: Any, *, groups: Any, ks: Sequence[int] = KNN_KS) -> float:
    """Out-of-sample R² of a k-nearest-neighbour regression of a driver on the embeddings:
    the nonlinear companion of :func:`linear_probe_r2`, scored the same way.

    The probe is ``StandardScaler`` + ``KNeighborsRegressor`` (uniform weights, Euclidean
    distance on standardised features): ŷ(z) is the mean target of the k embeddings of the
    fitting years nearest to z. It can read a driver that the embedding holds in any smooth
    form — e.g. as ``z₁²``, or on a curve — where the linear probe needs it along one
    direction. ``k`` (from ``ks``) is chosen per outer fold by an inner leave-one-group-out
    on the fitting years only; predictions are pooled over the outer folds (one per group)
    and scored by the pooled R² of :func:`linear_probe_r2`. k-NN has no optimiser and no
    random state, so the score is a deterministic function of the embeddings.

    Args:
        z: ``(n, E)`` embeddings.
        target: ``(n,)`` driver.
        groups: ``(n,)`` block label of each sample (e.g. calendar year; at least 2).
        ks: candidate neighbour counts (each clipped to the number of fitting samples).

    Returns:
        R² (≤ 1; ≤ 0: the driver is not decodable out of sample, even nonlinearly).
    """
    x = as_samples(z)
    y = to_numpy(target).ravel().astype(float)
    groups = _check_blocked("knn_probe_r2", x, y, groups)
    pred = _nested_blocked_predict(_knn(KNeighborsRegressor), ks, x, y, groups, r2_score)
    return float(r2_score(y, pred))


def knn_probe_accuracy(z: Any, labels: Any, *, groups: Any, ks: Sequence[int] = KNN_KS) -> float:
    """Out-of-sample balanced accuracy of a k-nearest-neighbour classifier of known labels:
    the nonlinear companion of :func:`linear_probe_accuracy`, scored the same way.

    The probe is ``StandardScaler`` + ``KNeighborsClassifier`` (majority of the k nearest
    embeddings of the fitting years, uniform weights); ``k`` from ``ks`` is chosen per outer
    fold by an inner leave-one-group-out on the fitting years only, and the pooled
    predictions are scored by the balanced accuracy (chance 1/K). It separates regimes that
    no hyperplane does — e.g. two regimes on two lines through the origin of the embedding
    space, or one regime at large ``|z|`` and another near 0.

    Args:
        z: ``(n, F)`` features per sample.
        labels: ``(n,)`` integer class of each sample.
        groups: ``(n,)`` block label of each sample (at least 2 distinct values).
        ks: candidate neighbour counts (each clipped to the number of fitting samples).

    Returns:
        Balanced accuracy in [0, 1] (1/K: chance).
    """
    x = as_samples(z)
    y = np.asarray(to_numpy(labels)).ravel().astype(int)
    groups = _check_blocked("knn_probe_accuracy", x, y, groups)
    if np.unique(y).size < 2:
        raise ValueError("knn_probe_accuracy: the labels hold a single class")
    pred = _nested_blocked_predict(
        _knn(KNeighborsClassifier), ks, x, y, groups, balanced_accuracy_score
    )
    return float(balanced_accuracy_score(y, pred))


def _knn(estimator: Any) -> Callable[[int], Any]:
    def probe(k: int):
        return make_pipeline(StandardScaler(), estimator(n_neighbors=int(k)))

    return probe


def _check_blocked(name: str, x: np.ndarray, y: np.ndarray, groups: Any) -> np.ndarray:
    """``groups`` as an array, after the checks every blocked probe needs."""
    groups = np.asarray(groups).ravel()
    if groups.shape != y.shape or x.shape[0] != y.size:
        raise ValueError(
            f"{name}: {x.shape[0]} samples, {y.size} targets and {groups.size} groups; give "
            "one target and one block label (e.g. the year) per sample"
        )
    if np.unique(groups).size < 2:
        raise ValueError(
            f"{name}: blocked cross-validation needs at least 2 groups (years); "
            f"got only {np.unique(groups).tolist()}"
        )
    return groups


def _nested_blocked_predict(
    probe: Callable[[Any], Any],
    params: Sequence[Any],
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> np.ndarray:
    """Out-of-fold predictions of ``probe(param)`` by nested blocked cross-validation.

    One outer fold per group: its samples are predicted by ``probe(p)`` fitted on all the
    other groups, with ``p`` the member of ``params`` whose pooled leave-one-group-out
    ``score`` on those other groups is highest (ties: the first; the first is used outright
    where the other groups are fewer than 2 or hold one class only). Nothing of the scored
    group is seen by the choice. Integer ``params`` are neighbour counts and are clipped to
    the number of fitting samples of the inner folds."""
    if not params:
        raise ValueError("a blocked probe needs at least one candidate parameter")

    def clip(p: Any, n: int) -> Any:
        return min(p, n) if isinstance(p, int | np.integer) else p

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        xt, yt, gt = x[train], y[train], groups[train]
        p = params[0]
        if len(params) > 1 and np.unique(gt).size >= 2 and np.unique(yt).size >= 2:
            n_inner = min(int((gt != g).sum()) for g in np.unique(gt))
            scores = [
                score(
                    yt,
                    cross_val_predict(
                        probe(clip(c, n_inner)), xt, yt, cv=LeaveOneGroupOut(), groups=gt
                    ),
                )
                for c in params
            ]
            p = params[int(np.argmax(scores))]
        return probe(clip(p, len(train))).fit(xt, yt).predict(x[test])

    pred = np.empty_like(y)
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        pred[test] = fit_predict(train, test)
    return pred


def occlusion_attribution(
    embed_fn: Callable[[Any], Any],
    x: Any,
    *,
    baseline: float = 0.0,
    variables: Sequence[str] | None = None,
    clean: Any = None,
) -> xr.DataArray:
    """Per-variable attribution by occlusion: how far the embeddings move without a variable.

    Channel c of the input ``(..., C, H, W)`` is replaced by ``baseline`` (0 = the mean of
    normalised inputs) and

    .. math:: a_c = \\frac{\\operatorname{mean}_i \\lVert z_i - z_i^{(-c)} \\rVert_2}
                         {\\operatorname{mean}_i \\lVert z_i \\rVert_2}

    Args:
        embed_fn: maps inputs like ``x`` to embeddings.
        x: ``(..., C, H, W)`` torch tensor or numpy array.
        variables: C names for the output coordinate.
        clean: the embeddings of ``x`` if already computed (saves one pass).

    Returns:
        ``(variable,)`` DataArray of relative embedding change (dimensionless, ≥ 0).
    """
    clean = as_samples(embed_fn(x) if clean is None else clean)
    n_ch = x.shape[-3]
    scores = []
    for ch in range(n_ch):
        occluded = x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)
        occluded[..., ch, :, :] = baseline
        z = as_samples(embed_fn(occluded))
        scores.append(
            np.linalg.norm(clean - z, axis=1).mean() / np.linalg.norm(clean, axis=1).mean()
        )
    names = list(variables) if variables is not None else list(range(n_ch))
    return xr.DataArray(np.asarray(scores), dims=("variable",), coords={"variable": names})


def se_branch_statistics(se_weights: Any, branch_energy: Any, times: Any = None) -> xr.Dataset:
    """Mean SE channel weights and dilation-branch energy shares, by season.

    Args:
        se_weights: ``(B, T, r)`` squeeze-and-excitation gates in (0, 1).
        branch_energy: ``(B, T, n_branches)`` energy of each depthwise dilation branch.
        times: ``(B, T)`` datetime stamps (numpy or cftime) of the steps; without them the
            statistics are per step index instead of per season.

    Returns:
        Dataset with ``se_weight (group, se_channel)`` and ``branch_share (group, branch)``
        (energy of a branch / total energy, summing to 1 over branches), where ``group`` is
        the meteorological season (DJF, MAM, JJA, SON) or the step index.
    """
    se = to_numpy(se_weights)
    energy = to_numpy(branch_energy)
    share = energy / energy.sum(-1, keepdims=True)
    ds = xr.Dataset(
        {
            "se_weight": (("sample", "se_channel"), se.reshape(-1, se.shape[-1])),
            "branch_share": (("sample", "branch"), share.reshape(-1, share.shape[-1])),
        }
    )
    if times is None:
        steps = np.broadcast_to(np.arange(se.shape[1]), se.shape[:2]).ravel()
        return ds.assign_coords(step=("sample", steps)).groupby("step").mean()
    stamps = np.asarray(times).ravel()
    ds = ds.assign_coords(time=("sample", stamps))
    out = ds.groupby("time.season").mean().rename(season="group")
    order = [s for s in ("DJF", "MAM", "JJA", "SON") if s in out["group"].values]
    return out.sel(group=order)


def lon_in_range(lon: xr.DataArray, lon_range: tuple[float, float]) -> xr.DataArray:
    """Longitudes inside ``lon_range`` = (west, east) edges in degrees east, in either
    convention (−180…180 or 0…360) whatever the grid's; a box may cross the dateline or the
    prime meridian (e.g. (−90, 40) on a 0…360 grid, or (160, −160))."""
    lo0, lo1 = (float(v) % 360.0 for v in lon_range)
    lon360 = lon % 360.0
    if lo0 <= lo1:
        return (lon360 >= lo0) & (lon360 <= lo1)
    return (lon360 >= lo0) | (lon360 <= lo1)


def box_mean_index(
    field: xr.DataArray,
    lat_range: tuple[float, float],
    lon_range: tuple[float, float],
    *,
    lat_dim: str | None = None,
    lon_dim: str | None = None,
    anomaly: bool = True,
) -> xr.DataArray:
    """Area-weighted (cos φ) mean of a field over a lat-lon box, as a time series.

    Longitudes of the box may be given in either convention (−180…180 or 0…360); they are
    matched to the field's. With ``anomaly=True`` the time mean is removed. The latitude /
    longitude dimensions are ``lat``/``lon`` or WeatherBench2's ``latitude``/``longitude``
    unless named. Missing values (NaN, e.g. land) are skipped.
    """
    lat_dim, lon_dim = _spatial_dims(field, lat_dim, lon_dim)
    lon_sel = lon_in_range(field[lon_dim], lon_range)
    lat = field[lat_dim]
    lat_sel = (lat >= min(lat_range)) & (lat <= max(lat_range))
    box = field.where(lat_sel & lon_sel, drop=True)
    idx = box.weighted(np.cos(np.deg2rad(box[lat_dim]))).mean((lat_dim, lon_dim))
    return idx - idx.mean() if anomaly else idx


#: The Niño-3.4 box: (latitudes, longitudes) in degrees.
NINO34_BOX = ((-5.0, 5.0), (-170.0, -120.0))


def nino34_index(
    sst: xr.DataArray, *, lat_dim: str | None = None, lon_dim: str | None = None
) -> xr.DataArray:
    """Niño-3.4 index: SST anomaly averaged over 5°S–5°N, 170°W–120°W (time mean removed)."""
    return box_mean_index(sst, *NINO34_BOX, lat_dim=lat_dim, lon_dim=lon_dim)
