"""Stability metrics: linear CKA, seed agreement of k-means regimes, drift between epochs."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from faconvlstm.evaluation import (
    cluster_agreement,
    embedding_drift,
    linear_cka,
    mean_pairwise_cka,
    pairwise_cka,
)


def _blobs(n_per: int = 100, k: int = 4, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + rng.normal(size=(k * n_per, dim)), labels


def test_linear_cka_matches_published_test_vector():
    # Test vector of the reference implementation (Kornblith et al. 2019, CKA notebook).
    # np.random.seed(1337); X = randn(100, 10); Y = randn(100, 10) + X, via the same stream.
    legacy = np.random.RandomState(1337)
    x = legacy.randn(100, 10)
    y = legacy.randn(100, 10) + x
    assert linear_cka(x, y) == pytest.approx(0.55761, abs=1e-5)


def test_linear_cka_is_one_for_identical_and_rotated_scaled_copies():
    x = np.random.default_rng(0).normal(size=(200, 8))
    q = ortho_group.rvs(8, random_state=1)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-12)


def test_linear_cka_is_near_zero_for_independent_representations():
    rng = np.random.default_rng(0)
    # For independent Gaussians E[CKA] ≈ p·q/(n·√(p·q))-ish, ~0.005 here; 0.03 leaves margin.
    assert linear_cka(rng.normal(size=(2000, 5)), rng.normal(size=(2000, 5))) < 0.03


def test_linear_cka_flattens_batches_of_windows_and_rejects_mismatched_samples():
    z = np.random.default_rng(0).normal(size=(4, 25, 6))
    assert linear_cka(z, z.reshape(100, 6)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(z, z[:2])


def test_mean_pairwise_cka_of_equivalent_seeds_is_one_and_of_unrelated_is_low():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    same = [x, x @ ortho_group.rvs(6, random_state=2), 0.1 * x]
    assert mean_pairwise_cka(same) == pytest.approx(1.0, abs=1e-12)
    unrelated = [rng.normal(size=(500, 6)) for _ in range(3)]
    assert mean_pairwise_cka(unrelated) < 0.05
    m = pairwise_cka(unrelated)
    assert m.shape == (3, 3)
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)


def test_cluster_agreement_is_one_for_the_same_regimes_in_other_coordinates():
    z, _ = _blobs()
    rotated = z @ ortho_group.rvs(z.shape[1], random_state=3)
    out = cluster_agreement([z, rotated, 2 * z], n_clusters=4)
    assert out["ari"] == pytest.approx(1.0)
    assert out["nmi"] == pytest.approx(1.0)


def test_cluster_agreement_is_near_zero_for_pure_noise_embeddings():
    rng = np.random.default_rng(0)
    noise = [rng.normal(size=(2000, 4)) for _ in range(3)]
    out = cluster_agreement(noise, n_clusters=4)
    # Chance ARI has mean 0 and sd ~1/n-ish; k-means on isotropic noise partitions each
    # independent sample arbitrarily, so agreement stays small.
    assert abs(out["ari"]) < 0.05
    assert out["nmi"] < 0.05


def test_embedding_drift_is_zero_when_nothing_moves_and_sees_rotation_only_in_coordinates():
    x = np.random.default_rng(0).normal(size=(300, 5))
    q = ortho_group.rvs(5, random_state=4)
    still = embedding_drift([x, x, x])
    np.testing.assert_allclose(still["cka_drift"], 0.0, atol=1e-12)
    np.testing.assert_allclose(still["relative_change"], 0.0)
    rot = embedding_drift([x, x @ q])
    assert rot["cka_drift"][0] == pytest.approx(0.0, abs=1e-12)
    assert rot["relative_change"][0] > 0.5
