"""Fixed seasonal positional encoding from real, calendar-aware time stamps.

Part of the subspace head of FAConvLSTM ("FAConvLSTM: Factorized-Attention ConvLSTM for
Efficient Feature Extraction in Multivariate Climate Data", arXiv 2601.10914); this project's
reading is in docs/design.md §2.3. The index part is the sinusoidal encoding of Vaswani et al.,
"Attention Is All You Need" (NeurIPS 2017); the seasonal part replaces a learned or
index-only position by the annual phase of each step's time stamp, so the temporal
attention knows *when in the year* a step is, whatever the window's start date.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from faconvlstm.data.time import annual_phase

__all__ = ["SeasonalPositionalEncoding"]


class SeasonalPositionalEncoding(nn.Module):
    r"""Fixed (non-trainable) seasonal + step-index encoding of a sequence of time stamps.

    For step ``t`` (0-based index within the window, plus ``offset``) with annual phase
    :math:`\varphi_t = (\text{day\_of\_year} − 1 + \text{fraction\_of\_day}) /
    \text{days\_in\_year}` (calendar aware, :func:`faconvlstm.data.time.annual_phase`:
    proleptic Gregorian for datetime64/pandas stamps, the stamp's own calendar for cftime —
    ``standard``, ``noleap``, ``360_day`` …), the encoding is the concatenation

    .. math::
        \mathrm{PE}_t = \big[\sin 2\pi k\varphi_t,\ \cos 2\pi k\varphi_t\big]_{k=1..K}
        \ \Vert\ \big[\sin \omega_i t,\ \cos \omega_i t\big]_{i=0..\lceil D/2\rceil-1},
        \qquad \omega_i = P^{-2i/D},

    i.e. channels ``2(k−1), 2(k−1)+1`` hold harmonic ``k`` of the annual cycle and the last
    ``D = embed_dim − 2K`` channels hold the sinusoidal index encoding (truncated to ``D``
    when ``D`` is odd). There are no parameters: the frequencies are non-persistent buffers
    and the output never requires grad. Without time stamps the seasonal channels are zero
    and only the index encoding remains, in the same channels, so one model can be run with
    or without time stamps. 1 January 00:00 is φ = 0, so 31 December and 1 January are
    neighbours; the same calendar date has the same encoding in years of equal length
    (after February a leap year shifts φ by less than 1/365).

    Args:
        embed_dim: E, width of the encoding (the embedding width it is added to).
        harmonics: K, number of annual harmonics; ``2K ≤ embed_dim``.
        max_period: P, longest wavelength of the index encoding, in steps.

    Inputs: ``times=None, *, length=None, offset=0``
        - **times**: time stamps of shape ``(T,)`` or ``(B, T)`` — numpy ``datetime64``,
          pandas, xarray, ``cftime`` objects — or a floating tensor/array of phases φ of that
          shape (what survives a ``DataLoader``; dataset items carry it as ``"phase"``).
        - **length**: T, required when ``times`` is None.
        - **offset**: index of the first step (e.g. T for the steps after a window).

    Outputs: ``(T, E)`` or ``(B, T, E)`` float32 on the module's device.
    """

    def __init__(self, embed_dim: int, harmonics: int = 4, max_period: float = 10000.0) -> None:
        super().__init__()
        if embed_dim < 1 or harmonics < 0 or 2 * harmonics > embed_dim:
            raise ValueError(
                f"need embed_dim ≥ 1 and 0 ≤ 2*harmonics ≤ embed_dim, got {embed_dim=}, "
                f"{harmonics=}"
            )
        self.embed_dim = embed_dim
        self.harmonics = harmonics
        self.max_period = max_period
        index_dim = embed_dim - 2 * harmonics
        n_freq = (index_dim + 1) // 2
        self.register_buffer(
            "harmonic", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "index_freq",
            max_period ** (-2.0 * torch.arange(n_freq, dtype=torch.float32) / max(index_dim, 1)),
            persistent=False,
        )

    def phase(self, times: Any) -> torch.Tensor:
        """Annual phase φ of ``times`` as a float32 tensor on the module's device."""
        device = self.harmonic.device
        if isinstance(times, torch.Tensor):
            if not times.is_floating_point():
                raise TypeError("a tensor of times must hold float phases φ in [0, 1)")
            return times.detach().to(device=device, dtype=torch.float32)
        arr = np.asarray(getattr(times, "values", times))
        phase = arr if arr.dtype.kind == "f" else annual_phase(arr).reshape(arr.shape)
        return torch.as_tensor(np.asarray(phase, dtype=np.float32), device=device)

    def forward(
        self, times: Any = None, *, length: int | None = None, offset: int = 0
    ) -> torch.Tensor:
        """Encode ``times`` (or ``length`` steps without time stamps); see the class doc."""
        phase = None if times is None else self.phase(times)
        if phase is not None:
            if phase.ndim not in (1, 2):
                raise ValueError(f"times must have shape (T,) or (B, T), got {tuple(phase.shape)}")
            if length is not None and length != phase.shape[-1]:
                raise ValueError(f"length={length} but times has {phase.shape[-1]} steps")
            length = phase.shape[-1]
        elif length is None:
            raise ValueError("pass times or length")
        step = torch.arange(offset, offset + length, device=self.harmonic.device).float()
        angle = step[:, None] * self.index_freq
        index = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)
        index = index[:, : self.embed_dim - 2 * self.harmonics]
        if phase is None:
            seasonal = index.new_zeros(length, 2 * self.harmonics)
        else:
            angle = 2 * math.pi * phase[..., None] * self.harmonic
            seasonal = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)
            index = index.expand(*seasonal.shape[:-1], index.shape[-1])
        return torch.cat([seasonal, index], dim=-1)

    def extra_repr(self) -> str:
        return f"{self.embed_dim}, harmonics={self.harmonics}, max_period={self.max_period:g}"
