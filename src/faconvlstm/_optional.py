"""Optional dependencies: an ImportError that says which extra to install.

faconvlstm itself needs only NumPy; the rest comes with extras (``pyproject.toml``)::

    pip install "faconvlstm[torch]"   # the PyTorch layers, heads and models
    pip install "faconvlstm[keras]"   # the Keras 3 layer (no PyTorch)
    pip install "faconvlstm[train]"   # the command line, data pipeline, training, evaluation
    pip install "faconvlstm[all]"     # train + keras

A part that needs an optional package imports it through :func:`require` (the PyTorch
layers, the Keras front end), and the command line turns a missing package into a one-line
message with :func:`missing_dependency_message`. This module is the bottom floor: it
imports nothing from faconvlstm.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: top-level import name of an optional dependency -> the extra that installs it
EXTRA_OF = {
    "torch": "torch",
    "einops": "torch",
    "keras": "keras",
    **dict.fromkeys(
        (
            "xarray", "dask", "netCDF4", "h5netcdf", "zarr", "fsspec", "cftime", "pandas",
            "scipy", "eofs", "sklearn", "threadpoolctl", "matplotlib", "lightning",
            "tensorboard", "yaml", "tqdm", "psutil", "filelock",
        ),
        "train",
    ),
}  # fmt: skip


def _hint(module: str, extra: str) -> str:
    return f"the optional dependency '{module}' is not installed: pip install 'faconvlstm[{extra}]'"


class MissingDependencyError(ImportError):
    """``module`` (an optional dependency) is not installed; ``extra`` installs it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(_hint(module, extra), name=module)
        self.module, self.extra = module, extra


def _missing_name(error: BaseException) -> str | None:
    """The top-level name of the module whose absence raised ``error``, if that is why."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        return error.name.partition(".")[0]
    return None


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming ``extra``.

    Only the absence of ``module`` itself is translated: an installed package that fails
    to import (a broken build, a missing shared library) raises its own error unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if _missing_name(error) != module.partition(".")[0]:
            raise
        raise MissingDependencyError(module, extra) from error


def missing_dependency_message(error: BaseException, extra: str | None = None) -> str | None:
    """The install hint for an error caused by a missing optional dependency of faconvlstm
    (a :class:`MissingDependencyError`, or a ``ModuleNotFoundError`` for a package of
    :data:`EXTRA_OF`); ``None`` for any other error (a bug, whose traceback should show).

    ``extra`` replaces the extra the hint names: the command line needs
    ``faconvlstm[train]`` whichever of its dependencies is missing.
    """
    if isinstance(error, MissingDependencyError):
        return _hint(error.module, extra or error.extra)
    name = _missing_name(error)
    if name in EXTRA_OF:
        return _hint(name, extra or EXTRA_OF[name])
    return None
