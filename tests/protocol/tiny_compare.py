"""A tiny comparison (3 subjects × 2 seeds, 8×16 grid, 2 epochs) for the protocol tests,
and the loader of the ``benchmarks/claim`` scripts those tests exercise."""

import copy
import importlib.util
import sys
from pathlib import Path

CLAIM_SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks" / "claim"

TINY = {
    "seeds": [0, 1],
    "threads": 1,  # tiny tensors: one thread avoids thread-pool contention on shared CPUs
    "models": ["fa", "convlstm", "eof"],
    "train": {
        "data": {
            "source": "synthetic",
            "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
            "window": 4,
            "stride": 4,
            "train_years": [2000, 2000],
            "val_years": [2001, 2001],
            "batch_size": 16,
        },
        "model": {"filters": [4], "embed_dim": 8},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "limit_train_batches": 3,
            "limit_val_batches": 2,
            "log_every_n_steps": 1,
        },
        "checkpoint": {"every_n_train_steps": None},
    },
    "evaluation": {
        "noise_sigmas": [0.0, 0.5],
        "mask_fractions": [0.3],
        "block": [2, 4],
        "probe_windows": 4,
    },
    "cost": {
        "filters": 4,
        "in_channels": 3,
        "batch": 1,
        "grids": [[8, 16]],
        "steps": [4],
        "repeats": 1,
        "memory": False,
    },
}


def tiny_years(models, n_years, train, val, test=None):
    """TINY on an ``n_years`` 8×16 record (from 2000) with the given (first, last) training,
    validation and (unless None) test years, for ``models``, layer cost off."""
    cfg = copy.deepcopy(TINY)
    cfg["models"] = list(models)
    cfg["train"]["data"].update(
        synthetic={"n_years": n_years, "nlat": 8, "nlon": 16},
        train_years=list(train),
        val_years=list(val),
    )
    if test is not None:
        cfg["train"]["data"]["test_years"] = list(test)
    cfg["cost"]["enabled"] = False
    return cfg


def claim_script(name, module_name=None):
    """For a fixture, ``yield from claim_script("fit_check")``: ``benchmarks/claim/<name>.py``
    imported as the module ``module_name`` (default ``name``), with the scripts' folder on
    ``sys.path`` as when run; afterwards ``sys.path`` is restored and every claim script it
    loaded is dropped from ``sys.modules``."""
    module_name = module_name or name
    path, before = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(CLAIM_SCRIPTS))
    spec = importlib.util.spec_from_file_location(module_name, CLAIM_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = path
        for key in set(sys.modules) - before:
            origin = getattr(sys.modules[key], "__file__", None)
            if key == module_name or (origin and Path(origin).parent == CLAIM_SCRIPTS):
                del sys.modules[key]
