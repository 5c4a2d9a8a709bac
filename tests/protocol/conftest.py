"""Shared by the protocol tests: a tiny comparison, run once per test session."""

import json

import pytest
from tiny_compare import TINY

from faconvlstm.protocol.runs import compare


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """``(out, results.json as a dict)`` of the TINY comparison (about 35 s on one core)."""
    out = tmp_path_factory.mktemp("compare")
    path = compare(TINY, out, progress=False)
    return out, json.loads(path.read_text())
