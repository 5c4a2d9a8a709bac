"""Encoder: a stack of convolutional recurrent layers + the subspace head.

The representation model of FAConvLSTM ("FAConvLSTM: Factorized-Attention ConvLSTM for
Efficient Feature Extraction in Multivariate Climate Data", arXiv 2601.10914; docs/design.md §2.4).
The recurrent layers are either :class:`~faconvlstm.FAConvLSTM2D` or the baseline
:class:`~faconvlstm.ConvLSTM2D`, chosen by one argument with everything else identical —
the drop-in comparison the evaluation protocol runs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from faconvlstm.files import jsonable
from faconvlstm.heads import SubspaceHead
from faconvlstm.layers.recurrent import RecurrentConv2D
from faconvlstm.layers.registry import CELLS, cell_class

__all__ = ["CELLS", "ConfigMixin", "Encoder", "make_layer", "prepare_input"]


def make_layer(
    cell: str,
    in_channels: int,
    filters: int,
    kernel_size: int | Sequence[int],
    boundary: str,
    layer_kwargs: dict[str, Any] | None = None,
) -> RecurrentConv2D:
    """One recurrent layer of kind ``cell`` with "same" padding, returning ``(seq, h, c)``."""
    return cell_class(cell)(
        filters,
        kernel_size,
        padding="same",
        return_sequences=True,
        return_state=True,
        in_channels=in_channels,
        boundary=boundary,
        **(layer_kwargs or {}),
    )


def prepare_input(
    x: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split ``mask`` into a time mask and a cell mask; zero invalid and NaN input cells.

    Args:
        x: ``(B, T, C, H, W)``, normalised (0 = the climatological mean), may hold NaN.
        mask: None; a bool time mask ``(B, T)`` (True = valid step); or a bool cell mask
            with ≥ 3 dims broadcastable to ``x`` (e.g. ``(1, H, W)`` land–sea, or
            ``(B, T, C, H, W)``), True = valid cell.

    Returns:
        ``(x, time_mask)``: ``x`` with NaN and invalid cells set to 0, and the ``(B, T)``
        time mask or None.
    """
    time_mask = None
    invalid = torch.isnan(x)
    if mask is not None:
        mask = mask.to(device=x.device, dtype=torch.bool)
        if mask.ndim == 2:
            if mask.shape != x.shape[:2]:
                raise ValueError(
                    f"a 2-D mask is a time mask of shape (B, T) = {tuple(x.shape[:2])}, got "
                    f"{tuple(mask.shape)}; give a cell mask with its channel axis, e.g. "
                    "mask[None] for an (H, W) land-sea mask"
                )
            time_mask = mask
        else:
            invalid = invalid | ~mask
    return torch.where(invalid, x.new_zeros(()), x), time_mask


_M = TypeVar("_M", bound="ConfigMixin")


class ConfigMixin:
    """``get_config()`` / ``from_config(cfg)`` round trip through the constructor arguments.

    Subclasses store their constructor arguments in ``self._config`` (one dict literal in
    ``__init__``); the config is JSON-serialisable (tuples become lists).
    """

    _config: dict[str, Any]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return jsonable(copy.deepcopy(self._config))

    @classmethod
    def from_config(cls: type[_M], config: dict[str, Any]) -> _M:
        """Build a new (untrained) model from :meth:`get_config`'s output."""
        return cls(**config)


