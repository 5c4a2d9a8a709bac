"""SequenceAutoencoder(n_clusters=k): the joint clustering switch of the model."""

import json

import torch

from faconvlstm.models import SequenceAutoencoder

SMALL = {"filters": (4,), "embed_dim": 8, "head_kwargs": {"channels": 4}}


def test_without_n_clusters_the_model_is_todays():
    torch.manual_seed(0)
    plain = SequenceAutoencoder(2, **SMALL)
    torch.manual_seed(0)
    clustered = SequenceAutoencoder(2, n_clusters=3, **SMALL)
    assert plain.clustering is None
    assert "n_clusters" not in plain.get_config()  # checkpoints of plain models unchanged
    assert not any(k.startswith("clustering") for k in plain.state_dict())
    # the head is built last: every other parameter is drawn identically
    cstate = clustered.state_dict()
    for name, value in plain.state_dict().items():
        assert torch.equal(cstate[name], value), name
    x = torch.randn(1, 3, 2, 8, 16, generator=torch.Generator().manual_seed(1))
    out_plain, out_clustered = plain.eval()(x), clustered.eval()(x)
    assert "cluster_probs" not in out_plain
    torch.testing.assert_close(out_clustered["recon"], out_plain["recon"], rtol=0, atol=0)


def test_cluster_probs_shape_and_rows_sum_to_one():
    ae = SequenceAutoencoder(2, n_clusters=4, **SMALL)
    with torch.no_grad():
        ae.clustering.centroids.normal_()
    out = ae(torch.randn(2, 5, 2, 8, 16))
    assert out["cluster_probs"].shape == (2, 5, 4)
    # float32 sums of 4 terms
    torch.testing.assert_close(out["cluster_probs"].sum(-1), torch.ones(2, 5), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        out["cluster_probs"], ae.clustering.soft_assign(out["embeddings"]), rtol=0, atol=0
    )


def test_config_and_state_round_trip_keep_the_centroids():
    ae = SequenceAutoencoder(2, n_clusters=3, cluster_alpha=2.0, **SMALL).eval()
    ae.clustering.init_centroids(torch.randn(40, 8, generator=torch.Generator().manual_seed(2)))
    config = json.loads(json.dumps(ae.get_config()))
    assert config["n_clusters"] == 3 and config["cluster_alpha"] == 2.0
    clone = SequenceAutoencoder.from_config(config).eval()
    assert clone.clustering.alpha == 2.0
    clone.load_state_dict(ae.state_dict())
    assert bool(clone.clustering.initialized)
    x = torch.randn(1, 3, 2, 8, 16)
    torch.testing.assert_close(clone(x)["cluster_probs"], ae(x)["cluster_probs"])
