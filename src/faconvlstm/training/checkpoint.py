"""Checkpoints: safe loading, atomic writing and the metadata that makes one self-contained.

Every checkpoint written by ``faconvlstm fit`` is a Lightning checkpoint with one extra
entry, ``checkpoint["faconvlstm"]``::

    {"format": 1,
     "task": "autoencoder" | "forecast",
     "model_class": "SequenceAutoencoder" | "Forecaster",
     "model_config": {...},        # model.get_config(): rebuilds the network
     "stats": {...},               # NormStats.to_dict(): training-period normalisation
     "data": {...},                # channels, units, lat, lon, periodic_lon, window, horizon
     "config": {...}}              # the full validated run configuration

Everything in it is a plain container, number, string or tensor, so the file loads with
``torch.load(weights_only=True)``: nothing in a checkpoint can execute code on load.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

FORMAT_VERSION = 1
META_KEY = "faconvlstm"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or not from faconvlstm."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Load a faconvlstm checkpoint safely (``weights_only=True``) and check its metadata.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, contains objects other than
            tensors and plain containers, or was not written by ``faconvlstm fit``.
    """
    ckpt = load_state(path, map_location)
    meta = ckpt.get(META_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "model_config" not in meta or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a faconvlstm checkpoint (no '{META_KEY}' "
            "metadata or no state_dict); use a checkpoint written by `faconvlstm fit`"
        )
    if meta.get("format", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {meta.get('format')}, newer than this "
            f"faconvlstm understands ({FORMAT_VERSION}); upgrade faconvlstm"
        )
    return ckpt


def load_state(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive since PyTorch 1.6
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated, or not a "
            "checkpoint at all)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = re.search(r"(unsupported GLOBAL [^\n]+|WeightsUnpickler error: [^\n]+)",
                           str(err))
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain "
            "containers, which could run code when loaded (loaded with weights_only=True"
            f"{'; ' + reason.group(1).strip() if reason else ''})"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {err}"
        ) from err


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A reader (or a resumed run) sees either the previous complete file or the new one,
    never a half-written checkpoint, even if the process is killed while saving.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file via a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes atomically and loads with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: Any = None
    ) -> dict:
        return load_checkpoint(path, map_location="cpu" if map_location is None else map_location)


def stats_to_meta(stats: Any) -> dict:
    """:class:`~faconvlstm.data.NormStats` -> checkpoint entry (climatology as a tensor)."""
    meta = stats.to_dict()
    clim = getattr(stats, "climatology_values", None)
    if clim is not None:
        meta["climatology_values"] = torch.as_tensor(clim.values, dtype=torch.float32)
        meta["climatology_dims"] = list(clim.dims)
        meta["climatology_coords"] = {
            d: clim[d].values.tolist() for d in clim.dims if d in clim.coords
        }
    return meta


def stats_from_meta(meta: dict) -> Any:
    """Inverse of :func:`stats_to_meta`."""
    import xarray as xr

    from faconvlstm.data import NormStats

    clim = None
    if meta.get("climatology_values") is not None:
        clim = xr.DataArray(
            meta["climatology_values"].numpy(),
            dims=meta["climatology_dims"],
            coords=meta["climatology_coords"],
            name="climatology",
        )
    plain = {k: v for k, v in meta.items() if not k.startswith("climatology_")}
    plain["climatology_kind"] = meta.get("climatology_kind")
    plain["climatology_window"] = meta.get("climatology_window")
    return NormStats.from_dict(plain, climatology_values=clim)
