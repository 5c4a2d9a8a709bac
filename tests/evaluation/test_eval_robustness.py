"""Robustness: seeded perturbations and the similarity curves of embeddings under them."""

import numpy as np
import pytest
import torch

from faconvlstm.evaluation import (
    add_gaussian_noise,
    block_mask,
    embedding_cosine,
    random_mask,
    robustness_curve,
)


def _inputs(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 8, 2, 32, 32, generator=g)
    x[:, :, 1] *= 10.0  # channel 1 has ten times the spread of channel 0
    return x


def test_noise_is_sigma_times_each_channels_std():
    x = _inputs()
    noise = add_gaussian_noise(x, 0.5, seed=1) - x
    std = noise.transpose(0, 2).reshape(2, -1).std(dim=1)
    # 32768 draws per channel: the sample std is within ~0.4 % (1/√(2n)); 2 % is 5 sd.
    np.testing.assert_allclose(std.numpy(), [0.5, 5.0], rtol=0.02)


def test_noise_is_seeded_keeps_type_and_vanishes_at_zero_sigma():
    x = _inputs()
    assert torch.equal(add_gaussian_noise(x, 0.3, seed=2), add_gaussian_noise(x, 0.3, seed=2))
    assert not torch.equal(add_gaussian_noise(x, 0.3, seed=2), add_gaussian_noise(x, 0.3, seed=3))
    assert torch.equal(add_gaussian_noise(x, 0.0), x)
    out = add_gaussian_noise(x.numpy(), 0.1, channel_std=[1.0, 1.0])
    assert isinstance(out, np.ndarray)
    assert out.shape == x.shape


def test_random_mask_hides_the_requested_share_of_points_across_all_channels():
    x = _inputs()
    masked, hidden = random_mask(x, 0.3, fill=-9.0, seed=0)
    assert hidden.shape == (4, 8, 1, 32, 32)
    # 32768 Bernoulli(0.3) draws: sd of the share 0.0025; 0.01 is 4 sd.
    assert float(hidden.float().mean()) == pytest.approx(0.3, abs=0.01)
    h = hidden.expand_as(x)
    assert torch.all(masked[h] == -9.0)
    assert torch.equal(masked[~h], x[~h])


def test_block_mask_hides_whole_blocks():
    x = _inputs()
    masked, hidden = block_mask(x, 0.25, block=(4, 8), seed=0)
    tiles = hidden.reshape(4, 8, 1, 8, 4, 4, 8)
    # every 4×8 tile is either fully hidden or fully visible
    assert torch.all(tiles.all(dim=(-3, -1)) == tiles.any(dim=(-3, -1)))
    # 2048 tiles: sd of the share ≈ 0.01; 0.04 is 4 sd
    assert float(hidden.float().mean()) == pytest.approx(0.25, abs=0.04)
    assert torch.all(masked[hidden.expand_as(x)] == 0.0)


def test_embedding_cosine_of_same_opposite_and_orthogonal():
    z = np.random.default_rng(0).normal(size=(50, 4))
    assert embedding_cosine(z, 3 * z, center=False) == pytest.approx(1.0)
    assert embedding_cosine(z, -z, center=False) == pytest.approx(-1.0)
    assert embedding_cosine([[1.0, 0.0]], [[0.0, 2.0]], center=False) == pytest.approx(0.0)


def test_centred_cosine_sees_through_a_shared_offset():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 4))
    moved = rng.normal(size=(500, 4))  # unrelated to z
    # a common offset of 100 makes every raw cosine ≈ 1 ...
    assert embedding_cosine(z + 100, moved + 100, center=False) > 0.99
    # ... centred on the clean mean, unrelated embeddings score ≈ 0 (sd ≈ 0.5/√500)
    assert abs(embedding_cosine(z + 100, moved + 100)) < 0.1
    assert embedding_cosine(z + 100, z + 100) == pytest.approx(1.0)


def _regime_inputs():
    """Sequences (1, 60, 1, 8, 8) whose steps sit in one of three well-separated regimes."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    patterns = rng.normal(size=(3, 8, 8)) * 3 + 5
    x = patterns[labels] + 0.1 * rng.normal(size=(60, 8, 8))
    return torch.as_tensor(x[None, :, None], dtype=torch.float32)


def _flat_embed(x):
    return x.reshape(x.shape[1], -1)


def test_robustness_curve_starts_at_one_and_falls_with_noise():
    x = _regime_inputs()
    curve = robustness_curve(_flat_embed, x, [0.0, 0.5, 2.0, 8.0], n_clusters=3)
    cos = curve["cosine"].values
    assert cos[0] == pytest.approx(1.0)
    assert curve["ari"].values[0] == pytest.approx(1.0)
    assert np.all(np.diff(cos) < 0)
    assert curve.attrs["kind"] == "noise"


@pytest.mark.parametrize("kind", ["random_mask", "block_mask"])
def test_robustness_curve_under_masking(kind):
    curve = robustness_curve(_flat_embed, _regime_inputs(), [0.0, 0.2, 0.6], kind=kind)
    cos = curve["cosine"].values
    assert cos[0] == pytest.approx(1.0)
    assert cos[-1] < cos[1] < 1.0


def test_robustness_curve_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind"):
        robustness_curve(_flat_embed, _regime_inputs(), [0.1], kind="blur")
