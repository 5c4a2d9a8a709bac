"""An interrupted run resumed with ``--resume`` ends with the same weights as an uninterrupted one.

Every run is a separate process (one thread, deterministic mode, CPU). The interruption is
a real signal delivered to the training process at a chosen optimiser step, so the test
does not depend on timing: SIGKILL (nothing can be saved; the periodic ``last.ckpt`` from
the step before survives) and SIGTERM (``last.ckpt`` is written after the current batch).
The configuration shuffles, uses dropout, anneals the learning rate (cosine, as the shipped
``synthetic_*.yaml`` configs do) and stops mid-epoch, so the data order, the RNG state, the
schedule and the loop position all have to be restored exactly.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from faconvlstm.training import load_checkpoint

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import lightning as L
    from faconvlstm.training import fit

    class SignalAt(L.Callback):
        def __init__(self, step, sig):
            self.step, self.sig = step, sig
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == self.step:
                os.kill(os.getpid(), self.sig)

    config, out, step, sig = sys.argv[1:]
    callbacks = [] if sig == "none" else [SignalAt(int(step), getattr(signal, sig))]
    fit(config, out=out, callbacks=callbacks)
""")

STEPS = 8  # 2 epochs x 4 batches
SRC = Path(__file__).resolve().parents[2] / "src"
CONFIG = {
    "seed": 0,
    "data": {
        "source": "synthetic",
        "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
        "window": 6,
        "stride": 4,
        "train_years": [2000, 2000],
        "val_years": [2001, 2001],
        "batch_size": 4,
    },
    "model": {
        "cell": "fa",
        "filters": [4],
        "embed_dim": 8,
        "layer_kwargs": {"attention_every": 3, "dropout": 0.2},
    },
    "optim": {"lr": 0.01, "scheduler": "cosine"},
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 4,
        "limit_val_batches": 2,
        "enable_progress_bar": False,
    },
    "checkpoint": {"every_n_train_steps": 1},
}


@pytest.fixture(scope="module")
def resume_case(tmp_path_factory):
    """Folder, config file and training script shared by the cases."""
    root = tmp_path_factory.mktemp("resume")
    config = root / "cfg.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    script = root / "run.py"
    script.write_text(SCRIPT)
    return root, config, script


def _run(args, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )


def _weights(path):
    return load_checkpoint(path)["state_dict"]


@pytest.fixture(scope="module")
def reference(resume_case):
    """Final weights of the uninterrupted run."""
    root, config, script = resume_case
    res = _run([script, config, root / "ref", 0, "none"])
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint(root / "ref" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    return ckpt["state_dict"]


@pytest.mark.parametrize(
    ("sig", "at_step", "saved_step"),
    [
        ("SIGKILL", 5, 5),  # killed before step 5 runs: the periodic checkpoint of step 4+1
        pytest.param("SIGTERM", 1, 2, marks=pytest.mark.slow),  # last.ckpt after that batch
    ],
)
def test_resumed_run_reaches_the_uninterrupted_weights(
    resume_case, reference, cli, sig, at_step, saved_step
):
    root, config, script = resume_case
    out = root / sig
    interrupted = _run([script, config, out, at_step, sig])
    assert interrupted.returncode != 0 or sig == "SIGTERM", interrupted.stderr[-3000:]
    last = out / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == saved_step  # stopped mid-epoch

    resumed = cli("fit", "--config", config, "--out", out, "--resume", timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = _weights(last)
    assert load_checkpoint(last)["global_step"] == STEPS
    assert final.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(final[name], value), name
