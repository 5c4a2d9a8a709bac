"""Stability of learned representations across seeds and across training epochs.

A representation is *stable* when retraining with another seed, or training a little longer,
gives the same geometry of the embedding space up to a rotation and a scale. Linear CKA
(Kornblith et al., 2019, "Similarity of Neural Network Representations Revisited", ICML) is
invariant to exactly those, so it is the headline number; the agreement of k-means clusters
(ARI, NMI) says whether the *regimes* a user would read off the embeddings are the same.

Shapes: n = samples (time steps, or windows × steps flattened), E = embedding width,
S = seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

from faconvlstm.evaluation._arrays import as_samples

__all__ = [
    "cluster_agreement",
    "embedding_drift",
    "fit_kmeans",
    "kmeans_labels",
    "linear_cka",
    "mean_pairwise_cka",
    "pairwise_cka",
]


def linear_cka(x: Any, y: Any) -> float:
    """Linear centred kernel alignment between two representations of the same samples.

    .. math::

        \\mathrm{CKA}(X, Y) = \\frac{\\lVert Y^\\top X \\rVert_F^2}
                                   {\\lVert X^\\top X \\rVert_F \\, \\lVert Y^\\top Y \\rVert_F}

    with the columns of X and Y centred. 1 means the two are equal up to an orthogonal
    transform and an isotropic scale; values near 0 mean unrelated.

    Args:
        x: ``(n, p)`` (or ``(B, T, p)``, flattened to samples) representation.
        y: ``(n, q)`` representation of the same n samples, in the same order.

    Returns:
        CKA in [0, 1] (dimensionless). 0 if either representation is constant.
    """
    x, y = as_samples(x), as_samples(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same samples, got {x.shape[0]} and {y.shape[0]}")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


def pairwise_cka(embeddings: Sequence[Any]) -> np.ndarray:
    """Linear CKA between every pair of S representations of the same samples.

    Returns:
        ``(S, S)`` symmetric matrix with ones on the diagonal.
    """
    s = len(embeddings)
    out = np.eye(s)
    for i, j in combinations(range(s), 2):
        out[i, j] = out[j, i] = linear_cka(embeddings[i], embeddings[j])
    return out


def mean_pairwise_cka(embeddings: Sequence[Any]) -> float:
    """Mean linear CKA over the S(S−1)/2 pairs of seeds: the seed-stability score.

    Args:
        embeddings: S ≥ 2 arrays ``(n, E_s)`` — the same samples embedded by S models that
            differ only in their seed (widths may differ).
    """
    if len(embeddings) < 2:
        raise ValueError("seed stability needs at least two embeddings")
    m = pairwise_cka(embeddings)
    return float(m[np.triu_indices_from(m, k=1)].mean())


def fit_kmeans(z: Any, n_clusters: int, seed: int = 0, n_init: int = 10) -> KMeans:
    """k-means (scikit-learn, Lloyd, ``n_init`` k-means++ restarts) fitted on ``(n, E)``.

    Runs single-threaded: for the few thousand samples of an evaluation period one thread is
    fastest, and scikit-learn's OpenMP pool competing with PyTorch's for the same cores can
    make a 5 ms fit take seconds.
    """
    with threadpool_limits(1, user_api="openmp"):
        return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(as_samples(z))


def kmeans_labels(z: Any, n_clusters: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means labels ``(n,)`` of the embeddings (see :func:`fit_kmeans`)."""
    return fit_kmeans(z, n_clusters, seed, n_init).labels_


def cluster_agreement(
    embeddings: Sequence[Any], n_clusters: int, seed: int = 0
) -> dict[str, float]:
    """Agreement of the k-means regimes found in the embeddings of different seeds.

    Each embedding is clustered with k-means (same k, same k-means seed); then the adjusted
    Rand index and normalised mutual information are averaged over all pairs of seeds.
    ARI is 1 for identical partitions up to a relabelling and ≈0 for chance; NMI is 1 for
    identical partitions and ≈0 for independent ones.

    Args:
        embeddings: S ≥ 2 arrays ``(n, E_s)`` of the same samples.
        n_clusters: k.
        seed: k-means initialisation seed (shared, so only the embeddings differ).

    Returns:
        ``{"ari": mean pairwise ARI, "nmi": mean pairwise NMI}``.
    """
    if len(embeddings) < 2:
        raise ValueError("cluster agreement needs at least two embeddings")
    labels = [kmeans_labels(z, n_clusters, seed) for z in embeddings]
    pairs = list(combinations(labels, 2))
    return {
        "ari": float(np.mean([adjusted_rand_score(a, b) for a, b in pairs])),
        "nmi": float(np.mean([normalized_mutual_info_score(a, b) for a, b in pairs])),
    }


def embedding_drift(snapshots: Sequence[Any]) -> dict[str, np.ndarray]:
    """How much the embedding of fixed probe samples changes from one epoch to the next.

    For consecutive snapshots Z_e, Z_{e+1} (same samples, same model, epochs e and e+1):

    - ``"cka_drift"``: 1 − CKA(Z_e, Z_{e+1}) — change of geometry, blind to rotation/scale;
    - ``"relative_change"``: ‖Z_{e+1} − Z_e‖_F / ‖Z_e‖_F — change of the coordinates a
      downstream user has stored (0 when nothing moved).

    Args:
        snapshots: E ≥ 2 arrays ``(n, E)``, in epoch order.

    Returns:
        Both quantities as arrays of length E − 1 (dimensionless).
    """
    if len(snapshots) < 2:
        raise ValueError("drift needs at least two snapshots")
    zs = [as_samples(z) for z in snapshots]
    cka = [1.0 - linear_cka(a, b) for a, b in pairwise(zs)]
    rel = [np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-12) for a, b in pairwise(zs)]
    return {"cka_drift": np.asarray(cka), "relative_change": np.asarray(rel)}
