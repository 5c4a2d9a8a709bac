"""The protocol scores a jointly clustered model's own clusters (issue 14), k-means otherwise."""

from types import SimpleNamespace

import numpy as np
import torch

from faconvlstm.evaluation.stability import kmeans_labels
from faconvlstm.models import SequenceAutoencoder
from faconvlstm.protocol.measure import regime_labels
from faconvlstm.protocol.subjects import LearnedSubject

SMALL = {"filters": (4,), "embed_dim": 8, "head_kwargs": {"channels": 4}}


def _case(n_clusters, init=True):
    torch.manual_seed(0)
    model = SequenceAutoencoder(2, n_clusters=n_clusters, **SMALL)
    g = torch.Generator().manual_seed(1)
    data = SimpleNamespace(x=torch.randn(3, 4, 2, 8, 16, generator=g), phase=torch.rand(3, 4))
    subject = LearnedSubject(model, data)
    z = subject.embed(data.x)
    if init and n_clusters:
        # centroids spread over the embeddings so that several clusters are used
        model.clustering.init_centroids(torch.as_tensor(z), seed=0, n_init=4)
    return subject, data, z


def test_a_clustered_model_is_scored_on_its_own_clusters():
    subject, data, z = _case(3)
    labels = regime_labels(subject, z, data, k=3, seed=0)
    with torch.no_grad():
        q = subject.model(data.x, times=data.phase)["cluster_probs"]
    np.testing.assert_array_equal(labels, q.reshape(-1, 3).argmax(-1).numpy())
    assert labels.shape == (12,)


def test_kmeans_otherwise():
    for subject, data, z in (_case(None), _case(3, init=False), _case(4)):
        np.testing.assert_array_equal(
            regime_labels(subject, z, data, k=3, seed=0), kmeans_labels(z, 3, 0)
        )
    eof_like = SimpleNamespace()  # no cluster_labels method
    _, data, z = _case(None)
    np.testing.assert_array_equal(regime_labels(eof_like, z, data, 3, 0), kmeans_labels(z, 3, 0))
