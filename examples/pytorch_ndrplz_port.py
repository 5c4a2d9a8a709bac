"""An ndrplz-style multi-layer ConvLSTM, rewritten with ``RecurrentStack`` and our layers.

The widely copied ConvLSTM_pytorch (ndrplz) builds a model as
``ConvLSTM(input_dim, hidden_dim, kernel_size, num_layers, batch_first, bias,
return_all_layers)`` and returns ``(layer_output_list, last_state_list)``. The same model
here is a list of layers in a :class:`~faconvlstm.RecurrentStack`::

    hidden_dim=[16, 16], kernel_size=(3, 3), num_layers=2, batch_first=True, bias=True
    ->  RecurrentStack([ConvLSTM2D(16, 3, padding="same", in_channels=3),
                        ConvLSTM2D(16, 3, padding="same", in_channels=16)])
    layer_output_list[-1], last_state_list[-1]   ->   sequence, states[-1]

``padding="same"`` is what ndrplz's ``kernel_size // 2`` padding gives for odd kernels, and
``batch_first=True`` is our only layout ((B, T, C, H, W)). Swapping ``ConvLSTM2D`` for
``FAConvLSTM2D`` (``--cell fa``) is the one-line change to the factorized-attention cell.

The script (1) checks that a checkpoint of the ndrplz kind of cell (one convolution over
``[x_t, h_{t-1}]`` with gates in the order i, f, o, g) loads into ``ConvLSTM2D`` exactly,
and (2) trains a two-layer next-frame predictor for a few steps on the synthetic climate
(:func:`faconvlstm.data.synthetic`). Run::

    python examples/pytorch_ndrplz_port.py            # ConvLSTM2D
    python examples/pytorch_ndrplz_port.py --cell fa  # FAConvLSTM2D
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from faconvlstm import ConvLSTM2D, RecurrentStack
from faconvlstm.data import synthetic
from faconvlstm.layers.registry import cell_class


def concat_conv_to_convlstm(
    weight: torch.Tensor, bias: torch.Tensor | None, in_channels: int
) -> dict[str, torch.Tensor]:
    """A ``ConvLSTM2D`` state dict from one convolution over the concatenation [x, h].

    ``weight`` (4F, C + F, kh, kw) has its 4F output channels in gate order i, f, o, g (the
    ndrplz cell's); ``ConvLSTM2D`` keeps separate input and recurrent kernels in the order
    i, f, c, o (Keras'), so the channels [x, h] are split and the last two gates swapped.
    """
    i, f, o, g = weight.chunk(4, dim=0)
    reordered = torch.cat([i, f, g, o], dim=0)
    state = {
        "kernel": reordered[:, :in_channels],
        "recurrent_kernel": reordered[:, in_channels:],
    }
    if bias is not None:
        bi, bf, bo, bg = bias.chunk(4)
        state["bias"] = torch.cat([bi, bf, bg, bo])
    return state


def concat_conv_step(conv: nn.Conv2d, x, h, c):
    """One step of the concatenated-convolution cell (gate order i, f, o, g)."""
    zi, zf, zo, zg = conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
    c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
    return torch.sigmoid(zo) * torch.tanh(c), c


def check_weight_port(seed: int = 0) -> float:
    """Max |difference| between a concatenated-conv cell and ConvLSTM2D with its weights."""
    torch.manual_seed(seed)
    channels, hidden, steps = 3, 8, 5
    conv = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)
    x = torch.randn(2, steps, channels, 12, 16)
    h = c = torch.zeros(2, hidden, 12, 16)
    outputs = []
    for t in range(steps):
        h, c = concat_conv_step(conv, x[:, t], h, c)
        outputs.append(h)
    layer = ConvLSTM2D(hidden, 3, padding="same", return_sequences=True, in_channels=channels)
    layer.load_state_dict(concat_conv_to_convlstm(conv.weight, conv.bias, channels))
    with torch.no_grad():
        return float((layer(x) - torch.stack(outputs, dim=1)).abs().max())


def climate_windows(steps: int, seed: int) -> torch.Tensor:
    """Normalised windows (N, steps, 3, 16, 32) of the synthetic t2m, z500 and tp."""
    data, _ = synthetic(seed, n_years=1, nlat=16, nlon=32)
    fields = np.stack([data[v].values for v in ("t2m", "z500", "tp")], axis=1)  # (time, C, H, W)
    fields = (fields - fields.mean(axis=(0, 2, 3), keepdims=True)) / fields.std(
        axis=(0, 2, 3), keepdims=True
    )
    n = fields.shape[0] // steps
    return torch.from_numpy(fields[: n * steps].reshape(n, steps, *fields.shape[1:])).float()


class NextFrame(nn.Module):
    """Two recurrent layers and a 1×1 readout: predicts x_{t+1} from h_t of the top layer."""

    def __init__(self, cell: str, channels: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layer = cell_class(cell)
        widths = (channels, *hidden)
        self.stack = RecurrentStack(
            [layer(f, 3, padding="same", in_channels=c) for c, f in zip(widths, hidden)]
        )
        self.readout = nn.Conv2d(hidden[-1], channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, states = self.stack(x)  # ndrplz: layer_output_list[-1], last_state_list
        batch, steps = sequence.shape[:2]
        return self.readout(sequence.flatten(0, 1)).view(batch, steps, *x.shape[2:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("convlstm", "fa"), default="convlstm")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    port_error = check_weight_port()
    print(f"concatenated-conv checkpoint -> ConvLSTM2D: max |difference| {port_error:.1e}")
    # float32 rounding of two different but equal sums of products: a few ulps of O(1)
    assert port_error < 1e-5, port_error

    windows = climate_windows(steps=8, seed=0)
    model = NextFrame(args.cell, channels=3, hidden=(16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(args.steps):
        batch = windows[torch.randint(len(windows), (8,))]
        pred = model(batch[:, :-1])
        loss = nn.functional.mse_loss(pred, batch[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(
        f"{args.cell}: next-frame MSE {losses[0]:.3f} -> {losses[-1]:.3f} "
        f"in {args.steps} steps (variance of the data: 1)"
    )
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < first, (first, last)


if __name__ == "__main__":
    main()
