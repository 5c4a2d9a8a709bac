"""ClusteringHead: the DEC/IDEC soft assignment, target distribution, KL and k-means init."""

import numpy as np
import pytest
import torch

from faconvlstm.heads import ClusteringHead


def _head(k=3, e=2, alpha=1.0, seed=0):
    torch.manual_seed(seed)
    head = ClusteringHead(k, e, alpha=alpha)
    with torch.no_grad():
        head.centroids.copy_(torch.randn(k, e) * 3)
    return head


def _entropy(p):
    return -(torch.xlogy(p, p)).sum(-1).mean()


def test_soft_assignment_rows_sum_to_one_on_any_leading_shape():
    head = _head(k=4, e=5)
    z = torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(1)) * 4
    q = head.soft_assign(z)
    assert q.shape == (2, 7, 4)
    assert (q > 0).all()
    # float32 sums of 4 terms: exact to a few ulps
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 7), rtol=0, atol=1e-6)


def test_soft_assignment_matches_the_student_t_formula():
    head = _head(k=3, e=2, alpha=2.5)
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    head = head.double()
    d2 = ((z[:, None] - head.centroids[None]) ** 2).sum(-1)
    kernel = (1 + d2 / 2.5) ** (-(2.5 + 1) / 2)
    expected = kernel / kernel.sum(1, keepdim=True)
    torch.testing.assert_close(head.soft_assign(z), expected, rtol=1e-12, atol=0)


def test_soft_assignment_is_highest_for_the_nearest_centroid():
    head = _head(k=5, e=3)
    z = torch.randn(200, 3, generator=torch.Generator().manual_seed(3)) * 4
    nearest = torch.cdist(z, head.centroids).argmin(1)
    assert torch.equal(head.soft_assign(z).argmax(1), nearest)


def test_soft_assignment_stays_finite_far_from_every_centroid():
    head = _head(k=3, e=2)
    q = head.soft_assign(torch.full((1, 2), 1e18))
    assert torch.isfinite(q).all()


def test_target_distribution_sharpens_and_sums_to_one():
    head = _head(k=4, e=3)
    z = torch.randn(64, 3, generator=torch.Generator().manual_seed(4)) * 3
    q = head.soft_assign(z)
    p = head.target_distribution(q)
    torch.testing.assert_close(p.sum(-1), torch.ones(64), rtol=0, atol=1e-6)
    assert _entropy(p) < _entropy(q)
    assert not p.requires_grad  # the target is held fixed


def test_target_distribution_formula_with_cluster_frequencies():
    q = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]], dtype=torch.float64)
    f = q.sum(0)
    w = q**2 / f
    expected = w / w.sum(1, keepdim=True)
    torch.testing.assert_close(ClusteringHead.target_distribution(q), expected)
    # the frequencies pool every leading axis: (1, 3, 2) gives the same target
    torch.testing.assert_close(ClusteringHead.target_distribution(q[None])[0], expected)


def test_uniform_assignments_are_their_own_target():
    q = torch.full((10, 4), 0.25)
    torch.testing.assert_close(ClusteringHead.target_distribution(q), q)


def test_kl_is_zero_iff_p_equals_q():
    q = torch.softmax(torch.randn(20, 4, generator=torch.Generator().manual_seed(5)), -1)
    assert ClusteringHead.kl_loss(q, q).abs() < 1e-6  # float32 log round-off
    p = ClusteringHead.target_distribution(q)
    assert ClusteringHead.kl_loss(q, p) > 1e-4
    # zeros in p contribute 0 (0 log 0 = 0), not NaN
    p0 = torch.zeros_like(q)
    p0[:, 0] = 1
    assert torch.isfinite(ClusteringHead.kl_loss(q, p0))


def test_kl_matches_the_definition_averaged_over_rows():
    q = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    p = torch.tensor([[0.8, 0.2], [0.95, 0.05]], dtype=torch.float64)
    expected = (p * (p / q).log()).sum(1).mean()
    torch.testing.assert_close(ClusteringHead.kl_loss(q, p), expected)


def test_gradients_flow_to_embeddings_and_centroids():
    head = _head(k=3, e=4)
    z = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(6), requires_grad=True)
    q = head.soft_assign(z)
    loss = head.kl_loss(q, head.target_distribution(q))
    loss.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert head.centroids.grad is not None and head.centroids.grad.abs().sum() > 0


def test_init_centroids_puts_them_at_the_kmeans_centres():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(7)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = np.concatenate([c + rng.normal(0, 0.5, (40, 2)) for c in centres])
    head = ClusteringHead(3, 2)
    assert not bool(head.initialized)
    labels = head.init_centroids(torch.as_tensor(z, dtype=torch.float32), seed=0, n_init=4)
    assert bool(head.initialized)
    km = KMeans(3, n_init=4, random_state=0).fit(z.astype(np.float32).astype(np.float64))
    # float32 parameter of the float64 centres
    np.testing.assert_allclose(head.centroids.detach().numpy(), km.cluster_centers_, atol=1e-6)
    np.testing.assert_array_equal(labels, km.labels_)
    # and the soft assignment recovers the planted groups exactly (they are 10σ apart)
    q = head.soft_assign(torch.as_tensor(z, dtype=torch.float32))
    assert torch.equal(q.argmax(1), torch.as_tensor(km.labels_).long())


def test_centroids_and_init_flag_are_in_the_state_dict():
    head = _head(k=3, e=2)
    head.init_centroids(torch.randn(30, 2, generator=torch.Generator().manual_seed(8)), n_init=4)
    state = head.state_dict()
    assert set(state) == {"centroids", "initialized"}
    clone = ClusteringHead(3, 2)
    clone.load_state_dict(state)
    assert bool(clone.initialized)
    torch.testing.assert_close(clone.centroids, head.centroids)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_clusters": 1}, "n_clusters"), ({"alpha": 0.0}, "alpha")],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClusteringHead(**{"n_clusters": 3, "embed_dim": 2, **kwargs})


def test_init_needs_enough_embeddings_and_starts():
    head = ClusteringHead(3, 2)
    with pytest.raises(ValueError, match="at least"):
        head.init_centroids(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="n_init"):
        head.init_centroids(torch.randn(10, 2), n_init=1)
