"""The package root is light: each heavy dependency is imported only by what needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    probe = (
        "import sys\n" + code + "\nprint('LOADED:', *(m for m in "
        "('torch', 'lightning', 'xarray', 'dask', 'zarr', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return set(out[-1].split()[1:])


def test_import_faconvlstm_imports_no_heavy_dependency():
    assert _loaded_after("import faconvlstm") == set()


def test_layers_need_torch_only():
    assert _loaded_after("from faconvlstm import FAConvLSTM2D, ConvLSTM2D") == {"torch"}


def test_cli_help_imports_neither_torch_nor_lightning():
    loaded = _loaded_after(
        "from faconvlstm.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert loaded == set()


def test_unknown_attribute_is_an_attribute_error():
    import faconvlstm

    with pytest.raises(AttributeError, match="no attribute 'NoSuchLayer'"):
        faconvlstm.NoSuchLayer  # noqa: B018


def test_public_names_resolve_lazily():
    import faconvlstm

    for name in faconvlstm.__all__:
        assert getattr(faconvlstm, name) is not None
    assert faconvlstm.FAConvLSTM2D.__module__ == "faconvlstm.layers.faconvlstm"


def test_all_lists_exactly_the_lazy_exports():
    import faconvlstm

    assert sorted(faconvlstm.__all__) == sorted([*faconvlstm._EXPORTS, "__version__"])
