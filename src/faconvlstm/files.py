"""Files written safely: atomically, with the user's umask, and as plain JSON.

Every file faconvlstm writes (checkpoints, configs, statistics, NetCDF/Zarr outputs,
results, reports) goes through :func:`atomic_output`: the content is written to a
temporary sibling (``.<name>.<random>.tmp`` in the target's folder, so the final rename
never crosses a file system), then moved over the target with :func:`os.replace`. A
reader sees the previous complete file or the new complete one, never a half-written
file; an exception, ``KeyboardInterrupt`` or a SIGTERM turned into an exception removes
the temporary file.

Permissions follow the umask, as ``open(path, "w")`` would give: ``0o666 & ~umask`` for
files and ``0o777 & ~umask`` for directories (``tempfile.mkstemp`` alone creates mode
``0600``, which hides checkpoints from colleagues on a shared cluster).

This module is the bottom floor: it imports nothing from faconvlstm, and torch only
inside :func:`atomic_torch_save`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_output",
    "atomic_savez",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "current_umask",
    "jsonable",
]


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic two-call read (briefly sets 022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    Args:
        path: the target file (or directory, e.g. a Zarr store, with ``directory=True``).
        directory: the temporary path is an (empty) directory instead of a file.

    Yields:
        The temporary sibling path. Write the whole content there; when the ``with`` block
        ends without an exception it is given the umask's permissions and renamed to
        ``path``. A directory target that already exists is moved aside first and removed
        after the rename (``path`` is briefly absent, never half-written). On any
        exception, ``KeyboardInterrupt`` included, the temporary path is removed and the
        previous ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    umask = current_umask()
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        mode = 0o777 & ~umask
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        mode = 0o666 & ~umask
    try:
        yield tmp
        os.chmod(tmp, mode)
        if directory and path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(data: bytes, path: str | os.PathLike, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); returns ``path``."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(text.encode("utf-8"), path)


def atomic_write_json(obj: Any, path: str | os.PathLike, *, indent: int = 2) -> Path:
    """Write ``jsonable(obj)`` as strict JSON (no NaN tokens) atomically; returns ``path``."""
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(text + "\n", path)


def atomic_savez(path: str | os.PathLike, **arrays: Any) -> Path:
    """``numpy.savez`` to ``path`` atomically; returns ``path``."""
    import numpy as np

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, flushed to disk before the rename.

    A reader (or a resumed run) sees the previous complete checkpoint or the new one,
    never a half-written file, even if the process is killed while saving.
    """
    import torch

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def jsonable(value: Any) -> Any:
    """Plain JSON types, recursively: numpy scalars/arrays to Python, NaN/inf to ``None``
    (JSON has no NaN), tuples to lists, mapping keys to strings, dataclasses to dicts."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return jsonable(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
