"""SubspaceHead: shapes, causality, masking, pooling-first equivalence, penalty, AMP."""

import numpy as np
import pytest
import torch
from torch import nn

from faconvlstm.heads import SubspaceHead
from faconvlstm.losses import orthogonality_penalty


@pytest.fixture
def h_seq():
    torch.manual_seed(0)
    return torch.randn(2, 6, 8, 8, 16)


def test_output_shape_and_attention_weights(h_seq):
    head = SubspaceHead(8, embed_dim=16, num_heads=4).eval()
    z, attn = head(h_seq, return_attention=True)
    assert z.shape == (2, 6, 16)
    assert attn.shape == (2, 4, 6, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, 6))
    torch.testing.assert_close(head(h_seq), z)


def test_runs_at_any_grid_size():
    head = SubspaceHead(4, embed_dim=8, num_heads=2)
    n_params = sum(p.numel() for p in head.parameters())
    for hw in [(3, 5), (8, 16), (33, 64)]:
        assert head(torch.randn(1, 3, 4, *hw)).shape == (1, 3, 8)
    assert sum(p.numel() for p in head.parameters()) == n_params


def test_causal_head_cannot_see_the_future(h_seq):
    head = SubspaceHead(8, embed_dim=16, causal=True).eval()
    z = head(h_seq)
    for t in range(5):
        perturbed = h_seq.clone()
        perturbed[:, t + 1 :] += 3.0 * torch.randn_like(perturbed[:, t + 1 :])
        z_p = head(perturbed)
        torch.testing.assert_close(z_p[:, : t + 1], z[:, : t + 1])
        assert (z_p[:, t + 1] - z[:, t + 1]).abs().max() > 1e-3
    _, attn = head(h_seq, return_attention=True)
    assert torch.count_nonzero(attn.triu(1)) == 0


def test_bidirectional_head_sees_the_future(h_seq):
    head = SubspaceHead(8, embed_dim=16).eval()
    perturbed = h_seq.clone()
    perturbed[:, -1] += 3.0
    assert (head(perturbed)[:, 0] - head(h_seq)[:, 0]).abs().max() > 1e-3


def test_masked_steps_are_not_attended_to(h_seq):
    head = SubspaceHead(8, embed_dim=16).eval()
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[0, 3:] = False
    z = head(h_seq, mask=mask)
    perturbed = h_seq.clone()
    perturbed[0, 3:] += 5.0
    z_p, attn = head(perturbed, mask=mask, return_attention=True)
    torch.testing.assert_close(z_p[0, :3], z[0, :3])
    assert torch.count_nonzero(attn[0, :, :3, 3:]) == 0
    assert torch.isfinite(z_p).all()


def test_pooling_before_the_1x1_conv_equals_conv_then_pool(h_seq):
    """The docstring's claim: Pool∘Conv1×1 = Conv1×1∘Pool (both linear), so pooling first."""
    head = SubspaceHead(8, embed_dim=16).eval()
    frames = h_seq.flatten(0, 1)
    conv_first = head.pool(head.conv(frames)).flatten(1)
    expected = head.norm(head.proj(conv_first)).view(2, 6, 16)
    torch.testing.assert_close(head.project(h_seq), expected, atol=1e-5, rtol=1e-5)


def test_pooled_grid_keeps_where_a_pattern_sits():
    head = SubspaceHead(1, embed_dim=16).eval()
    west, east = torch.zeros(2, 1, 1, 1, 8, 16)
    west[..., :, :4] = 1.0
    east[..., :, 12:] = 1.0
    e_west, e_east = head.project(west), head.project(east)
    assert (e_west - e_east).abs().max() > 0.1


def test_seasonal_encoding_changes_embeddings_but_not_parameters(h_seq):
    head = SubspaceHead(8, embed_dim=16).eval()
    winter = np.array([f"2021-01-{d:02d}" for d in range(1, 7)], dtype="datetime64[D]")
    summer = np.array([f"2021-07-{d:02d}" for d in range(1, 7)], dtype="datetime64[D]")
    assert (head(h_seq, times=winter) - head(h_seq, times=summer)).abs().max() > 1e-2
    phases = torch.tensor([(d - 1) / 365 for d in range(1, 7)]).expand(2, 6)
    torch.testing.assert_close(head(h_seq, times=winter), head(h_seq, times=phases))


def test_gradients_flow_to_every_parameter_and_the_input(h_seq):
    head = SubspaceHead(8, embed_dim=16, causal=True, orthogonality_weight=0.1)
    x = h_seq.requires_grad_(True)
    loss = head(x, times=torch.rand(2, 6)).square().mean() + head.regularization_loss()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_regularization_loss_is_weighted_orthogonality_penalty():
    head = SubspaceHead(8, embed_dim=16, orthogonality_weight=0.5)
    torch.testing.assert_close(
        head.regularization_loss(), 0.5 * orthogonality_penalty(head.proj.weight)
    )
    assert head.regularization_loss() > 0
    nn.init.orthogonal_(head.proj.weight)
    assert head.regularization_loss() < 1e-4
    assert SubspaceHead(8, embed_dim=16).regularization_loss() == 0


def test_runs_under_cpu_autocast(h_seq):
    head = SubspaceHead(8, embed_dim=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = head(h_seq, times=torch.rand(6))
    assert z.shape == (2, 6, 16) and torch.isfinite(z).all()
    z.float().mean().backward()
