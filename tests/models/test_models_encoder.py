"""Encoder: the drop-in cell switch, shapes, causality, masking, any grid, config, AMP."""

import json

import numpy as np
import pytest
import torch

from faconvlstm import ConvLSTM2D, FAConvLSTM2D
from faconvlstm.models import Encoder

SMALL = {"filters": (8, 8), "embed_dim": 16, "head_kwargs": {"channels": 4}}


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(2, 5, 3, 8, 16)


@pytest.mark.parametrize(("cell", "cls"), [("fa", FAConvLSTM2D), ("convlstm", ConvLSTM2D)])
def test_cell_argument_swaps_only_the_recurrent_layers(x, cell, cls):
    torch.manual_seed(0)
    enc = Encoder(3, cell=cell, downsample=2, **SMALL)
    assert all(type(layer) is cls for layer in enc.layers)
    out = enc(x, return_attention=True)
    assert out["hidden"].shape == (2, 5, 8, 4, 8)
    assert out["embeddings"].shape == (2, 5, 16)
    assert out["temporal_attention"].shape == (2, 4, 5, 5)
    assert [tuple(h.shape) for h, _ in out["states"]] == [(2, 8, 8, 16), (2, 8, 4, 8)]
    assert [tuple(c.shape) for _, c in out["states"]] == [(2, 8, 8, 16), (2, 8, 4, 8)]
    torch.testing.assert_close(out["states"][-1][0], out["hidden"][:, -1])
    other = Encoder(3, cell="convlstm" if cell == "fa" else "fa", downsample=2, **SMALL)
    head_params = [p.shape for p in enc.head.parameters()]
    assert head_params == [p.shape for p in other.head.parameters()]


def test_unknown_cell_and_bad_downsample_raise():
    with pytest.raises(ValueError, match="cell must be one of"):
        Encoder(3, cell="lstm")
    with pytest.raises(ValueError, match="downsample"):
        Encoder(3, filters=(8, 8, 8), downsample=(2,))


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_causal_encoder_cannot_see_the_future(x, cell):
    torch.manual_seed(0)
    enc = Encoder(3, cell=cell, head_kwargs={"causal": True, "channels": 4}, filters=(8,))
    enc.eval()
    z = enc(x)["embeddings"]
    t = 2
    perturbed = x.clone()
    perturbed[:, t + 1] += 2.0 * torch.randn_like(perturbed[:, t + 1])
    z_p = enc(perturbed)["embeddings"]
    torch.testing.assert_close(z_p[:, : t + 1], z[:, : t + 1])
    assert (z_p[:, t + 1 :] - z[:, t + 1 :]).abs().max() > 1e-3


def test_runs_at_any_grid_size_with_the_same_parameters():
    enc = Encoder(3, cell="fa", downsample=2, **SMALL)
    n_params = sum(p.numel() for p in enc.parameters())
    for hw in [(8, 16), (11, 20), (32, 64)]:
        out = enc(torch.randn(1, 3, 3, *hw))
        assert out["embeddings"].shape == (1, 3, 16)
        assert out["hidden"].shape[-2:] == ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
    assert sum(p.numel() for p in enc.parameters()) == n_params


def test_nan_cells_read_as_zero_and_cell_mask_equals_nan(x):
    enc = Encoder(3, cell="fa", **SMALL).eval()
    land = torch.zeros(1, 8, 16, dtype=torch.bool)
    land[:, 2:5, 4:9] = True
    with_nan = x.masked_fill(land, float("nan"))
    zeroed = x.masked_fill(land, 0.0)
    z_nan = enc(with_nan)["embeddings"]
    assert torch.isfinite(z_nan).all()
    torch.testing.assert_close(z_nan, enc(zeroed)["embeddings"])
    torch.testing.assert_close(enc(x, mask=~land)["embeddings"], z_nan)


def test_time_mask_hides_invalid_steps(x):
    enc = Encoder(3, cell="convlstm", **SMALL).eval()
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[:, 1] = False
    z = enc(x, mask=mask)["embeddings"]
    perturbed = x.clone()
    perturbed[:, 1] += 5.0
    torch.testing.assert_close(enc(perturbed, mask=mask)["embeddings"], z)
    with pytest.raises(ValueError, match="time mask"):
        enc(x, mask=torch.ones(8, 16, dtype=torch.bool))


def test_times_reach_the_embeddings(x):
    enc = Encoder(3, cell="fa", **SMALL).eval()
    jan = np.array([f"2020-01-{d:02d}" for d in range(1, 6)], dtype="datetime64[D]")
    jul = np.array([f"2020-07-{d:02d}" for d in range(1, 6)], dtype="datetime64[D]")
    assert (enc(x, times=jan)["embeddings"] - enc(x, times=jul)["embeddings"]).abs().max() > 1e-2


def test_config_round_trip_through_json(x):
    enc = Encoder(
        3,
        filters=(8, 4),
        cell="fa",
        downsample=2,
        embed_dim=8,
        boundary="periodic_lon",
        layer_kwargs={"dilation_rates": (1, 2), "attention_every": 2},
        head_kwargs={"pool_size": (2, 4), "num_heads": 2, "orthogonality_weight": 0.1},
    ).eval()
    cfg = json.loads(json.dumps(enc.get_config()))
    clone = Encoder.from_config(cfg).eval()
    clone.load_state_dict(enc.state_dict())
    torch.testing.assert_close(clone(x)["embeddings"], enc(x)["embeddings"])
    assert clone.regularization_loss() == enc.regularization_loss() > 0


def test_gradients_reach_every_parameter(x):
    enc = Encoder(3, cell="fa", downsample=2, **SMALL)
    out = enc(x, times=torch.rand(2, 5))
    (out["embeddings"].square().mean() + out["hidden"].mean()).backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_runs_under_cpu_autocast(x, cell):
    enc = Encoder(3, cell=cell, downsample=2, **SMALL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x, times=torch.rand(5))
    assert torch.isfinite(out["embeddings"]).all()
    out["embeddings"].float().mean().backward()