def pool_sequence(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool every frame of ``(B, T, C, H, W)`` by ``factor`` (partial edge windows
    kept, so no row or column is dropped)."""
    b = x.shape[0]
    y = F.avg_pool2d(x.flatten(0, 1), factor, ceil_mode=True)
    return rearrange(y, "(b t) c h w -> b t c h w", b=b)


def resize_sequence(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of every frame of ``(B, T, C, H, W)`` to ``size``."""
    b = x.shape[0]
    y = F.interpolate(x.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
    return rearrange(y, "(b t) c h w -> b t c h w", b=b)


class Encoder(ConfigMixin, nn.Module):
    r"""Recurrent stack + :class:`~faconvlstm.heads.SubspaceHead`.

    .. math::
        h^{(1)} &= \mathrm{RNN}_1(x),\qquad
        h^{(\ell)} = \mathrm{RNN}_\ell(\mathrm{Pool}_{s_{\ell-1}}(h^{(\ell-1)})),\\
        z &= \mathrm{Head}(h^{(L)}, \text{times}),

    where each ``RNN`` is an ``FAConvLSTM2D`` (``cell="fa"``) or ``ConvLSTM2D``
    (``cell="convlstm"``) with "same" padding, and ``Pool_s`` an optional ``s×s`` average
    pooling between layers (parameter-free, so it is identical for both cells). No
    parameter depends on H×W: the model runs at any grid size.

    Args:
        in_channels: C, input channels (variables × levels).
        filters: hidden channels of each recurrent layer, ``(F_1, …, F_L)``.
        kernel_size: spatial kernel of every layer.
        cell: ``"fa"`` or ``"convlstm"``.
        downsample: pooling factor between consecutive layers: None (none), an int for
            every gap, or one int per gap (``L − 1`` values; 1 = none).
        embed_dim: E, embedding width.
        boundary: ``"zeros"`` or ``"periodic_lon"`` (wrap longitude) for every layer.
        layer_kwargs: extra arguments for every recurrent layer (e.g. ``{"bottleneck":
            16}`` for FA, ``{"dropout": 0.1}`` for either).
        head_kwargs: extra arguments for the :class:`~faconvlstm.heads.SubspaceHead`
            (``causal``, ``channels``, ``pool_size``, ``orthogonality_weight`` …).

    Inputs: ``x, times=None, mask=None, return_attention=False``
        - **x**: ``(B, T, C, H, W)``; NaN cells are read as 0 (the normalised mean).
        - **times**: time stamps ``(T,)``/``(B, T)`` or float phases φ, for the seasonal
          encoding (see :class:`~faconvlstm.heads.SeasonalPositionalEncoding`).
        - **mask**: bool time mask ``(B, T)`` (invalid steps carry the state and are not
          attended to) or cell mask with ≥ 3 dims broadcastable to x (invalid cells read
          as 0); True = valid. See :func:`prepare_input`.
        - **return_attention**: add the head's temporal attention weights.

    Outputs: dict with
        - ``"hidden"``: ``(B, T, F_L, H', W')``, last layer's hidden states; each pooling
          gives ``⌈H / s⌉ × ⌈W / s⌉`` (partial edge windows are kept);
        - ``"embeddings"``: ``(B, T, E)``;
        - ``"states"``: list of the last ``(h, c)`` of every layer, ``(B, F_ℓ, H_ℓ, W_ℓ)``;
        - ``"temporal_attention"``: ``(B, heads, T, T)``, only with ``return_attention``.
    """

    def __init__(
        self,
        in_channels: int,
        filters: Sequence[int] = (32, 32),
        kernel_size: int | Sequence[int] = 3,
        cell: str = "fa",
        downsample: int | Sequence[int] | None = None,
        embed_dim: int = 32,
        boundary: str = "zeros",
        layer_kwargs: dict[str, Any] | None = None,
        head_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._config = {
            "in_channels": in_channels,
            "filters": tuple(filters),
            "kernel_size": kernel_size,
            "cell": cell,
            "downsample": downsample,
            "embed_dim": embed_dim,
            "boundary": boundary,
            "layer_kwargs": layer_kwargs,
            "head_kwargs": head_kwargs,
        }
        filters = tuple(filters)
        if not filters:
            raise ValueError("filters must name at least one layer")
        gaps = len(filters) - 1
        if downsample is None:
            downsample = (1,) * gaps
        elif isinstance(downsample, int):
            downsample = (downsample,) * gaps
        if len(downsample) != gaps or min(downsample, default=1) < 1:
            raise ValueError(f"downsample needs {gaps} factors ≥ 1, got {downsample!r}")
        self.cell = cell
        self.filters = filters
        self.downsample = tuple(downsample)
        self.layers = nn.ModuleList(
            make_layer(cell, c_in, f, kernel_size, boundary, layer_kwargs)
            for c_in, f in zip((in_channels, *filters[:-1]), filters)
        )
        self.head = SubspaceHead(filters[-1], embed_dim=embed_dim, **(head_kwargs or {}))

    @property
    def embed_dim(self) -> int:
        return self.head.embed_dim

    def run_layers(
        self, x: torch.Tensor, time_mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """The recurrent stack on a prepared input: every layer's sequence and last state."""
        sequences, states = [], []
        for i, layer in enumerate(self.layers):
            if i > 0 and self.downsample[i - 1] > 1:
                x = pool_sequence(x, self.downsample[i - 1])
            x, h, c = layer(x, mask=time_mask)
            sequences.append(x)
            states.append((h, c))
        return sequences, states

    def forward(
        self,
        x: torch.Tensor,
        times: Any = None,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> dict[str, Any]:
        x, time_mask = prepare_input(x, mask)
        sequences, states = self.run_layers(x, time_mask)
        out: dict[str, Any] = {"hidden": sequences[-1], "states": states}
        z = self.head(sequences[-1], times=times, mask=time_mask, return_attention=return_attention)
        if return_attention:
            z, out["temporal_attention"] = z
        out["embeddings"] = z
        return out

    def regularization_loss(self) -> torch.Tensor:
        """The head's weighted orthogonality penalty (0 when disabled)."""
        return self.head.regularization_loss()
