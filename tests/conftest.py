"""Test-wide settings.

* Keras runs on the PyTorch backend (no TensorFlow needed).
* One intra-op thread: the tests use tiny tensors, for which OpenMP's barriers cost more
  than they save (and stall badly when the cores are shared). Benchmarks set their own.
"""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def load_benchmark():
    """``load_benchmark("name")`` imports ``benchmarks/name.py`` as a module, registered in
    ``sys.modules`` (dataclasses look their module up there) and removed after the test,
    together with ``train_step``, which several benchmarks import from their folder."""
    loaded: list[str] = []

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in [*loaded, "train_step"]:
        sys.modules.pop(name, None)
