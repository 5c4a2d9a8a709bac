"""The per-epoch history files: written one per epoch, read back in order, NaN as None."""

import numpy as np

from faconvlstm.files import atomic_savez
from faconvlstm.training.history import read_history


def test_read_history_orders_epochs_and_turns_missing_losses_into_none(tmp_path):
    assert read_history(tmp_path / "absent").epoch == []
    for epoch, val in ((1, np.nan), (0, 0.5)):
        atomic_savez(
            tmp_path / f"epoch_{epoch:03d}.npz",
            embeddings=np.full((2, 3), epoch),
            train_loss=np.float64(1.0 + epoch),
            val_loss=np.float64(val),
        )
    hist = read_history(tmp_path)
    assert hist.losses() == {"epoch": [0, 1], "train_loss": [1.0, 2.0], "val_loss": [0.5, None]}
    assert [float(s[0, 0]) for s in hist.snapshots] == [0.0, 1.0]
