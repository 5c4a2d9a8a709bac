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
``torch.load(weights_only=True)``: nothing in a checkpoint can execute code on load. Files
are written through :func:`faconvlstm.files.atomic_torch_save` (a temporary sibling renamed
into place, the user's umask). A loaded checkpoint is checked before use
(:func:`validate_checkpoint`): every metadata entry present, every floating-point weight
finite, every normalisation standard deviation finite and positive — a damaged or tampered
file is refused by name instead of producing all-NaN output.
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

# the one atomic writer; atomic_write_text is re-exported for callers that import it here
from faconvlstm.files import atomic_torch_save, atomic_write_text

__all__ = [
    "CheckpointError",
    "atomic_torch_save",
    "atomic_write_text",
    "load_checkpoint",
    "load_state",
    "make_metadata",
    "stats_from_meta",
    "stats_to_meta",
    "validate_checkpoint",
]

FORMAT_VERSION = 1
META_KEY = "faconvlstm"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or not from faconvlstm."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Load a faconvlstm checkpoint safely (``weights_only=True``) and check its metadata.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, contains objects other than
            tensors and plain containers, was not written by ``faconvlstm fit``, or fails
            :func:`validate_checkpoint`.
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
    validate_checkpoint(ckpt, path)
    return ckpt


#: Metadata entries every checkpoint carries, and what each one is (for error messages).
META_ENTRIES = {
    "task": "the training task",
    "model_class": "the model class",
    "model_config": "the model configuration",
    "stats": "the training-period normalisation statistics",
    "data": "the data description",
    "config": "the run configuration",
}


def validate_checkpoint(ckpt: dict, path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint whose metadata is incomplete or whose numbers cannot be right.

    Checks: every entry of :data:`META_ENTRIES` is present; ``stats`` has ``channels``,
    ``mean`` and ``std`` of one length per channel, every mean finite and every standard
    deviation finite and > 0 (normalising by 0 or NaN gives all-NaN inputs); every
    floating-point tensor of ``state_dict`` is finite.

    Raises:
        CheckpointError: naming the missing entry, the channel or the tensor.
    """
    meta = ckpt[META_KEY]
    missing = [k for k in META_ENTRIES if k not in meta]
    if missing:
        raise CheckpointError(
            f"{path}: the '{META_KEY}' metadata lacks "
            + ", ".join(f"'{k}' ({META_ENTRIES[k]})" for k in missing)
            + "; it was not written by `faconvlstm fit` or has been edited. Use a checkpoint "
            "written by `faconvlstm fit` (or by a faconvlstm task under lightning.Trainer)"
        )
    stats = meta["stats"]
    absent = [
        k for k in ("channels", "mean", "std") if not isinstance(stats, dict) or k not in stats
    ]
    if absent:
        raise CheckpointError(
            f"{path}: the normalisation statistics ('{META_KEY}'/'stats') lack "
            f"{', '.join(repr(k) for k in absent)}"
        )
    channels = list(stats["channels"])
    for name in ("mean", "std"):
        values = [float(v) for v in torch.as_tensor(stats[name], dtype=torch.float64).flatten()]
        if len(values) != len(channels):
            raise CheckpointError(
                f"{path}: stats '{name}' has {len(values)} values for {len(channels)} channels"
            )
        for channel, value in zip(channels, values, strict=True):
            bad = not math.isfinite(value) or (name == "std" and value <= 0)
            if bad:
                raise CheckpointError(
                    f"{path}: the normalisation {name} of channel '{channel}' is {value}"
                    + (" (must be finite and > 0)" if name == "std" else " (must be finite)")
                    + "; the checkpoint is damaged or was edited: use another checkpoint"
                )
    for key, tensor in ckpt["state_dict"].items():
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(
                    f"{path}: weight tensor '{key}' holds NaN or infinite values; the "
                    "checkpoint is damaged or was edited: use another checkpoint (e.g. "
                    "best.ckpt, or an earlier run)"
                )


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
        reason = re.search(r"(unsupported GLOBAL [^\n]+|WeightsUnpickler error: [^\n]+)", str(err))
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain "
            "containers, which could run code when loaded (loaded with weights_only=True"
            f"{'; ' + reason.group(1).strip() if reason else ''})"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {err}"
        ) from err


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes atomically and loads with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: Any = None
    ) -> dict:
        return load_checkpoint(path, map_location="cpu" if map_location is None else map_location)


def make_metadata(task: str, model: Any, stats: Any, data: dict, config: dict) -> dict:
    """The ``checkpoint["faconvlstm"]`` entry (see the module docstring).

    Args:
        task: ``"autoencoder"`` or ``"forecast"``.
        model: the network (its class name and ``get_config()`` are stored).
        stats: the training-period :class:`~faconvlstm.data.NormStats`.
        data: the data description (``GriddedDataModule.describe()``).
        config: the run configuration as a plain nested dict.
    """
    return {
        "format": FORMAT_VERSION,
        "task": task,
        "model_class": type(model).__name__,
        "model_config": model.get_config(),
        "stats": stats_to_meta(stats),
        "data": data,
        "config": config,
    }


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
