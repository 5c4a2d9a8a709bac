"""The ``faconvlstm`` command: help, exit statuses, errors before work, end-to-end run."""

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from faconvlstm import cli as faconvlstm_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["fit", "embed", "predict"])
def test_every_subcommand_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        faconvlstm_cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"faconvlstm {command}" in text


def test_top_level_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        faconvlstm_cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("fit", "embed", "predict"):
        assert command in text


def test_unknown_config_key_exits_2_before_anything_is_written(tmp_path, tiny_config, capsys):
    tiny_config["trainer"]["max_epoch"] = 3
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    status = faconvlstm_cli.main(["fit", "--config", str(config), "--out", str(tmp_path / "run")])
    assert status == 2
    assert "trainer.max_epoch" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_wrong_type_exits_2_naming_key_and_type(tmp_path, tiny_config, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    status = faconvlstm_cli.main(
        [
            "fit",
            "--config",
            str(config),
            "--set",
            "data.window=long",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert status == 2
    assert "'data.window': expected int, got str" in capsys.readouterr().err


def test_check_validates_without_training(tmp_path, config_file, capsys):
    out = tmp_path / "run"
    status = faconvlstm_cli.main(
        ["fit", "--config", str(config_file), "--check", "--out", str(out)]
    )
    assert status == 0 and "valid" in capsys.readouterr().out
    assert not out.exists()


def test_sigterm_during_fit_exits_143(monkeypatch, config_file, capsys):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def interrupted(*args, **kwargs):
        raise SIGTERMException

    monkeypatch.setattr(importlib.import_module("faconvlstm.training.fit"), "fit", interrupted)
    assert faconvlstm_cli.main(["fit", "--config", str(config_file)]) == 143
    assert "--resume" in capsys.readouterr().err


def test_nan_loss_exits_1_with_the_message(monkeypatch, config_file, capsys):
    from faconvlstm.training.modules import NonFiniteLossError

    def diverged(*args, **kwargs):
        raise NonFiniteLossError("training loss is nan at global step 7")

    monkeypatch.setattr(importlib.import_module("faconvlstm.training.fit"), "fit", diverged)
    assert faconvlstm_cli.main(["fit", "--config", str(config_file)]) == 1
    assert "global step 7" in capsys.readouterr().err


def test_corrupt_checkpoint_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\0" * 64)
    assert faconvlstm_cli.main(["embed", "--ckpt", str(bad), "--out", str(tmp_path / "e.nc")]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "e.nc").exists()


def test_subcommand_from_a_missing_module_fails_alone(monkeypatch, capsys):
    def add(parser):
        importlib.import_module("faconvlstm.no_such_module")

    monkeypatch.setitem(
        faconvlstm_cli._SUBCOMMANDS,
        "missing",
        faconvlstm_cli._Subcommand("test", add, lambda args: 0),
    )
    assert faconvlstm_cli.main(["missing"]) == 2
    assert "not available" in capsys.readouterr().err


def test_quick_config_trains_then_embeds_and_predicts_from_the_checkpoint_alone(tmp_path, cli):
    out = tmp_path / "quick"
    res = cli(
        "fit", "--config", "quick", "--out", out, "--set", "trainer.max_epochs=1", timeout=300
    )
    assert res.returncode == 0, res.stderr[-3000:]
    last = out / "checkpoints" / "last.ckpt"
    assert last.is_file() and (out / "checkpoints" / "best.ckpt").is_file()

    res = cli("embed", "--ckpt", last, "--out", tmp_path / "emb.nc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    emb = xr.open_dataset(tmp_path / "emb.nc")
    assert emb.sizes["time"] == 731  # the whole synthetic record it was trained on
    assert np.isfinite(emb["embedding"].values).all()

    res = cli(
        "predict",
        "--ckpt",
        out / "checkpoints" / "best.ckpt",
        "--years",
        2001,
        2001,
        "--out",
        tmp_path / "recon.zarr",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    recon = xr.open_zarr(tmp_path / "recon.zarr")
    assert recon.sizes["time"] == 365 and len(recon.data_vars) > 0
    assert torch.load(last, weights_only=True)["faconvlstm"]["config"]["model"]["cell"] == "fa"
