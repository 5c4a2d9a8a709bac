"""What ``faconvlstm fit`` prints: one line at the start, one at the end, no Lightning noise."""

import yaml

from faconvlstm.cli import main

NOISE = (
    "GPU available",
    "TPU available",
    "Tip:",
    "limit_val_batches",
    "limit_train_batches",
    "LOCAL_RANK",
    "Restoring states",
    "weights_only",
    "`Trainer.fit` stopped",
)


def test_fit_prints_a_start_line_and_a_closing_line_only(tmp_path, tiny_config, capfd):
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    out = tmp_path / "run"
    assert main(["fit", "--config", str(config), "--out", str(out)]) == 0
    captured = capfd.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2, captured.out
    start, end = lines
    assert start.startswith("faconvlstm fit: SequenceAutoencoder (fa cell)")
    assert "6 optimiser steps (3 batches x 2 epochs)" in start and str(out) in start
    best = out / "checkpoints" / "best.ckpt"
    assert "best val/loss" in end and f"({best})" in end
    assert f"next: faconvlstm embed --ckpt {best} --out {out / 'embeddings.nc'}" in end
    for noise in NOISE:
        assert noise not in captured.out + captured.err, noise

    # --resume on a finished run says what to change, and trains nothing
    assert main(["fit", "--config", str(config), "--out", str(out), "--resume"]) == 0
    captured = capfd.readouterr()
    assert captured.out.count("\n") == 1, captured.out
    assert "nothing to train" in captured.out
    assert "--resume --set trainer.max_epochs=N with N > 2" in captured.out
    for noise in NOISE:
        assert noise not in captured.out + captured.err, noise
