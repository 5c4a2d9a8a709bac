"""The public API type-checks: ``mypy --config-file mypy.ini``, as ``.ci/typecheck`` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~30-100 s with a cold cache on 2 shared cores
def test_public_api_type_checks(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mypy found errors:\n{result.stdout[-4000:]}"
