"""The window-contrastive term of the autoencoder task (``loss.contrastive``, issue 14)."""

import copy
import csv
import math

import numpy as np
import pytest
import torch

from faconvlstm.losses import latitude_weights, weighted_mse, window_contrastive_loss
from faconvlstm.models import SequenceAutoencoder
from faconvlstm.training import AutoencoderTask, fit
from faconvlstm.training.config import ConfigError, ContrastiveConfig, LossConfig, load_config

B, T, C, H, W = 3, 5, 2, 8, 16
LAT = np.linspace(-70, 70, H)


def _reference(z: torch.Tensor, tau: float) -> torch.Tensor:
    """The supervised-contrastive formula written as loops (anchors, positives, all others)."""
    b, t, _ = z.shape
    u = torch.nn.functional.normalize(z.reshape(b * t, -1).double(), dim=-1)
    total, n = 0.0, 0
    for a in range(b * t):
        others = [j for j in range(b * t) if j != a]
        denom = torch.logsumexp(torch.stack([u[a] @ u[j] / tau for j in others]), 0)
        positives = [j for j in others if j // t == a // t]
        total += -sum(float(u[a] @ u[p] / tau - denom) for p in positives) / len(positives)
        n += 1
    return torch.tensor(total / n, dtype=torch.float64)


def test_the_loss_equals_the_formula_written_out():
    z = torch.randn(B, T, 4, generator=torch.Generator().manual_seed(0))
    got = window_contrastive_loss(z, temperature=0.2)
    torch.testing.assert_close(got.double(), _reference(z, 0.2), rtol=1e-5, atol=1e-6)


def test_uninformative_codes_score_log_of_the_others_and_window_codes_score_near_zero():
    same = torch.ones(B, T, 4)
    torch.testing.assert_close(window_contrastive_loss(same), torch.tensor(math.log(B * T - 1)))
    # each window one orthogonal direction: positives at similarity 1, negatives at 0
    per_window = torch.eye(4)[:B, None, :].expand(B, T, 4) * 7.0
    low = window_contrastive_loss(per_window, temperature=0.05)
    # each positive scores -log(1 / ((T-1) + (B-1)·T·e^{-1/τ})) = log(T-1) + O(e^{-20})
    assert float(low) == pytest.approx(math.log(T - 1), abs=1e-6)
    assert float(low) < float(window_contrastive_loss(same))


def test_invalid_steps_take_no_part_and_their_gradient_is_zero():
    z = torch.randn(B, T, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[1, 2:] = False
    valid[2, :4] = False  # window 2 keeps one step: no positive, still a negative
    loss = window_contrastive_loss(z, 0.1, valid)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert torch.equal(z.grad[1, 2:], torch.zeros_like(z.grad[1, 2:]))
    assert torch.equal(z.grad[2, :4], torch.zeros_like(z.grad[2, :4]))
    assert z.grad[2, 4].abs().sum() > 0  # a negative of the others' anchors
    # the same as dropping the invalid steps by hand (windows of unequal length)
    keep = [z[0].detach(), z[1, :2].detach(), z[2, 4:].detach()]
    u = torch.nn.functional.normalize(torch.cat(keep).double(), dim=-1)
    window = torch.tensor([0] * T + [1] * 2 + [2])
    total = []
    for a in range(len(u)):
        others = [j for j in range(len(u)) if j != a]
        pos = [j for j in others if window[j] == window[a]]
        if not pos:
            continue
        denom = torch.logsumexp(torch.stack([u[a] @ u[j] / 0.1 for j in others]), 0)
        total.append(-sum(float(u[a] @ u[p] / 0.1 - denom) for p in pos) / len(pos))
    assert loss.item() == pytest.approx(float(np.mean(total)), rel=1e-5)


def test_one_window_has_no_negatives_and_bad_inputs_are_refused():
    assert float(window_contrastive_loss(torch.randn(1, T, 4))) == 0.0
    with pytest.raises(ValueError, match=r"\(B, T, E\)"):
        window_contrastive_loss(torch.randn(B, T))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        window_contrastive_loss(torch.randn(B, T, 4), temperature=0.0)


def _batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, H, W, generator=g)
    mask = torch.ones(B, T, C, H, W, dtype=torch.bool)
    mask[..., 3] = False
    return {"x": x, "mask": mask, "phase": torch.linspace(0, 0.5, T).repeat(B, 1)}


def _model(seed: int = 0) -> SequenceAutoencoder:
    torch.manual_seed(seed)
    return SequenceAutoencoder(C, filters=(4,), embed_dim=8, head_kwargs={"norm": "layer"})


def test_the_task_loss_is_reconstruction_plus_weight_times_the_contrastive_term():
    batch, model = _batch(), _model()
    task = AutoencoderTask(model, lat=LAT, loss=LossConfig(contrastive={"weight": 0.5}))
    out = model(batch["x"], times=batch["phase"], mask=batch["mask"])
    w = latitude_weights(LAT)
    recon = weighted_mse(out["recon"], batch["x"], w, batch["mask"]) + model.regularization_loss()
    con = window_contrastive_loss(out["embeddings"], 0.1)
    loss, _ = task._loss(batch, train=True)
    torch.testing.assert_close(loss, recon + 0.5 * con)
    val_loss, _ = task._loss(batch, train=False)  # validation: the reconstruction only
    torch.testing.assert_close(val_loss, recon)
    off = AutoencoderTask(model, lat=LAT)
    assert torch.equal(
        off._loss(batch, True)[0],
        AutoencoderTask(
            model, lat=LAT, loss=LossConfig(contrastive={"weight": 0.0, "temperature": 0.5})
        )._loss(batch, True)[0],
    )


def test_a_step_with_no_valid_cell_is_left_out_by_the_task():
    batch = _batch()
    batch["mask"][0, 1:] = False  # window 0 keeps one valid step
    task = AutoencoderTask(_model(), lat=LAT, loss=LossConfig(contrastive={"weight": 1.0}))
    task._outputs = task.model(batch["x"], times=batch["phase"], mask=batch["mask"])
    z = task._outputs["embeddings"]
    steps = torch.ones(B, T, dtype=torch.bool)
    steps[0, 1:] = False
    torch.testing.assert_close(
        task._contrastive_loss(batch), window_contrastive_loss(z, 0.1, steps)
    )
    assert not torch.isclose(task._contrastive_loss(batch), window_contrastive_loss(z, 0.1))


def test_training_on_the_term_makes_the_code_tell_windows_apart():
    # windows that differ only in a persistent amplitude, hidden under day-to-day noise:
    # a few dozen steps of the term must bring the loss well below its chance value
    g = torch.Generator().manual_seed(0)
    level = torch.linspace(-2, 2, 6)[:, None, None, None, None]
    x = level * torch.ones(6, T, C, H, W) + 0.5 * torch.randn(6, T, C, H, W, generator=g)
    batch = {"x": x, "mask": None, "phase": torch.zeros(6, T)}
    model = _model()
    task = AutoencoderTask(model, loss=LossConfig(contrastive={"weight": 1.0}))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        task._loss(batch, train=True)[0].backward()
        opt.step()
    with torch.no_grad():
        task._outputs = model(x, times=batch["phase"])
        after = float(task._contrastive_loss(batch))
    chance = math.log(6 * T - 1)
    assert after < 0.75 * chance, (after, chance)


@pytest.mark.parametrize(
    ("loss", "data", "task", "match"),
    [
        ({"weight": -1.0}, {}, None, r"'loss\.contrastive\.weight': must be >= 0"),
        ({"temperature": 0.0}, {}, None, r"'loss\.contrastive\.temperature': must be > 0"),
        ({"weight": 1.0}, {"batch_size": 1}, None, r"'data\.batch_size' is 1"),
        ({"weight": 1.0}, {"horizon": 2}, "forecast", r"'loss\.contrastive\.weight'.*autoencoder"),
        ({"wieght": 1.0}, {}, None, r"unknown config key 'loss\.contrastive\.wieght'"),
    ],
)
def test_bad_contrastive_settings_name_the_dotted_key(tiny_config, loss, data, task, match):
    cfg = copy.deepcopy(tiny_config)
    cfg["loss"] = {"contrastive": loss}
    cfg["data"].update(data)
    if task:
        cfg["task"] = task
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)


def test_a_contrastive_run_logs_both_terms_and_reloads(tmp_path, tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    cfg["loss"] = {"contrastive": {"weight": 0.3, "temperature": 0.2}}
    last = fit(cfg, out=tmp_path / "run", summary=False)
    with open(tmp_path / "run" / "csv" / "version_0" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    for key in ("train/contrastive", "val/contrastive"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and all(np.isfinite(values)), key
    restored = AutoencoderTask.load_from_checkpoint(last, map_location="cpu")
    assert restored.loss_cfg.contrastive == ContrastiveConfig(weight=0.3, temperature=0.2)
