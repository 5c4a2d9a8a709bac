"""The subjects of the comparison: every model is seen through one embedder protocol.

A *subject* is a name in the compare config's ``models`` list. The learned subjects are the
cell kinds of :mod:`faconvlstm.layers.registry` (an autoencoder with that cell); ``"eof"``
is the √cos φ-weighted EOF/PCA baseline (:class:`faconvlstm.models.eof.EOFEmbedding`).
:data:`SUBJECTS` is the one table of names, labels and report colours.

The metrics see a subject only as an :class:`Embedder`: windows ``(N, T, C, H, W)`` in,
embeddings ``(N·T, E)`` (and reconstructions ``(N, T, C, H, W)``) out, in the normalised
units of the training period. Adding a subject (say a transformer encoder) is a class with
these two methods and a row in :data:`SUBJECTS` (see ``docs/protocol.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from faconvlstm.layers.registry import CELLS
from faconvlstm.models.eof import EOFEmbedding
from faconvlstm.protocol.heldout import EvalData

__all__ = [
    "SUBJECTS",
    "EOFSubject",
    "Embedder",
    "LearnedSubject",
    "SubjectKind",
    "subject_label",
]


@dataclass(frozen=True)
class SubjectKind:
    """A subject of the comparison: config name, report label and colour, and whether it
    is a trained autoencoder (its name is then a cell kind) or fitted in closed form."""

    name: str
    label: str
    colour: str | None
    learned: bool


_COLOURS = {"fa": "tab:red", "convlstm": "tab:blue"}

SUBJECTS: dict[str, SubjectKind] = {
    **{
        name: SubjectKind(name, kind.label, _COLOURS.get(name), learned=True)
        for name, kind in CELLS.items()
    },
    "eof": SubjectKind("eof", "EOF/PCA", "tab:gray", learned=False),
}


def subject_label(name: str) -> str:
    """The report label of a subject (``"fa"`` → ``"FAConvLSTM"``); unknown names as given."""
    kind = SUBJECTS.get(name)
    return kind.label if kind else name


class Embedder(Protocol):
    """What every metric needs from a subject."""

    def embed(self, x: Any, phase: Any = None) -> np.ndarray:
        """Embeddings ``(N·T, E)`` of windows ``x`` ``(N, T, C, H, W)``; ``phase`` ``(N, T)``
        are their annual phases (default: those of the evaluation windows)."""
        ...

    def embed_and_reconstruct(self, x: Any, phase: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``(N·T, E)`` and reconstructions ``(N, T, C, H, W)`` of ``x``;
        ``phase`` as in :meth:`embed`."""
        ...


class LearnedSubject:
    """A trained autoencoder as an :class:`Embedder` (eval mode, no gradients, batches of
    :attr:`batch_size` windows)."""

    batch_size = 64

    def __init__(self, model: torch.nn.Module, data: EvalData):
        self.model, self.data = model.eval(), data

    @torch.no_grad()
    def _run(self, x: Any, keys: tuple[str, ...], phase: Any = None) -> list[torch.Tensor]:
        def wanted(xb: torch.Tensor, times: Any) -> list[torch.Tensor]:  # not the whole dict
            out = self.model(xb, times=times)
            return [out[k] for k in keys]

        return [torch.cat(parts) for parts in zip(*self._batched(x, phase, wanted))]

    @torch.no_grad()
    def _batched(self, x: Any, phase: Any, fn: Any) -> list[Any]:
        """``fn(x_b, times=phase_b)`` of every batch of :attr:`batch_size` windows, in order
        (``phase`` defaults to the evaluation windows')."""
        x = torch.as_tensor(x, dtype=torch.float32)
        phase = self.data.phase if phase is None else phase
        return [
            fn(x[i : i + self.batch_size], times=phase[i : i + self.batch_size])
            for i in range(0, x.shape[0], self.batch_size)
        ]

    def embed(self, x: Any, phase: Any = None) -> np.ndarray:
        encode = getattr(self.model, "encode", None)
        if encode is None:
            (z,) = self._run(x, ("embeddings",), phase)
        else:  # the encoder alone: the same embeddings, without the decoder's cost
            z = torch.cat(self._batched(x, phase, encode))
        return z.reshape(-1, z.shape[-1]).numpy()

    def embed_and_reconstruct(self, x: Any, phase: Any = None) -> tuple[np.ndarray, np.ndarray]:
        z, recon = self._run(x, ("embeddings", "recon"), phase)
        return z.reshape(-1, z.shape[-1]).numpy(), recon.numpy()

    def cluster_labels(self, x: Any, k: int) -> np.ndarray | None:
        """The model's own clusters ``(N·T,)`` of windows ``x`` (argmax of its soft
        assignment ``cluster_probs``) when it was trained with joint deep clustering
        (``model.n_clusters = k``, centroids initialised); ``None`` otherwise (the
        protocol then runs k-means on the embeddings)."""
        head = getattr(self.model, "clustering", None)
        if head is None or not bool(head.initialized) or head.n_clusters != k:
            return None
        (q,) = self._run(x, ("cluster_probs",))
        return q.reshape(-1, q.shape[-1]).argmax(-1).numpy()


class EOFSubject:
    """The EOF baseline as an :class:`Embedder`: each time step is projected on the EOFs of
    the training period (the phase is not used: EOFs see the fields only)."""

    def __init__(self, eof: EOFEmbedding, data: EvalData):
        self.eof, self.data = eof, data

    @classmethod
    def fit(cls, data: EvalData, n_eofs: int) -> EOFSubject:
        """Fit ``n_eofs`` EOFs to the normalised training period ``data.train_fields``."""
        return cls(EOFEmbedding(n_eofs=n_eofs).fit(data.train_fields, lat=data.lat), data)

    def embed(self, x: Any, phase: Any = None) -> np.ndarray:
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return self.eof.transform(x.reshape(-1, *x.shape[-3:]), lat=self.data.lat)

    def embed_and_reconstruct(self, x: Any, phase: Any = None) -> tuple[np.ndarray, np.ndarray]:
        z = self.embed(x)
        return z, self.eof.inverse_transform(z).reshape(x.shape)
