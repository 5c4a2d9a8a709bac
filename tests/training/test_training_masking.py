"""The masked spatio-temporal objective of the autoencoder task (``loss.masking``, issue 14)."""

import copy
import csv

import numpy as np
import pytest
import torch

from faconvlstm.losses import latitude_weights, weighted_mse
from faconvlstm.models import SequenceAutoencoder
from faconvlstm.training import AutoencoderTask, fit
from faconvlstm.training.config import ConfigError, LossConfig, MaskingConfig, load_config
from faconvlstm.training.modules import draw_hidden, masked_batch, masking_rng

B, T, C, H, W = 2, 4, 2, 8, 16
LAT = np.linspace(-70, 70, H)


def _batch(seed: int = 0) -> dict:
    """A normalised batch with a land column (invalid cells) and one NaN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, H, W, generator=g)
    mask = torch.ones(B, T, C, H, W, dtype=torch.bool)
    mask[..., 3] = False  # "land": never valid
    x[0, 1, 0, 2, 5] = float("nan")
    phase = torch.linspace(0, 0.5, T).repeat(B, 1)
    return {"x": x, "mask": mask, "phase": phase}


def _task(masking: MaskingConfig | None = None, seed: int = 0) -> AutoencoderTask:
    torch.manual_seed(seed)
    model = SequenceAutoencoder(C, filters=(4,), embed_dim=8, cell="fa")
    loss = LossConfig() if masking is None else LossConfig(masking=masking)
    return AutoencoderTask(model, lat=LAT, loss=loss, metadata={"config": {"seed": seed}})


def test_fraction_zero_is_todays_objective_bit_for_bit():
    batch = _batch()
    plain = _task()
    # today's objective, written out: wMSE of the reconstruction of the whole input + λ·reg
    out = plain.model(batch["x"], times=batch["phase"], mask=batch["mask"])
    expected = weighted_mse(out["recon"], batch["x"], latitude_weights(LAT), batch["mask"])
    expected = expected + plain.model.regularization_loss()
    off = _task(MaskingConfig(fraction=0.0, kind="block", block=[2, 2], loss_on="all"))
    off.model.load_state_dict(plain.model.state_dict())
    rng_before = torch.get_rng_state()
    for task in (plain, off):
        loss, _ = task._loss(batch, train=True)
        assert torch.equal(loss, expected)
    assert torch.equal(torch.get_rng_state(), rng_before)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.75])
def test_random_masks_hide_the_configured_share_of_cells_at_every_step(fraction):
    hidden = draw_hidden((B, T, H, W), MaskingConfig(fraction=fraction), masking_rng(0, 1))
    assert hidden.shape == (B, T, 1, H, W) and hidden.dtype == torch.bool
    per_step = hidden.sum(dim=(2, 3, 4))
    assert torch.all(per_step == round(fraction * H * W))


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6])
def test_block_masks_cover_at_least_the_share_and_at_most_one_block_more(fraction):
    cfg = MaskingConfig(fraction=fraction, kind="block", block=[3, 4])
    hidden = draw_hidden((B, T, H, W), cfg, masking_rng(0, 2))
    share = hidden.sum(dim=(2, 3, 4)).double() / (H * W)
    assert torch.all(share >= fraction)
    assert torch.all(share < fraction + 12 / (H * W))


def test_block_masks_are_rectangles_of_the_configured_size():
    # 0.05 of 128 cells = 6.4 <= one 3x4 block: exactly one rectangle per step
    cfg = MaskingConfig(fraction=0.05, kind="block", block=[3, 4])
    hidden = draw_hidden((B, T, H, W), cfg, masking_rng(0, 3))[:, :, 0]
    corners = set()
    for cell in hidden.reshape(B * T, H, W):
        rows, cols = torch.nonzero(cell, as_tuple=True)
        assert rows.max() - rows.min() + 1 == 3 and cols.max() - cols.min() + 1 == 4
        assert int(cell.sum()) == 12  # the bounding box is full: a rectangle
        corners.add((int(rows.min()), int(cols.min())))
    assert len(corners) > 1  # positions vary


def test_masks_are_set_by_their_keys_only():
    cfg = MaskingConfig(fraction=0.3)
    a = draw_hidden((B, T, H, W), cfg, masking_rng(0, 5, 0, 7))
    again = draw_hidden((B, T, H, W), cfg, masking_rng(0, 5, 0, 7))
    other_step = draw_hidden((B, T, H, W), cfg, masking_rng(0, 5, 0, 8))
    assert torch.equal(a, again) and not torch.equal(a, other_step)


def test_hidden_cells_are_invisible_to_the_model_and_the_loss_ignores_visible_cells():
    m = MaskingConfig(fraction=0.3)
    task = _task(m)
    batch = _batch()
    hidden = task._training_hidden(batch)
    assert hidden is not None
    model_mask, loss_mask = masked_batch(batch, hidden)
    valid = batch["mask"]
    assert torch.equal(loss_mask, valid & hidden) and torch.equal(model_mask, valid & ~hidden)
    pred, target, mask = task._predict(batch, train=True)
    weights = latitude_weights(LAT)
    loss = weighted_mse(pred, target, weights, mask)
    assert torch.equal(task._loss(batch, train=True)[1], loss)  # same masks on a second call
    # 1) the model does not see hidden cells: new values there leave the reconstruction
    hidden5 = hidden.expand_as(batch["x"])
    changed = dict(batch, x=torch.where(hidden5, batch["x"] + 100.0, batch["x"]))
    pred2, target2, _ = task._predict(changed, train=True)
    assert torch.equal(pred2, pred)
    assert not torch.equal(weighted_mse(pred2, target2, weights, mask), loss)  # scored there
    # 2) the loss ignores visible target cells
    visible_target = torch.where(hidden5, target, target + 100.0)
    assert torch.equal(weighted_mse(pred, visible_target, weights, mask), loss)
    # 3) loss_on="all" scores every valid cell with the same masked input
    task_all = _task(MaskingConfig(fraction=0.3, loss_on="all"))
    pred_all, _, mask_all = task_all._predict(batch, train=True)
    assert torch.equal(pred_all, pred) and torch.equal(mask_all, valid)


def test_training_masks_follow_seed_and_step_not_the_global_rng():
    m = MaskingConfig(fraction=0.3)
    batch = _batch()
    task = _task(m)
    first = task._training_hidden(batch)
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the point: global RNG state does not matter)
    assert torch.equal(task._training_hidden(batch), first)
    before = torch.get_rng_state()
    task._loss(batch, train=True)
    assert torch.equal(torch.get_rng_state(), before)  # no global draw (no dropout here)
    assert not torch.equal(_task(m, seed=1)._training_hidden(batch), first)  # run seed
    assert not torch.equal(
        _task(MaskingConfig(fraction=0.3, seed=4))._training_hidden(batch), first
    )  # masking.seed


def test_validation_logs_the_plain_loss_and_a_fixed_masked_loss():
    task = _task(MaskingConfig(fraction=0.3))
    logged = {}
    task.log = lambda name, value, **kw: logged.setdefault(name, []).append(value)
    batch = _batch()
    task.validation_step(batch, 0)
    task.validation_step(batch, 0)
    plain = _task()
    plain.model.load_state_dict(task.model.state_dict())
    assert torch.equal(logged["val/mse"][0], plain._loss(batch, train=False)[1])
    first, second = logged["val/masked_mse"]
    assert torch.equal(first, second)  # fixed masks: the same value every epoch
    assert not torch.equal(first, logged["val/mse"][0])
    logged.clear()
    plain.log = task.log
    plain.validation_step(batch, 0)
    assert "val/masked_mse" not in logged  # off: not logged


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("fraction", 1.0, r"'loss\.masking\.fraction': .*\[0, 1\)"),
        ("fraction", -0.1, r"'loss\.masking\.fraction'"),
        ("block", [0, 4], r"'loss\.masking\.block': expected \[h, w\]"),
        ("block", [4], r"'loss\.masking\.block'"),
        ("kind", "blob", r"'loss\.masking\.kind': expected 'random' \| 'block'"),
        ("loss_on", "visible", r"'loss\.masking\.loss_on'"),
        ("fractoin", 0.3, r"unknown config key 'loss\.masking\.fractoin'"),
    ],
)
def test_bad_masking_values_name_the_dotted_key(tiny_config, key, value, match):
    cfg = copy.deepcopy(tiny_config)
    cfg["loss"] = {"masking": {key: value}}
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)


def test_masking_is_refused_for_the_forecast_task_and_a_block_larger_than_the_grid(
    tiny_config,
):
    cfg = copy.deepcopy(tiny_config)
    cfg.update(task="forecast", loss={"masking": {"fraction": 0.2}})
    cfg["data"]["horizon"] = 2
    with pytest.raises(ConfigError, match=r"'loss\.masking\.fraction': .*autoencoder"):
        load_config(cfg)
    big = MaskingConfig(fraction=0.2, kind="block", block=[H + 1, 2])
    with pytest.raises(ValueError, match=r"'loss\.masking\.block': a 9×2 block does not fit"):
        draw_hidden((B, T, H, W), big, masking_rng(0))


def test_a_masked_run_trains_logs_val_masked_mse_and_reloads(tmp_path, tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    cfg["loss"] = {"masking": {"fraction": 0.3, "kind": "block", "block": [2, 4]}}
    last = fit(cfg, out=tmp_path / "run", summary=False)
    with open(tmp_path / "run" / "csv" / "version_0" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    masked = [float(r["val/masked_mse"]) for r in rows if r.get("val/masked_mse")]
    plain = [float(r["val/mse"]) for r in rows if r.get("val/mse")]
    assert len(masked) == 1 and np.isfinite(masked[0]) and masked[0] != plain[0]
    restored = AutoencoderTask.load_from_checkpoint(last, map_location="cpu")
    assert restored.loss_cfg.masking == MaskingConfig(fraction=0.3, kind="block", block=[2, 4])


@pytest.mark.slow
def test_a_masked_run_killed_and_resumed_reaches_the_uninterrupted_weights(tmp_path, cli):
    """Masks keyed by the global step: a SIGKILL + --resume run draws the same masks
    (the machinery of test_training_resume, with masking and accumulation on)."""
    import yaml
    from test_training_resume import CONFIG, SCRIPT, _run

    from faconvlstm.training import load_checkpoint

    cfg = copy.deepcopy(CONFIG)
    cfg["loss"] = {"masking": {"fraction": 0.3, "kind": "block", "block": [2, 4]}}
    cfg["trainer"]["limit_train_batches"] = 8
    cfg["trainer"]["accumulate_grad_batches"] = 2  # 2 micro-batches per step, 8 steps
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    ref = _run([script, config, tmp_path / "ref", 0, "none"])
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.ckpt")["state_dict"]
    out = tmp_path / "killed"
    killed = _run([script, config, out, 5, "SIGKILL"])
    assert killed.returncode != 0
    last = out / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 5
    resumed = cli("fit", "--config", config, "--out", out, "--resume", timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = load_checkpoint(last)
    assert final["global_step"] == 8
    for name, value in reference.items():
        assert torch.equal(final["state_dict"][name], value), name
