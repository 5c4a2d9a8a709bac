"""SubspaceHead(norm=...): LayerNorm forgets each step's amplitude; batch / none keep it."""

import pytest
import torch

from faconvlstm.heads import SubspaceHead


def _head(norm: str) -> SubspaceHead:
    torch.manual_seed(0)
    head = SubspaceHead(8, embed_dim=8, num_heads=2, pool_size=(2, 4), norm=norm)
    return head.eval()


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_amplitude_is_kept_unless_layer_norm(norm):
    head = _head(norm)
    if norm == "batch":  # running statistics from a batch of mixed amplitudes
        head.train()
        with torch.no_grad():
            head(torch.randn(16, 5, 8, 4, 8) * torch.rand(16, 1, 1, 1, 1) * 30)
        head.eval()
    h = 10 * torch.randn(3, 5, 8, 4, 8)  # pooled variance >> LayerNorm's eps
    with torch.no_grad():
        z1, z3 = head(h), head(3 * h)
    # conv and projection biases start at zero, so the pooled projection is exactly linear
    # in h: LayerNorm maps h and 3h to the same embedding (up to its eps = 1e-5, which
    # moves z by < 1e-4 at this variance); the others move it by O(1)
    same = torch.allclose(z1, z3, atol=1e-3)
    assert same == (norm == "layer")


def test_default_is_layer_norm_with_todays_parameters():
    head = SubspaceHead(8, embed_dim=8, num_heads=2)
    assert head.norm_kind == "layer"
    assert isinstance(head.norm, torch.nn.LayerNorm)
    assert isinstance(head.out_norm, torch.nn.LayerNorm)
    assert {"norm.weight", "norm.bias", "out_norm.weight", "out_norm.bias"} <= set(
        head.state_dict()
    )


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="norm must be one of layer, batch, none"):
        SubspaceHead(8, embed_dim=8, num_heads=2, norm="group")
