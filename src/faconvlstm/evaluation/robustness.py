"""Robustness of embeddings to noisy and missing inputs.

Perturbations act on input sequences ``(..., C, H, W)`` (the channel axis is third from the
end, as in ``(B, T, C, H, W)``); they accept torch tensors or numpy arrays and return the same
type. All are seeded, so FA and ConvLSTM see exactly the same corrupted inputs.

The score of a perturbation is how little the representation moves: the mean cosine
similarity between clean and perturbed embeddings of the same time steps, and the agreement
(ARI) of the regimes assigned to the perturbed embeddings by the k-means fitted on the
clean ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from faconvlstm.evaluation._arrays import as_samples
from faconvlstm.evaluation.stability import fit_kmeans

__all__ = [
    "add_gaussian_noise",
    "block_mask",
    "embedding_cosine",
    "random_mask",
    "robustness_curve",
]


def _as_tensor(x: Any) -> tuple[torch.Tensor, bool]:
    """``(tensor, was_numpy)``."""
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x)), True


def _back(x: torch.Tensor, was_numpy: bool) -> Any:
    return x.numpy() if was_numpy else x


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def add_gaussian_noise(x: Any, sigma: float, *, channel_std: Any = None, seed: int = 0) -> Any:
    """Add white Gaussian noise whose size is σ in units of each channel's standard deviation.

    .. math:: \\tilde x_{c} = x_{c} + \\sigma\\, s_c\\, \\varepsilon,
              \\quad \\varepsilon \\sim \\mathcal N(0, 1)

    Args:
        x: ``(..., C, H, W)`` inputs.
        sigma: noise level (dimensionless; 1 = as large as the signal's own spread).
        channel_std: ``(C,)`` standard deviations s_c; by default those of ``x`` itself
            (NaN-aware). For normalised inputs s_c ≈ 1.
        seed: noise seed.

    Returns:
        Perturbed copy of ``x``, same type, shape and dtype.
    """
    t, was_numpy = _as_tensor(x)
    if channel_std is None:
        reduce = [d for d in range(t.ndim) if d != t.ndim - 3]
        centred = t - t.nanmean(dim=reduce, keepdim=True)
        std = (centred**2).nanmean(dim=reduce, keepdim=True).sqrt()
    else:
        std = torch.as_tensor(np.asarray(channel_std), dtype=t.dtype).reshape(-1, 1, 1)
    noise = torch.randn(t.shape, generator=_generator(seed), dtype=t.dtype)
    return _back(t + sigma * std * noise, was_numpy)


def random_mask(x: Any, fraction: float, *, fill: float = 0.0, seed: int = 0) -> tuple[Any, Any]:
    """Hide a random fraction of grid points (all channels of a point together).

    Args:
        x: ``(..., C, H, W)`` inputs.
        fraction: share of (…, H, W) points hidden, in [0, 1].
        fill: value written where hidden (0 is the mean of normalised inputs).
        seed: mask seed.

    Returns:
        ``(x_masked, hidden)``; ``hidden`` is a bool ``(..., 1, H, W)`` mask, True = hidden.
    """
    t, was_numpy = _as_tensor(x)
    shape = (*t.shape[:-3], 1, *t.shape[-2:])
    hidden = torch.rand(shape, generator=_generator(seed)) < fraction
    return _back(t.masked_fill(hidden, fill), was_numpy), _back(hidden, was_numpy)


def block_mask(
    x: Any,
    fraction: float,
    *,
    block: tuple[int, int] = (4, 8),
    fill: float = 0.0,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Hide rectangular blocks (a missing swath or region), all channels together.

    Blocks of ``block = (h, w)`` grid points are placed at random on a coarse lattice of
    block-sized tiles; each tile of each map ``(..., H, W)`` is hidden with probability
    ``fraction``, so on average that share of the grid is hidden.

    Returns:
        ``(x_masked, hidden)`` as :func:`random_mask`.
    """
    t, was_numpy = _as_tensor(x)
    bh, bw = block
    h, w = t.shape[-2:]
    tiles = (*t.shape[:-3], 1, -(-h // bh), -(-w // bw))
    coarse = torch.rand(tiles, generator=_generator(seed)) < fraction
    hidden = coarse.repeat_interleave(bh, -2).repeat_interleave(bw, -1)[..., :h, :w]
    return _back(t.masked_fill(hidden, fill), was_numpy), _back(hidden, was_numpy)


def embedding_cosine(z_clean: Any, z_perturbed: Any, *, center: bool = True) -> float:
    """Mean cosine similarity between clean and perturbed embeddings of the same samples.

    .. math:: \\frac{1}{n}\\sum_i \\frac{(z_i - \\bar z) \\cdot (\\tilde z_i - \\bar z)}
              {\\lVert z_i - \\bar z\\rVert\\, \\lVert \\tilde z_i - \\bar z\\rVert}

    with z̄ the mean of the *clean* embeddings (``center=True``; z̄ = 0 otherwise). Centring
    matters: embeddings often share a large common offset (a LayerNorm bias, a positional
    encoding), which makes raw cosines ≈ 1 whatever the input; centred, the score measures
    how far each embedding moved relative to where the clean samples spread.
    1 = the perturbation did not move any embedding's direction.
    """
    a, b = as_samples(z_clean), as_samples(z_perturbed)
    if center:
        mean = a.mean(axis=0)
        a, b = a - mean, b - mean
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


_PERTURBATIONS: dict[str, Callable[..., Any]] = {
    "noise": lambda x, level, seed, block: add_gaussian_noise(x, level, seed=seed),
    "random_mask": lambda x, level, seed, block: random_mask(x, level, seed=seed)[0],
    "block_mask": lambda x, level, seed, block: block_mask(x, level, block=block, seed=seed)[0],
}


def robustness_curve(
    embed_fn: Callable[[Any], Any],
    x: Any,
    levels: Sequence[float],
    *,
    kind: str = "noise",
    n_clusters: int | None = None,
    block: tuple[int, int] = (4, 8),
    seed: int = 0,
    clean: Any = None,
) -> xr.Dataset:
    """Embedding similarity to the clean input as a function of perturbation strength.

    Args:
        embed_fn: maps inputs like ``x`` to embeddings ``(n, E)`` (or ``(B, T, E)``).
        x: clean inputs ``(..., C, H, W)``.
        levels: σ for ``kind="noise"``; hidden fraction for ``"random_mask"`` and
            ``"block_mask"``.
        kind: ``"noise"``, ``"random_mask"`` or ``"block_mask"``.
        n_clusters: if given, k-means (k = n_clusters) is fitted on the clean embeddings and
            ``ari`` compares its labels of the clean and the perturbed embeddings.
        block: block size ``(h, w)`` for ``"block_mask"``.
        seed: perturbation and k-means seed.
        clean: the embeddings of ``x`` if already computed (saves one pass).

    A level of 0 perturbs nothing, so its point is the clean embedding itself (cosine 1,
    ARI 1) without another pass.

    Returns:
        Dataset over ``level`` with ``cosine`` (and ``ari`` with ``n_clusters``).
    """
    if kind not in _PERTURBATIONS:
        raise ValueError(f"kind must be one of {sorted(_PERTURBATIONS)}, got {kind!r}")
    perturb = _PERTURBATIONS[kind]
    clean = as_samples(embed_fn(x) if clean is None else clean)
    km = fit_kmeans(clean, n_clusters, seed) if n_clusters is not None else None
    cos, ari = [], []
    for level in levels:
        z = clean if level == 0 else as_samples(embed_fn(perturb(x, level, seed, block)))
        cos.append(embedding_cosine(clean, z))
        if km is not None:
            with threadpool_limits(1, user_api="openmp"):
                ari.append(adjusted_rand_score(km.labels_, km.predict(z)))
    out = xr.Dataset({"cosine": ("level", cos)}, coords={"level": list(levels)})
    if km is not None:
        out["ari"] = ("level", ari)
    out.attrs["kind"] = kind
    return out
