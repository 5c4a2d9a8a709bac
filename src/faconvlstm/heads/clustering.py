r"""Joint deep clustering head: DEC / IDEC soft assignment to ``k`` learnable centroids.

Deep Embedded Clustering (Xie, Girshick & Farhadi 2016, "Unsupervised Deep Embedding for
Clustering Analysis", ICML) and its reconstruction-keeping variant IDEC (Guo et al. 2017,
"Improved Deep Embedded Clustering with Local Structure Preservation", IJCAI) cluster the
embeddings ``z_i`` (here one per time step, width ``E``) around ``k`` centroids ``μ_j``
that are trained together with the encoder:

.. math::
    q_{ij} &= \frac{(1 + \lVert z_i - \mu_j\rVert^2/\alpha)^{-(\alpha+1)/2}}
                   {\sum_{j'} (1 + \lVert z_i - \mu_{j'}\rVert^2/\alpha)^{-(\alpha+1)/2}}
    \quad\text{(Student-t soft assignment, } \alpha \text{ degrees of freedom)},\\
    p_{ij} &= \frac{q_{ij}^2 / f_j}{\sum_{j'} q_{ij'}^2 / f_{j'}},\qquad f_j = \sum_i q_{ij}
    \quad\text{(sharpened target; } f_j \text{ the soft cluster sizes)},\\
    L &= L_\text{rec} + \gamma\,\mathrm{KL}(P\Vert Q),\qquad
    \mathrm{KL}(P\Vert Q) = \frac1N \sum_i \sum_j p_{ij}\log\frac{p_{ij}}{q_{ij}},

with ``P`` held fixed (no gradient) between refreshes. Squaring ``q`` sharpens confident
assignments; dividing by ``f_j`` keeps large clusters from swallowing the others. The KL
is averaged over the ``N`` embeddings (a per-sample mean, as IDEC's Keras code does), so
``γ`` does not depend on the batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ClusteringHead"]


class ClusteringHead(nn.Module):
    r"""``k`` learnable centroids in the embedding space and the DEC soft assignment.

    Args:
        n_clusters: k ≥ 2.
        embed_dim: E, the width of the embeddings it assigns.
        alpha: degrees of freedom α > 0 of the Student-t kernel (DEC uses 1).

    Attributes:
        centroids: ``nn.Parameter`` ``(k, E)`` (zeros until :meth:`init_centroids`); in the
            ``state_dict``, so saved in checkpoints and trained by the optimiser.
        initialized: bool buffer (in the ``state_dict``): whether :meth:`init_centroids`
            has run, so a checkpoint says whether its centroids mean anything.
    """

    initialized: torch.Tensor  # a registered bool buffer

    def __init__(self, n_clusters: int, embed_dim: int, alpha: float = 1.0) -> None:
        super().__init__()
        if int(n_clusters) < 2:
            raise ValueError(f"n_clusters must be >= 2 (clusters to assign to), got {n_clusters}")
        if not alpha > 0:
            raise ValueError(f"alpha (Student-t degrees of freedom) must be > 0, got {alpha}")
        self.n_clusters, self.embed_dim, self.alpha = int(n_clusters), int(embed_dim), float(alpha)
        self.centroids = nn.Parameter(torch.zeros(self.n_clusters, self.embed_dim))
        self.register_buffer("initialized", torch.tensor(False))

    def extra_repr(self) -> str:
        return f"n_clusters={self.n_clusters}, embed_dim={self.embed_dim}, alpha={self.alpha}"

    def soft_assign(self, z: torch.Tensor) -> torch.Tensor:
        r"""Student-t soft assignment ``q`` of embeddings ``z`` ``(..., E)`` → ``(..., k)``.

        ``q_{ij} ∝ (1 + |z_i − μ_j|²/α)^{−(α+1)/2}``, normalised over ``j`` (computed as a
        softmax of the log-kernel, so it stays finite far from every centroid). Each row
        sums to 1 and is largest for the nearest centroid.
        """
        if z.shape[-1] != self.embed_dim:
            raise ValueError(f"embeddings have width {z.shape[-1]}, the head {self.embed_dim}")
        d2 = (z.unsqueeze(-2) - self.centroids).square().sum(-1)  # (..., k)
        logits = -(self.alpha + 1.0) / 2.0 * torch.log1p(d2 / self.alpha)
        return torch.softmax(logits, dim=-1)

    @staticmethod
    def target_distribution(q: torch.Tensor) -> torch.Tensor:
        r"""The sharpened target ``p`` ``(..., k)`` of soft assignments ``q`` ``(..., k)``.

        ``p_{ij} = (q_{ij}²/f_j) / Σ_{j'} q_{ij'}²/f_{j'}`` with ``f_j = Σ_i q_{ij}`` summed
        over every leading axis (all the embeddings given form one population). Returned
        detached: the target is held fixed.
        """
        q = q.detach()
        f = q.reshape(-1, q.shape[-1]).sum(0)  # (k,) soft cluster sizes
        w = q.square() / f.clamp_min(torch.finfo(q.dtype).tiny)
        return w / w.sum(-1, keepdim=True)

    @staticmethod
    def kl_loss(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r"""``KL(P‖Q) = (1/N) Σ_i Σ_j p_ij log(p_ij / q_ij)`` over the ``N`` rows of ``(..., k)``.

        Zero exactly when ``p = q`` (row by row), positive otherwise; gradients reach ``q``
        only (``p`` is treated as a constant). ``0·log 0 = 0``.
        """
        if q.shape != p.shape:
            raise ValueError(f"q {tuple(q.shape)} and p {tuple(p.shape)} differ in shape")
        p = p.detach()
        log_q = torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))
        kl = torch.xlogy(p, p) - p * log_q
        return kl.sum(-1).mean()

    @torch.no_grad()
    def init_centroids(self, z: Any, seed: int = 0, n_init: int = 10) -> np.ndarray:
        """Put the centroids at the k-means centres of embeddings ``z`` ``(N, E)``.

        scikit-learn ``KMeans(n_clusters=k, n_init=n_init, random_state=seed)`` (float64);
        the best of ``n_init`` (≥ 4) starts by inertia. Sets :attr:`initialized`.
        Returns the k-means labels ``(N,)``.
        """
        from sklearn.cluster import KMeans

        if n_init < 4:
            raise ValueError(f"n_init must be >= 4 k-means starts, got {n_init}")
        z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
        z = z.reshape(-1, self.embed_dim).astype(np.float64)
        if z.shape[0] < self.n_clusters:
            raise ValueError(
                f"k-means needs at least n_clusters = {self.n_clusters} embeddings, got "
                f"{z.shape[0]}"
            )
        km = KMeans(n_clusters=self.n_clusters, n_init=n_init, random_state=seed).fit(z)
        centres = torch.as_tensor(km.cluster_centers_, dtype=self.centroids.dtype)
        self.centroids.copy_(centres.to(self.centroids.device))
        self.initialized.fill_(True)
        return km.labels_
