"""A missing optional dependency gives an ImportError that names the extra to install.

Each check runs in a subprocess where the dependency is hidden (``sys.modules[name] =
None`` makes ``import name`` raise ModuleNotFoundError, as if it were not installed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from faconvlstm._optional import MissingDependencyError, missing_dependency_message, require


def _run_hiding(hidden: str, code: str) -> subprocess.CompletedProcess:
    probe = f"import sys\nsys.modules[{hidden!r}] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)


def test_require_returns_the_module():
    import json

    assert require("json", "train") is json


def test_require_names_the_extra_of_a_missing_module():
    with pytest.raises(MissingDependencyError, match=r"pip install 'faconvlstm\[torch\]'"):
        require("faconvlstm_no_such_module", "torch")


def test_require_does_not_hide_a_broken_install(tmp_path, monkeypatch):
    # an installed package whose own import fails must show its real error
    (tmp_path / "broken_pkg.py").write_text("import faconvlstm_no_such_inner_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="faconvlstm_no_such_inner_module"):
        require("broken_pkg", "train")


def test_message_for_known_and_unknown_missing_modules():
    assert missing_dependency_message(ModuleNotFoundError("x", name="xarray.core")) == (
        "the optional dependency 'xarray' is not installed: pip install 'faconvlstm[train]'"
    )
    error = MissingDependencyError("torch", "torch")
    assert missing_dependency_message(error) == str(error)
    assert missing_dependency_message(error, extra="train").endswith("'faconvlstm[train]'")
    assert missing_dependency_message(ModuleNotFoundError("x", name="mystery")) is None
    assert missing_dependency_message(ImportError("cannot import name 'f'")) is None
    assert missing_dependency_message(ValueError("no")) is None


def test_layers_without_torch_name_the_torch_extra():
    run = _run_hiding("torch", "from faconvlstm import FAConvLSTM2D")
    assert run.returncode == 1
    assert "pip install 'faconvlstm[torch]'" in run.stderr.splitlines()[-1]


def test_keras_front_end_without_keras_names_the_keras_extra():
    run = _run_hiding("keras", "import faconvlstm.keras")
    assert run.returncode == 1
    assert "pip install 'faconvlstm[keras]'" in run.stderr.splitlines()[-1]


def test_cli_without_lightning_says_which_extra_in_one_line():
    run = _run_hiding(
        "lightning",
        """
        from faconvlstm.cli import main
        sys.exit(main(["fit", "--config", "quick", "--check"]))
        """,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (
        "faconvlstm fit: the optional dependency 'lightning' is not installed: "
        "pip install 'faconvlstm[train]'"
    )


def test_cli_without_torch_names_the_train_extra_not_the_torch_one():
    # the command line needs the whole training stack, whichever part is missing
    run = _run_hiding(
        "torch",
        """
        from faconvlstm.cli import main
        sys.exit(main(["demo", "--out", "unused"]))
        """,
    )
    assert run.returncode == 2, run.stderr
    # demo imports its stack when it runs (cli.py has no import-time registry any more)
    assert run.stderr.strip() == (
        "faconvlstm demo: the optional dependency 'torch' is not installed: "
        "pip install 'faconvlstm[train]'"
    )
