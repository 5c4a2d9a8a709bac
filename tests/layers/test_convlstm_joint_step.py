"""ConvLSTM2D's joint step: one convolution of [x_t, h_{t-1}] with [W, U] per step."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from faconvlstm import ConvLSTM2D

B, T, C, H, W, F = 2, 5, 3, 8, 12, 6


class _Separate(ConvLSTM2D):
    """The same layer forced onto the separate path (all input convolutions at once)."""

    @property
    def joint_step(self) -> bool:
        return False


def _pair(**kw):
    torch.manual_seed(0)
    joint = ConvLSTM2D(F, 3, padding="same", in_channels=C, return_sequences=True, **kw)
    separate = _Separate(F, 3, padding="same", in_channels=C, return_sequences=True, **kw)
    separate.load_state_dict(joint.state_dict())
    return joint, separate


@pytest.mark.parametrize("boundary", ["zeros", "periodic_lon"])
def test_joint_step_equals_the_separate_convolutions(boundary):
    joint, separate = _pair(boundary=boundary)
    assert joint.joint_step and not separate.joint_step
    x = torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(1))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = joint(xa), separate(xb)
    # float32: the joint convolution sums the same C·9 + F·9 products in another order
    torch.testing.assert_close(ya, yb, atol=1e-6, rtol=0)
    ya.square().sum().backward()
    yb.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=0)
    for (name, pa), pb in zip(joint.named_parameters(), separate.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-4, rtol=1e-5, msg=name)


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, True),
        ({"strides": 2}, False),
        ({"dilation_rate": 2}, False),
        ({"padding": "valid"}, False),
        ({"dropout": 0.1}, False),
        ({"recurrent_dropout": 0.1}, False),
    ],
)
def test_joint_step_applies_only_where_both_convolutions_see_the_same_grid(kw, expected):
    kw = {"padding": "same", **kw}
    assert ConvLSTM2D(F, 3, in_channels=C, **kw).joint_step is expected


class _LargestTensor(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


def test_a_training_step_never_holds_all_steps_gate_maps_in_one_tensor():
    # the separate path wrote W ⋆ x_t for every step into one (T, B, 4F, H, W) tensor
    # (and its gradient): 400 MB at 64×128, F = 64, T = 12, B = 4
    layer = ConvLSTM2D(F, 3, padding="same", in_channels=C, return_sequences=True)
    x = torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(1))
    largest = _LargestTensor()
    with largest:
        layer(x).square().sum().backward()
    all_gates = T * B * 4 * F * H * W
    assert largest.numel < all_gates
    assert largest.numel >= T * B * F * H * W  # the stacked output sequence is seen
