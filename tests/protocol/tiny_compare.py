"""A tiny comparison (3 subjects × 2 seeds, 8×16 grid, 2 epochs) for the protocol tests."""

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
