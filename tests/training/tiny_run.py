"""The tiny autoencoder run of the training tests (8x16 grid, 3 batches an epoch): a module
of its own (a unique name) so that module-scoped fixtures can import it; ``conftest``'s
``tiny_config`` fixture hands out copies."""

TINY = {
    "seed": 0,
    "task": "autoencoder",
    "data": {
        "source": "synthetic",
        "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
        "window": 6,
        "stride": 8,
        "train_years": [2000, 2000],
        "val_years": [2001, 2001],
        "batch_size": 4,
    },
    "model": {"cell": "fa", "filters": [4], "embed_dim": 8, "layer_kwargs": {"attention_every": 3}},
    "optim": {"lr": 0.01},
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 3,
        "limit_val_batches": 2,
        "enable_progress_bar": False,
        "log_every_n_steps": 1,
    },
    "checkpoint": {"every_n_train_steps": 1},
}
