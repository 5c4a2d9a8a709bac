"""Tiny runs for the reliability tests: an 8×16 synthetic grid, a few optimiser steps.

``TINY`` has the settings of the shipped ``synthetic_*.yaml`` / ``era5_zarr.yaml`` /
``compare_synthetic.yaml`` configs that matter for resuming (cosine schedule, dropout,
shuffling), at a size that trains in a second or two.
"""

import copy

import pytest

TINY = {
    "seed": 0,
    "task": "autoencoder",
    "data": {
        "source": "synthetic",
        "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
        "window": 6,
        "stride": 4,
        "train_years": [2000, 2000],
        "val_years": [2001, 2001],
        "batch_size": 4,
        "shuffle": True,
    },
    "model": {
        "cell": "fa",
        "filters": [4],
        "embed_dim": 8,
        "layer_kwargs": {"attention_every": 3, "dropout": 0.2},
    },
    "optim": {"lr": 0.01, "weight_decay": 0.0001, "scheduler": "cosine"},
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 4,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "log_every_n_steps": 1,
    },
    "checkpoint": {"every_n_train_steps": 3},
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train as fast on one thread (and deterministically)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    """A fresh copy of the tiny configuration (dict)."""
    return copy.deepcopy(TINY)


@pytest.fixture(scope="module")
def tiny_for_module():
    """The tiny configuration for module-scoped fixtures (copy it before changing it)."""
    return copy.deepcopy(TINY)
