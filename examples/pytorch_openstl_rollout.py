"""An OpenSTL-style autoregressive rollout with the one-step cells.

OpenSTL's ConvLSTM predicts a video frame by frame: frames are cut into
``patch_size × patch_size`` patches stacked on the channel axis, a stack of ConvLSTM cells
(``num_hidden`` channels each, ``filter_size`` kernels) advances one frame per step, a 1×1
convolution maps the top hidden state to the next (patched) frame (here: to its change
from the current frame, so the untrained model is persistence), and after the context
frames the prediction is fed back as the next input. The same loop here, with
:class:`~faconvlstm.FAConvLSTM2DCell` (or ``ConvLSTM2DCell``)::

    num_hidden=[16, 16], filter_size=3, patch_size=2
    ->  cells = [FAConvLSTM2DCell(16, 3, padding="same", in_channels=C * 2 * 2),
                 FAConvLSTM2DCell(16, 3, padding="same", in_channels=16)]
        patches: torch.nn.functional.pixel_unshuffle(frame, 2), back: pixel_shuffle

A cell's state carries its step count, so the attention schedule of the FA cell continues
through the rollout (a layer called one frame at a time would attend at every frame). The
script checks that the cell loop over the context equals the layer run on the whole
context, then fits the rollout for a few steps to a batch of the synthetic climate
(:func:`faconvlstm.data.synthetic`) and reports its held-out forecast error next to
persistence (the untrained model). Run::

    python examples/pytorch_openstl_rollout.py
    python examples/pytorch_openstl_rollout.py --cell convlstm
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faconvlstm import ConvLSTM2DCell, FAConvLSTM2D, FAConvLSTM2DCell

CELLS = {"fa": FAConvLSTM2DCell, "convlstm": ConvLSTM2DCell}


class Rollout(nn.Module):
    """Patch → stacked cells → 1×1 readout → un-patch, fed back after the context."""

    def __init__(self, cell: str, channels: int, hidden: tuple[int, ...], patch: int) -> None:
        super().__init__()
        self.patch = patch
        widths = (channels * patch * patch, *hidden)
        self.cells = nn.ModuleList(
            CELLS[cell](f, 3, padding="same", boundary="periodic_lon", in_channels=c)
            for c, f in zip(widths, hidden)
        )
        self.readout = nn.Conv2d(hidden[-1], widths[0], 1, bias=False)
        nn.init.zeros_(self.readout.weight)  # starts as persistence, learns the change

    def forward(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """context (B, T0, C, H, W) → forecast (B, horizon, C, H, W) of the next frames."""
        states = [None] * len(self.cells)
        frame = context[:, 0]
        forecast = []
        for t in range(context.shape[1] + horizon - 1):
            # teacher forcing over the context, then the model's own prediction
            frame = context[:, t] if t < context.shape[1] else frame
            z = F.pixel_unshuffle(frame, self.patch)
            for k, cell in enumerate(self.cells):
                z, states[k] = cell(z, states[k])
            frame = frame + F.pixel_shuffle(self.readout(z), self.patch)
            if t >= context.shape[1] - 1:
                forecast.append(frame)
        return torch.stack(forecast, dim=1)


def check_cell_equals_layer(seed: int = 0) -> float:
    """Max |difference| between a cell loop (last=True at the end) and the layer, γ ≠ 0."""
    torch.manual_seed(seed)
    layer = FAConvLSTM2D(8, 3, padding="same", attention_every=2, in_channels=3)
    with torch.no_grad():
        layer.gamma.fill_(0.5)  # switch attention on (it starts at 0)
    x = torch.randn(2, 5, 3, 8, 16)
    cell, state = FAConvLSTM2DCell.from_layer(layer), None
    with torch.no_grad():
        for t in range(x.shape[1]):
            h, state = cell(x[:, t], state, last=t == x.shape[1] - 1)
        return float((h - layer(x)).abs().max())


def climate_windows(steps: int, seed: int) -> torch.Tensor:
    """Normalised windows (N, steps, 3, 16, 32) of the synthetic t2m, z500 and tp."""
    from faconvlstm.data import synthetic

    data, _ = synthetic(seed, n_years=1, nlat=16, nlon=32)
    fields = np.stack([data[v].values for v in ("t2m", "z500", "tp")], axis=1)  # (time, C, H, W)
    fields = (fields - fields.mean(axis=(0, 2, 3), keepdims=True)) / fields.std(
        axis=(0, 2, 3), keepdims=True
    )
    n = fields.shape[0] // steps
    return torch.from_numpy(fields[: n * steps].reshape(n, steps, *fields.shape[1:])).float()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=tuple(CELLS), default="fa")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps")
    args = parser.parse_args(argv)

    error = check_cell_equals_layer()
    print(f"cell loop vs layer on the same frames (attention on): max |difference| {error:.1e}")
    assert error < 1e-6, error  # the same step code on the same numbers: float32 ulps

    torch.manual_seed(0)
    context_len, horizon = 4, 3
    windows = climate_windows(context_len + horizon, seed=0)
    held_out = torch.arange(len(windows)) % 5 == 0  # every 5th window, spread over the year
    train, test = windows[~held_out], windows[held_out]
    model = Rollout(args.cell, channels=3, hidden=(16, 16), patch=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = train[torch.randperm(len(train))[:16]]  # one fixed batch: a short demo fit
    losses = []
    for _ in range(args.steps):
        loss = F.mse_loss(model(batch[:, :context_len], horizon), batch[:, context_len:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        forecast = model(test[:, :context_len], horizon)
    target = test[:, context_len:]
    mse = F.mse_loss(forecast, target).item()
    persistence = F.mse_loss(test[:, context_len - 1 : context_len].expand_as(target), target)
    print(
        f"{args.cell}: training rollout MSE {losses[0]:.3f} -> {losses[-1]:.3f} in "
        f"{args.steps} steps; held-out {horizon}-step rollout MSE {mse:.3f} (untrained = "
        f"persistence {persistence.item():.3f}, climatology 1)"
    )
    assert forecast.shape == target.shape and torch.isfinite(forecast).all()
    # gradients reach the cells through the fed-back frames: the fit improves on its batch
    assert losses[-1] < 0.95 * losses[0], losses


if __name__ == "__main__":
    main()
