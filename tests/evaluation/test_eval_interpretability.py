"""Interpretability: attention maps on the grid, SE/branch statistics, occlusion, probes."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from faconvlstm import FAConvLSTM2D
from faconvlstm.evaluation import (
    attention_map,
    attention_mass_on_region,
    knn_probe_accuracy,
    knn_probe_r2,
    linear_probe_accuracy,
    linear_probe_r2,
    nino34_index,
    occlusion_attribution,
    quadratic_probe_accuracy,
    quadratic_probe_r2,
    region_mask,
    se_branch_statistics,
    uniform_attention_map,
)

H, W = 6, 10


def _uniform():
    return np.full((1, H, 1, W, W), 1.0 / W), np.full((1, W, 1, H, H), 1.0 / H)


def test_one_hop_attention_map_is_the_cross_through_the_query():
    row, col = _uniform()
    m = attention_map(row, col, (2, 3))
    assert m.sum() == pytest.approx(1.0)
    assert m[2, 0] == pytest.approx(0.5 / W)
    assert m[0, 3] == pytest.approx(0.5 / H)
    assert m[2, 3] == pytest.approx(0.5 / W + 0.5 / H)
    assert m[0, 0] == 0.0


def test_two_hops_reach_a_lobe_at_another_latitude_and_longitude():
    # column attention sends every point to the mirrored latitude, row attention to the
    # opposite longitude; a lobe at (H-1-i, j+W/2) is reached only through both.
    row = np.zeros((2, H, 1, W, W))
    col = np.zeros((2, W, 1, H, H))
    for j in range(W):
        row[:, :, 0, j, (j + W // 2) % W] = 1.0
    for i in range(H):
        col[:, :, 0, i, H - 1 - i] = 1.0
    assert attention_map(row, col, (1, 2))[H - 2, 7] == 0.0
    two = attention_map(row, col, (1, 2), hops=2)
    assert two.sum() == pytest.approx(1.0)
    assert two[H - 2, 7] == pytest.approx(0.5)  # row→col and col→row paths, 0.25 each


def test_attention_mass_on_region_against_chance():
    region = np.zeros((H, W), bool)
    region[:2, :5] = True
    uniform = np.ones((H, W))
    out = attention_mass_on_region(uniform, region)
    assert out["mass"] == pytest.approx(10 / 60)
    assert out["ratio"] == pytest.approx(1.0)
    focused = attention_mass_on_region(region.astype(float), region)
    assert focused["mass"] == pytest.approx(1.0)
    assert focused["ratio"] == pytest.approx(6.0)


def test_region_mask_uses_great_circle_distance_across_the_dateline():
    lat = np.array([-30.0, 0.0, 30.0])
    lon = np.array([0.0, 10.0, 180.0, 350.0])
    m = region_mask(lat, lon, centre=(0.0, 355.0), radius_deg=16.0)
    assert m[1].tolist() == [True, True, False, True]
    assert not m[0].any() and not m[2].any()


def test_linear_probe_recovers_a_linear_driver_and_not_noise():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 8))
    driver = z @ rng.normal(size=8)
    assert linear_probe_r2(z, driver) > 0.999
    # an independent target is not decodable: out-of-fold R² ≤ ~0
    assert linear_probe_r2(z, rng.normal(size=400)) < 0.05


def test_linear_probe_accuracy_separates_known_classes_and_not_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    groups = np.repeat(np.arange(4), 100)
    z = np.eye(4)[labels] * 3.0 + rng.normal(size=(400, 4)) * 0.3
    assert linear_probe_accuracy(z, labels, groups=groups) > 0.99
    # unrelated features: balanced accuracy at chance (1/4) up to sampling error (~0.03)
    noise = rng.normal(size=(400, 4))
    assert linear_probe_accuracy(noise, labels, groups=groups) < 0.33


def test_linear_probe_accuracy_with_one_penalty_is_leave_one_year_out_logistic_regression():
    """With a single C there is nothing to choose: the score is scikit-learn's
    leave-one-group-out logistic regression, pooled, scored by balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    groups = np.repeat(np.arange(3), 100)
    z = np.column_stack([labels + rng.normal(size=300), rng.normal(size=(300, 5))])
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    pred = cross_val_predict(probe, z, labels, cv=LeaveOneGroupOut(), groups=groups)
    expected = balanced_accuracy_score(labels, pred)
    assert linear_probe_accuracy(z, labels, groups=groups, cs=(0.1,)) == pytest.approx(expected)
    # the default grid chooses C per outer fold on the other years: still well above chance
    assert linear_probe_accuracy(z, labels, groups=groups) > 0.5


