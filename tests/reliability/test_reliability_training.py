"""Training never loses work: exact resumption, final checkpoints, one run per directory.

Interruptions are a real SIGTERM delivered to this process at a chosen optimiser step
(Lightning's handler saves ``last.ckpt`` after that batch and stops), so nothing depends
on timing. Weights are compared with ``torch.equal``: on CPU in deterministic mode a
resumed run is promised to be bit-identical, so no tolerance is allowed.
"""

import copy
import math
import os
import signal

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException

from faconvlstm.training import fit, load_checkpoint


class SigtermAt(L.Callback):
    """Send SIGTERM to this process when optimiser step ``step`` starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def _interrupted(cfg, out, step):
    with pytest.raises(SIGTERMException):
        fit(copy.deepcopy(cfg), out=out, callbacks=[SigtermAt(step)])
    return load_checkpoint(out / "checkpoints" / "last.ckpt")


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert torch.equal(value, b[name]), name


@pytest.fixture(scope="module")
def reference_cosine(tmp_path_factory, tiny_for_module):
    """The uninterrupted 2-epoch cosine/dropout/shuffle run: final checkpoint."""
    out = tmp_path_factory.mktemp("ref") / "run"
    fit(copy.deepcopy(tiny_for_module), out=out)
    return load_checkpoint(out / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("step", [2, 3, 4])  # mid-epoch 0, its last batch, epoch 1 starts
def test_sigterm_and_resume_with_cosine_is_bit_identical(tmp_path, tiny, reference_cosine, step):
    out = tmp_path / "run"
    saved = _interrupted(tiny, out, step)
    assert saved["global_step"] == step + 1  # saved after the batch during which it arrived
    fit(copy.deepcopy(tiny), out=out, resume=True)
    final = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert final["global_step"] == reference_cosine["global_step"] == 8
    _assert_same_weights(final["state_dict"], reference_cosine["state_dict"])


def test_sigterm_and_resume_without_shuffling_is_bit_identical(tmp_path, tiny):
    tiny["data"]["shuffle"] = False
    fit(copy.deepcopy(tiny), out=tmp_path / "ref")
    reference = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.ckpt")
    _interrupted(tiny, tmp_path / "run", 5)
    fit(copy.deepcopy(tiny), out=tmp_path / "run", resume=True)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    _assert_same_weights(final["state_dict"], reference["state_dict"])


def _lr_trace(ckpt_dir):
    """Learning rate of every step from the CSV logs of all (re)starts, in step order."""
    import pandas as pd

    frames = [pd.read_csv(p) for p in sorted(ckpt_dir.parent.glob("csv/version_*/metrics.csv"))]
    logged = pd.concat(frames).dropna(subset=["lr-AdamW"])
    return logged.groupby("step")["lr-AdamW"].last()


def test_resume_with_more_epochs_replans_the_cosine(tmp_path, tiny):
    """Resuming a finished 2-epoch (8-step) run with max_epochs=3 trains the extra steps at
    the rates of a 12-step plan (not at min_lr, no climb back to the base rate), and an
    interruption of the extended run resumes to the same weights as the straight extension."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    more = ["trainer.max_epochs=3"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    for out in (straight, broken):
        fit(copy.deepcopy(tiny), out=out)
    fit(
        copy.deepcopy(tiny),
        out=straight,
        resume=True,
        overrides=more,
        callbacks=[LearningRateMonitor("step")],
    )
    with pytest.raises(SIGTERMException):
        fit(copy.deepcopy(tiny), out=broken, resume=True, overrides=more, callbacks=[SigtermAt(9)])
    fit(copy.deepcopy(tiny), out=broken, resume=True, overrides=more)

    final = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 12
    assert final["lr_schedulers"][0]["plans"] == [[0, 8], [8, 12]]
    _assert_same_weights(
        load_checkpoint(broken / "checkpoints" / "last.ckpt")["state_dict"], final["state_dict"]
    )
    lr = _lr_trace(straight / "checkpoints")
    base = tiny["optim"]["lr"]
    # the rates of steps 8..11 are those of the 12-step plan (closed form; float rounding only)
    for step in range(8, 12):
        assert lr[step] == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * step / 12)), rel=1e-6)
    assert lr[8] < base / 2


class KeepFinal(L.Callback):
    """The in-memory state at the end of ``fit`` (global step and model weights)."""

    def on_fit_end(self, trainer, pl_module):
        self.step = trainer.global_step
        self.weights = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}


@pytest.mark.parametrize("stop", [{}, {"max_steps": 5}])  # 8 steps (epoch end), 5 (mid-epoch)
def test_last_ckpt_holds_the_final_weights_whatever_the_step_count(tmp_path, tiny, stop):
    from faconvlstm.training import embed, load_model

    tiny["trainer"].update(stop)  # checkpoint.every_n_train_steps = 3 divides neither 8 nor 5
    keep = KeepFinal()
    last = fit(copy.deepcopy(tiny), out=tmp_path / "run", callbacks=[keep])
    assert keep.step == stop.get("max_steps", 8)
    assert load_checkpoint(last)["global_step"] == keep.step
    model, _ = load_model(last)  # what `faconvlstm embed --ckpt last.ckpt` runs
    _assert_same_weights(model.state_dict(), keep.weights)
    assert embed(last, tmp_path / "emb.nc")[0].is_file()


def test_a_second_fit_into_a_locked_directory_is_refused(tmp_path, tiny, capsys):
    """While one run holds ``out/.fit.lock`` (here: this test, as another process would), a
    second ``fit`` there exits 2 naming the lock file and touches nothing."""
    from filelock import FileLock

    from faconvlstm.cli import main
    from faconvlstm.files import atomic_write_json
    from faconvlstm.training.config import ConfigError

    out = tmp_path / "run"
    out.mkdir()
    atomic_write_json(
        {"pid": 4242, "host": "node7", "started": "2026-01-01T00:00:00"}, out / ".fit.lock.json"
    )
    with FileLock(out / ".fit.lock", timeout=0):
        with pytest.raises(ConfigError, match=r"pid 4242 on node7.*\.fit\.lock"):
            fit(copy.deepcopy(tiny), out=out)
        config = tmp_path / "tiny.yaml"
        config.write_text(yaml.safe_dump(tiny))
        assert main(["fit", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another `faconvlstm fit` is writing into" in err and "Traceback" not in err
    assert not (out / "checkpoints").exists()


def test_the_lock_is_released_after_sigterm_and_after_a_killed_process(tmp_path, tiny):
    import subprocess
    import sys

    out = tmp_path / "run"
    _interrupted(tiny, out, 2)  # SIGTERM: the exception path releases the lock
    # a process killed while holding the lock: the kernel drops its flock
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, filelock; "
            f"filelock.FileLock({str(out / '.fit.lock')!r}).acquire(); "
            "os.kill(os.getpid(), signal.SIGKILL)",
        ],
        timeout=60,
    )
    assert holder.returncode == -signal.SIGKILL
    fit(copy.deepcopy(tiny), out=out, resume=True)
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 8
