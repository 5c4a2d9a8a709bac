"""Is our ConvLSTM2D a fair baseline? Side by side with the PyTorch ConvLSTM users know.

Times one forward + backward (loss = sum of the output sequence) of three ConvLSTMs with
the same weights and input, interleaved, minimum of ``--repeats``:

* ``ndrplz``: the cell of ndrplz/ConvLSTM_pytorch (one ``nn.Conv2d`` over the stacked
  [x_t, h_{t-1}] per step, gates chunked from its 4F outputs), the ConvLSTM most PyTorch
  users compare against;
* ``ours``: :class:`faconvlstm.ConvLSTM2D` as shipped (its joint step, the same
  convolution, ``ConvLSTM2D.joint_step``);
* ``ours_separate``: ConvLSTM2D forced onto its separate form (all T input convolutions
  W ⋆ x_t at once into one (T, B, 4F, H, W) tensor, then U ⋆ h_{t-1} per step), the form
  it uses for strides, dilation or dropout.

The three compute the same function; the script checks the outputs agree (to float32
rounding) before it times anything. A ratio ``ours / ndrplz`` near 1 means FA's speed
ratios (``layer_cost.py``) are measured against a baseline as fast as the usual one.

    python benchmarks/convlstm_baseline.py                       # 64x128, F 64, C 8, B 4, T 12
    python benchmarks/convlstm_baseline.py --grid 16x32 --filters 16 --in-channels 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from faconvlstm import ConvLSTM2D


class NdrplzCell(nn.Module):
    """ndrplz/ConvLSTM_pytorch's cell and its loop, zero initial state, "same" padding."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int):
        super().__init__()
        self.filters = filters
        self.conv = nn.Conv2d(
            in_channels + filters, 4 * filters, kernel_size, padding=kernel_size // 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C, H, W) → (B, T, F, H, W)."""
        b, steps, _, height, width = x.shape
        h = x.new_zeros(b, self.filters, height, width)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            z = self.conv(torch.cat([x[:, t], h], dim=1))
            i, f, g, o = z.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class SeparateConvLSTM2D(ConvLSTM2D):
    """ConvLSTM2D on its separate form (what strides, dilation or dropout use)."""

    @property
    def joint_step(self) -> bool:
        return False


def build(in_channels: int, filters: int, kernel_size: int) -> dict[str, nn.Module]:
    """The three layers with equal weights (ours' kernel and bias copied into ndrplz's)."""
    torch.manual_seed(0)
    kw = dict(padding="same", return_sequences=True, in_channels=in_channels)
    ours = ConvLSTM2D(filters, kernel_size, **kw)
    separate = SeparateConvLSTM2D(filters, kernel_size, **kw)
    separate.load_state_dict(ours.state_dict())
    ndrplz = NdrplzCell(in_channels, filters, kernel_size)
    with torch.no_grad():
        ndrplz.conv.weight.copy_(torch.cat([ours.kernel, ours.recurrent_kernel], dim=1))
        ndrplz.conv.bias.copy_(ours.bias)
    return {"ndrplz": ndrplz, "ours": ours, "ours_separate": separate}


def _fwd_bwd(layer: nn.Module, x: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        layer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        layer(x).sum().backward()
        return time.perf_counter() - start

    return run


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Milliseconds of forward + backward per layer (min of interleaved repeats)."""
    height, width = args.grid
    layers = build(args.in_channels, args.filters, args.kernel_size)
    x = torch.randn(
        args.batch,
        args.steps,
        args.in_channels,
        height,
        width,
        generator=torch.Generator().manual_seed(1),
    )
    with torch.no_grad():
        ref = layers["ndrplz"](x)
        for name in ("ours", "ours_separate"):
            torch.testing.assert_close(layers[name](x), ref, atol=1e-5, rtol=0, msg=name)
    runs = {name: _fwd_bwd(layer, x) for name, layer in layers.items()}
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(run())
    return {name: 1e3 * min(t) for name, t in times.items()}


def _grid(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grid", type=_grid, default=(64, 128), help="HxW")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--in-channels", type=int, default=8)
    p.add_argument("--kernel-size", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: PyTorch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ms = measure(args)
    h, w = args.grid
    print(
        f"# {h}x{w} F={args.filters} C={args.in_channels} k={args.kernel_size} "
        f"B={args.batch} T={args.steps} threads={torch.get_num_threads()} "
        f"torch={torch.__version__}"
    )
    print("| layer | fwd+bwd ms | / ndrplz |")
    print("|---|---:|---:|")
    for name, value in ms.items():
        print(f"| {name} | {value:.0f} | {value / ms['ndrplz']:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
