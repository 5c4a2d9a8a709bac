"""faconvlstm.files: atomic, umask-respecting writes and strict JSON."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from faconvlstm.files import (
    atomic_output,
    atomic_savez,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    current_umask,
    jsonable,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_current_umask_reads_the_process_umask(umask_027):
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # reading it did not change it


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_umask_permissions_not_mkstemp_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = [
            atomic_write_text("x", tmp_path / "a.txt"),
            atomic_write_json({"a": 1}, tmp_path / "b.json"),
            atomic_savez(tmp_path / "c.npz", x=np.zeros(2)),
            atomic_torch_save({"w": 1}, tmp_path / "d.pt"),
        ]
    finally:
        os.umask(old)
    for path in written:
        assert _mode(path) == 0o666 & ~umask, path


def test_directory_output_gets_directory_permissions(tmp_path, umask_027):
    with atomic_output(tmp_path / "store.zarr", directory=True) as tmp:
        (tmp / "part").write_text("1")
    assert _mode(tmp_path / "store.zarr") == 0o750
    assert (tmp_path / "store.zarr" / "part").read_text() == "1"


def test_replaces_existing_directory_and_leaves_no_siblings(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    with atomic_output(target, directory=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(error), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise error()
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_directory_output_is_removed(tmp_path):
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "s.zarr", directory=True) as t:
        (t / "chunk").write_text("1")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_parent_folders_are_created(tmp_path):
    path = atomic_write_text("hi", tmp_path / "a" / "b" / "c.txt")
    assert path.read_text() == "hi"


def test_jsonable_makes_strict_json():
    value = {
        1: np.float32(1.5),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "arr": np.array([[1, 2]]),
        "tuple": (np.int64(3), np.bool_(True)),
        "path": Path("x/y"),
    }
    out = jsonable(value)
    assert out == {
        "1": 1.5,
        "nan": None,
        "inf": None,
        "arr": [[1, 2]],
        "tuple": [3, True],
        "path": "x/y",
    }
    json.dumps(out, allow_nan=False)  # raises if any NaN token remained


def test_atomic_write_json_round_trips(tmp_path):
    path = atomic_write_json({"a": [1.0, float("nan")]}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"a": [1.0, None]}


def test_module_imports_nothing_heavy():
    import subprocess

    code = (
        "import sys, faconvlstm.files; "
        "print(sorted(m for m in ('torch', 'xarray', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
