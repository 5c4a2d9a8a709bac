"""Sharded epoch sampling and mid-epoch resumption of the data loader."""

import numpy as np
import pytest
import torch

from faconvlstm.training.sampling import ResumableDataLoader, ShardedSampler


def test_ranks_get_disjoint_equal_shards_covering_the_epoch():
    shards = [list(ShardedSampler(11, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert not set(shards[0]) & set(shards[1])
    assert len(set(shards[0]) | set(shards[1])) == 10


def test_evaluation_shards_cover_every_sample():
    shards = [
        list(ShardedSampler(11, shuffle=False, rank=r, world_size=2, drop_remainder=False))
        for r in range(2)
    ]
    assert set(shards[0]) | set(shards[1]) == set(range(11))


def test_order_depends_on_seed_and_epoch_only():
    a, b = ShardedSampler(20, seed=1), ShardedSampler(20, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(ShardedSampler(20, seed=2)) != list(a)


def test_rank_outside_world_is_rejected():
    with pytest.raises(ValueError, match="rank 2"):
        ShardedSampler(4, rank=2, world_size=2)


def _loader(n=10, batch=3):
    data = torch.arange(n)
    return ResumableDataLoader(data, ShardedSampler(n, seed=0), batch_size=batch)


def test_loader_resumes_after_the_batches_already_served():
    full = _loader()
    full.sampler.set_epoch(2)
    expected = [b.tolist() for b in full]

    first = _loader()
    first.sampler.set_epoch(2)
    it = iter(first)
    seen = [next(it).tolist(), next(it).tolist()]
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 2}

    resumed = _loader()
    resumed.load_state_dict(state)
    assert seen + [b.tolist() for b in resumed] == expected
    assert resumed.state_dict()["batches"] == len(expected)
    # the following epoch starts from its beginning again
    resumed.sampler.set_epoch(3)
    assert len(list(resumed)) == len(expected)


def test_state_saved_after_the_last_batch_resumes_at_the_next_epoch():
    loader = _loader()
    loader.load_state_dict({"epoch": 0, "batches": len(loader)})
    ref = _loader()
    ref.sampler.set_epoch(1)
    assert [b.tolist() for b in loader] == [b.tolist() for b in ref]
    assert np.all(loader.sampler.epoch == 1)