def test_linear_probe_accuracy_errors_say_what_to_fix():
    z, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="at least 2 groups"):
        linear_probe_accuracy(z, y, groups=np.full(10, 2000))
    with pytest.raises(ValueError, match="one block label"):
        linear_probe_accuracy(z, y, groups=np.arange(5))
    with pytest.raises(ValueError, match="single class"):
        linear_probe_accuracy(z, np.zeros(10), groups=np.arange(10) % 2)


def test_quadratic_and_knn_probes_read_an_even_function_that_a_linear_probe_cannot():
    """A regime held as the size, not the sign, of a feature (the persistence record's
    case: b and -b equally likely in both regimes) is invisible to a hyperplane and read
    by the quadratic and k-NN probes; unrelated features stay at chance / R² ≤ ~0."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 200)
    z = rng.normal(size=(1000, 3))
    noise = rng.normal(size=(1000, 3))
    labels = (np.abs(z[:, 0]) > 0.67).astype(int)  # two classes of about equal size
    # no hyperplane separates them: the linear probe stays near chance (measured 0.56; the
    # bound allows the ~0.03 that fold-wise class frequencies give a logistic intercept)
    assert linear_probe_accuracy(z, labels, groups=groups) < 0.6
    assert quadratic_probe_accuracy(z, labels, groups=groups) > 0.9  # measured 0.97
    assert knn_probe_accuracy(z, labels, groups=groups) > 0.85  # measured 0.94
    assert quadratic_probe_accuracy(noise, labels, groups=groups) < 0.56
    assert knn_probe_accuracy(noise, labels, groups=groups) < 0.56
    driver = z[:, 0] ** 2
    assert linear_probe_r2(z, driver, groups=groups) < 0.05
    assert quadratic_probe_r2(z, driver, groups=groups) > 0.99  # exact: z₀² is a feature
    assert knn_probe_r2(z, driver, groups=groups) > 0.8  # measured 0.88
    assert quadratic_probe_r2(noise, driver, groups=groups) < 0.05
    assert knn_probe_r2(noise, driver, groups=groups) < 0.05


def test_quadratic_probes_contain_the_linear_ones():
    """The degree is chosen inside the fitting years: where the products do not help (a
    linear driver, linearly separable classes), the probe falls back on the linear readout
    and scores what the linear probe does (measured: R² 0.9758 vs 0.9758, balanced
    accuracy 0.987 vs 0.987)."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(5), 360)
    z = rng.normal(size=(1800, 16))
    driver = z @ rng.normal(size=16) + 0.5 * rng.normal(size=1800)
    lin = linear_probe_r2(z, driver, groups=groups)
    assert quadratic_probe_r2(z, driver, groups=groups) == pytest.approx(lin, abs=0.005)
    labels = (z[:, 0] + z[:, 1] > 0).astype(int)
    lin_a = linear_probe_accuracy(z, labels, groups=groups)
    assert quadratic_probe_accuracy(z, labels, groups=groups) == pytest.approx(lin_a, abs=0.005)
    with pytest.raises(ValueError, match="quadratic_probe_accuracy: the labels hold a single"):
        quadratic_probe_accuracy(z, np.zeros(1800), groups=groups)
    with pytest.raises(ValueError, match="quadratic_probe_r2: blocked cross-validation"):
        quadratic_probe_r2(z, driver, groups=np.zeros(1800))


