"""Shared tiny run configurations for the training tests (8×16 grid, a few steps)."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_run import TINY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train as fast on one thread, and a shared CPU does not make spinning
    OpenMP threads slow them down tenfold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config():
    """A fresh copy of the tiny autoencoder configuration (dict)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def subprocess_env():
    """Environment for Python subprocesses: source tree importable, one thread each
    (deterministic, and polite on shared CPUs)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def cli(subprocess_env):
    """Run ``faconvlstm ARGS`` in a subprocess: ``cli(*args, timeout=...) -> CompletedProcess``."""

    def run(*args, timeout=180, cwd=None):
        return subprocess.run(
            [sys.executable, "-m", "faconvlstm.cli", *map(str, args)],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )

    return run


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def config_file(tmp_path, tiny_config):
    """The tiny configuration written to ``tmp_path/tiny.yaml``."""
    return write_config(tiny_config, tmp_path / "tiny.yaml")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny autoencoder run (5% missing values), shared by read-only tests:
    ``(config dict, output dir)``. Do not write into it; copy it first."""
    from faconvlstm.training import fit

    cfg = copy.deepcopy(TINY)
    cfg["data"]["synthetic"]["missing_fraction"] = 0.05
    out = tmp_path_factory.mktemp("trained") / "run"
    fit(copy.deepcopy(cfg), out=out)
    return cfg, out
