"""``evaluation.checkpoint``: a comparison measures each learned run at ``last.ckpt`` (the
end of the budget) or at ``best.ckpt`` (the epoch of lowest validation loss)."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from tiny_compare import TINY

from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.runs import compare, measured_model
from faconvlstm.training.checkpoint import CheckpointError, load_checkpoint
from faconvlstm.training.config import ConfigError

EPOCHS = 4


def _config(checkpoint):
    """FA alone for 4 epochs at a learning rate so high that the validation loss jumps
    about (seed 0's curve is 261, 2.0, 293, 19 on this machine: lowest at epoch 2), so
    the lowest-validation epoch is not the last one."""
    cfg = copy.deepcopy(TINY)
    cfg["models"] = ["fa"]
    cfg["train"]["trainer"]["max_epochs"] = EPOCHS
    cfg["train"]["optim"] = {"lr": 1.0}
    cfg["cost"]["enabled"] = False
    cfg["evaluation"]["checkpoint"] = checkpoint
    return cfg


@pytest.fixture(scope="module")
def at_best(tmp_path_factory):
    """``(out, results.json)`` of the comparison measured at ``best.ckpt``."""
    out = tmp_path_factory.mktemp("best")
    path = compare(_config("best"), out, progress=False)
    return out, json.loads(path.read_text())


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_default_measures_the_end_of_the_budget(finished):
    out, results = finished
    assert results["budget"]["checkpoint"] == "last"
    for name in ("fa", "convlstm"):
        for seed in results["models"][name]["seeds"]:
            assert seed["checkpoint"] == "last"
            assert seed["checkpoint_epoch"] == TINY["train"]["trainer"]["max_epochs"]
    assert "checkpoint" not in results["models"]["eof"]["seeds"][0]  # fitted, not trained
    assert "`last.ckpt` (the end of the budget)" in (out / "report.md").read_text()


def test_best_measures_the_epoch_of_lowest_validation_loss(at_best):
    out, results = at_best
    assert results["budget"]["checkpoint"] == "best"
    seeds = results["models"]["fa"]["seeds"]
    epochs = [s["checkpoint_epoch"] for s in seeds]
    for seed, epoch in zip(seeds, epochs):
        val = seed["history"]["val_loss"]
        assert len(val) == EPOCHS and seed["checkpoint"] == "best"
        assert epoch == int(np.argmin(val)) + 1
    assert min(epochs) < EPOCHS  # the setting chose an earlier epoch than the last somewhere
    report = (out / "report.md").read_text()
    assert "`best.ckpt` (the epoch of lowest validation loss" in report
    assert f"(epoch of each seed: FAConvLSTM {', '.join(map(str, epochs))})" in report


def test_the_measured_weights_are_those_of_best_ckpt(at_best):
    out, results = at_best
    plan = make_plan(load_compare_config(_config("best")), out)
    for spec in plan.runs_of("fa"):
        model, epoch = measured_model(spec)
        best = load_checkpoint(spec.paths.best_checkpoint)["state_dict"]
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, best[f"model.{key}"], rtol=0, atol=0)
        assert epoch == load_checkpoint(spec.paths.best_checkpoint)["epoch"] + 1
    # where best is not last, the two are different weights: the choice is real
    spec = next(
        s
        for s, r in zip(plan.runs_of("fa"), results["models"]["fa"]["seeds"])
        if r["checkpoint_epoch"] < EPOCHS
    )
    last = make_plan(load_compare_config(_config("last")), out).runs_of("fa")[spec.seed]
    a, b = _state(measured_model(spec)[0]), _state(measured_model(last)[0])
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_changing_the_setting_measures_again_without_training_again(at_best, tmp_path):
    src, best = at_best
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    done = sorted(out.glob("runs/fa/seed*/train/done.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    ckpts = {p: p.read_bytes() for p in out.glob("runs/fa/seed*/train/checkpoints/*.ckpt")}
    last = json.loads(compare(_config("last"), out, progress=False).read_text())
    assert [p.stat().st_mtime_ns for p in done] == stamps  # not trained again
    assert all(p.read_bytes() == b for p, b in ckpts.items())
    for b, s in zip(best["models"]["fa"]["seeds"], last["models"]["fa"]["seeds"]):
        assert (s["checkpoint"], s["checkpoint_epoch"]) == ("last", EPOCHS)
        assert s["history"] == b["history"]
        if b["checkpoint_epoch"] < EPOCHS:  # other weights, other reconstruction
            assert s["recon_rmse"] != b["recon_rmse"]
        else:
            assert s["recon_rmse"] == pytest.approx(b["recon_rmse"], rel=1e-6)


def test_best_without_best_ckpt_says_what_to_do(at_best, tmp_path):
    src, _ = at_best
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    spec = make_plan(load_compare_config(_config("best")), out).runs_of("fa")[0]
    spec.paths.best_checkpoint.unlink()
    with pytest.raises(CheckpointError, match=r"never logged 'val/loss'.*checkpoint: last"):
        measured_model(spec)


def test_the_setting_is_validated():
    with pytest.raises(ConfigError, match=r"evaluation\.checkpoint"):
        load_compare_config(_config("first"))
    cfg = _config("best")
    cfg["train"]["trainer"]["limit_val_batches"] = 0
    with pytest.raises(ConfigError, match=r"evaluation\.checkpoint.*limit_val_batches is 0"):
        load_compare_config(cfg)
    cfg["evaluation"]["checkpoint"] = "last"
    assert load_compare_config(cfg).evaluation.checkpoint == "last"