def _sklearn_quadratic_ridge(z, y, groups, alphas):
    """The reference of quadratic_probe_r2: one scikit-learn pipeline fit per fitting set
    and candidate (what the library ran before the eigendecomposition shortcut)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline

    from faconvlstm.evaluation.interpretability import _features, _nested_blocked_predict

    def probe(p):
        return make_pipeline(*_features(p[0]), Ridge(alpha=p[1]))

    params = [(d, float(a)) for d in (1, 2) for a in alphas]
    return r2_score(y, _nested_blocked_predict(probe, params, z, y, groups, r2_score))


@pytest.mark.parametrize("case", ["quadratic", "linear", "constant feature", "two groups"])
def test_quadratic_ridge_probe_equals_the_scikit_learn_pipelines(case):
    """quadratic_probe_r2 solves every (degree, α) of a fitting set from one
    eigendecomposition instead of one scikit-learn pipeline fit each: the same nested
    blocked CV, the same choices, the same R² to rounding (1e-9: float64 solves of
    standardised, α-regularised 10–36-column systems agree to ~1e-12)."""
    rng = np.random.default_rng(7)
    n_groups = 2 if case == "two groups" else 6
    groups = np.repeat(np.arange(n_groups), 90)
    z = rng.normal(size=(groups.size, 7)) * [1.0, 3.0, 0.2, 1.0, 10.0, 1.0, 1.0] + 2.0
    if case == "constant feature":
        z[:, 2] = 4.0  # a dead embedding dimension: scale 1, no information
    # two groups leave no inner fold: the first candidate (degree 1) is used outright
    drive = z[:, 1] if case in ("linear", "two groups") else (z[:, 0] - 2.0) ** 2
    y = drive + (z[:, 3] - 2.0) * (z[:, 4] - 2.0) / 10 + 0.5 * rng.normal(size=groups.size)
    alphas = (0.1, 3.0, 100.0)
    ours = quadratic_probe_r2(z, y, groups=groups, alphas=alphas)
    assert ours == pytest.approx(_sklearn_quadratic_ridge(z, y, groups, alphas), abs=1e-9)
    assert ours > 0.5  # a real fit, not a degenerate one


def test_quadratic_ridge_probe_refuses_bad_penalties_and_missing_values():
    rng = np.random.default_rng(0)
    z, y, groups = rng.normal(size=(40, 3)), rng.normal(size=40), np.repeat([0, 1], 20)
    with pytest.raises(ValueError, match="alphas must be positive"):
        quadratic_probe_r2(z, y, groups=groups, alphas=(0.0, 1.0))
    z[3, 1] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        quadratic_probe_r2(z, y, groups=groups)


def test_knn_probe_with_one_k_is_leave_one_year_out_knn():
    """With a single k there is nothing to choose: the score is scikit-learn's pooled
    leave-one-group-out k-NN on standardised features."""
    from sklearn.metrics import balanced_accuracy_score, r2_score
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(3), 100)
    z = rng.normal(size=(300, 4)) * [1.0, 5.0, 0.1, 1.0]
    y = np.sin(2 * z[:, 0]) + 0.1 * rng.normal(size=300)
    labels = (y > 0).astype(int)

    def pooled(estimator, target):
        probe = make_pipeline(StandardScaler(), estimator(n_neighbors=7))
        return cross_val_predict(probe, z, target, cv=LeaveOneGroupOut(), groups=groups)

    assert knn_probe_r2(z, y, groups=groups, ks=(7,)) == pytest.approx(
        r2_score(y, pooled(KNeighborsRegressor, y))
    )
    assert knn_probe_accuracy(z, labels, groups=groups, ks=(7,)) == pytest.approx(
        balanced_accuracy_score(labels, pooled(KNeighborsClassifier, labels))
    )
    # k larger than the fitting years hold is clipped, not an error
    assert np.isfinite(knn_probe_r2(z, y, groups=groups, ks=(5, 10_000)))


def test_knn_probe_errors_say_what_to_fix():
    z, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="at least 2 groups"):
        knn_probe_accuracy(z, y, groups=np.full(10, 2000))
    with pytest.raises(ValueError, match="one block label"):
        knn_probe_r2(z, y, groups=np.arange(5))
    with pytest.raises(ValueError, match="single class"):
        knn_probe_accuracy(z, np.zeros(10), groups=np.arange(10) % 2)
    with pytest.raises(ValueError, match="at least one candidate"):
        knn_probe_r2(z, y, groups=np.arange(10) % 2, ks=())


def test_occlusion_attributes_nothing_to_an_unused_variable():
    x = torch.randn(2, 5, 3, 4, 4, generator=torch.Generator().manual_seed(0))

    def embed(inp):
        return inp[:, :, 0].reshape(10, -1) * 2.0 + inp[:, :, 2].reshape(10, -1)

    out = occlusion_attribution(embed, x, variables=["t2m", "z500", "sst"])
    assert out["variable"].values.tolist() == ["t2m", "z500", "sst"]
    assert float(out.sel(variable="z500")) == 0.0
    assert float(out.sel(variable="t2m")) > float(out.sel(variable="sst")) > 0.0


def test_se_branch_statistics_by_season_and_by_step():
    times = pd.date_range("2001-01-01", periods=365, freq="D").values.reshape(5, 73)
    month = pd.DatetimeIndex(times.ravel()).month.values.reshape(5, 73)
    se = np.where(np.isin(month, [12, 1, 2]), 1.0, 0.0)[..., None] * np.ones(4)
    energy = np.ones((5, 73, 3)) * np.array([1.0, 1.0, 2.0])
    out = se_branch_statistics(se, energy, times)
    np.testing.assert_allclose(out["se_weight"].sel(group="DJF"), 1.0)
    np.testing.assert_allclose(out["se_weight"].sel(group="JJA"), 0.0)
    np.testing.assert_allclose(out["branch_share"].sel(group="MAM"), [0.25, 0.25, 0.5])
    by_step = se_branch_statistics(se, energy)
    assert by_step["se_weight"].sizes == {"step": 73, "se_channel": 4}


@pytest.mark.parametrize("lon", [np.arange(0.0, 360.0, 5.0), np.arange(-180.0, 180.0, 5.0)])
def test_nino34_index_is_the_box_mean_anomaly(lon):
    lat = np.arange(-20.0, 21.0, 2.5)
    amp = np.array([1.0, -1.0, 3.0, 1.0])
    in_box = (np.abs(lat)[:, None] <= 5) & (((lon % 360) >= 190) & ((lon % 360) <= 240))[None]
    sst = xr.DataArray(
        20.0 + amp[:, None, None] * in_box + 5.0 * ~in_box * amp[::-1, None, None],
        dims=("time", "lat", "lon"),
        coords={"time": np.arange(4), "lat": lat, "lon": lon},
    )
    np.testing.assert_allclose(nino34_index(sst).values, amp - amp.mean())


def test_uniform_attention_map_is_the_chance_level_of_the_cross():
    region = np.zeros((H, W), bool)
    region[2, 7] = True  # on the query's row
    out = attention_mass_on_region(
        uniform_attention_map((H, W), (2, 3)),
        region,
        chance_map=uniform_attention_map((H, W), (2, 3)),
    )
    assert out["mass"] == pytest.approx(0.5 / W)
    assert out["ratio"] == pytest.approx(1.0)


def _teleconnection_batch(g, n=64):
    """Noise on channel 0; the target at Q is the value at the remote site R, 8 columns
    away (beyond the ±4-cell reach of one step's convolutions), which a static marker on
    channel 1 identifies — as an orography or land-sea mask would."""
    x = torch.randn(n, 1, 2, 6, 16, generator=g)
    x[:, :, 1] = 0.0
    x[:, :, 1, 3, 12] = 3.0
    return x, 0.5 * x[:, 0, 0, 3, 12]


def _remote_ratio(layer, query=(3, 4)):
    x, _ = _teleconnection_batch(torch.Generator().manual_seed(99))
    with torch.no_grad(), layer.capture_internals() as rec:
        layer(x)
    a = rec["attention"][-1]
    # the remote "lobe": the site and its neighbours, whose hidden states hold the site's
    # value after one step of convolution (a trained layer may attend to either)
    region = np.zeros((6, 16), bool)
    region[2:5, 10:15] = True
    chance = uniform_attention_map((6, 16), query)
    return attention_mass_on_region(attention_map(a["row"], a["col"], query), region, chance)


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is fastest, and immune to thread pools fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_attention_of_a_layer_trained_on_a_planted_teleconnection_reaches_the_remote_site(
    one_thread,
):
    torch.manual_seed(0)
    layer = FAConvLSTM2D(
        8, 3, padding="same", in_channels=2, attention_every=1, return_sequences=True
    )
    # untrained: the axial attention is close to uniform, so the ratio is ≈ 1
    assert _remote_ratio(layer)["ratio"] == pytest.approx(1.0, abs=0.2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    for _ in range(250):
        x, y = _teleconnection_batch(g)
        loss = ((layer(x)[:, -1, 0, 3, 4] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the only route from R to Q in one step is the row attention: the trained layer's
    # query attends to the remote lobe well above chance (at most 0.5 / (0.5 · 5/16) = 3.2
    # for a 1-hop map; seeded)
    assert loss.item() < 0.1  # target variance 0.25: the remote value was carried over
    assert _remote_ratio(layer)["ratio"] > 2.0


def test_linear_probe_fitted_on_one_period_and_scored_on_another():
    rng = np.random.default_rng(1)
    beta = rng.normal(size=6)
    z_train, z_test = rng.normal(size=(300, 6)), rng.normal(size=(100, 6))
    r2 = linear_probe_r2(z_train, z_train @ beta, z_test=z_test, target_test=z_test @ beta)
    assert r2 > 0.999
    # a relation that changes between the periods is not rewarded
    assert linear_probe_r2(z_train, z_train @ beta, z_test=z_test, target_test=-z_test @ beta) < 0
