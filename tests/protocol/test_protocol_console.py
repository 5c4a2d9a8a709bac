"""What ``faconvlstm compare`` prints: one start line that names the layer-cost phase, the
outer bar, and the two result paths; no Lightning banners and no nested ``fit`` lines."""

import yaml
from tiny_compare import TINY

from faconvlstm.cli import main

NOISE = (
    "GPU available",
    "TPU available",
    "Tip:",
    "weights_only",
    "`Trainer.fit` stopped",
    "LeafSpec",
    "faconvlstm fit:",  # the per-run start/closing lines belong to `faconvlstm fit` only
    "Epoch ",  # no nested Lightning training bars inside the compare bar
)


def test_compare_prints_a_start_line_and_the_result_paths_only(tmp_path, capfd):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    assert main(["compare", "--config", str(config), "--out", str(out)]) == 0
    captured = capfd.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 3, captured.out
    start = lines[0]
    assert start.startswith("faconvlstm compare: 6 runs (fa, convlstm, eof; seeds 0, 1)")
    assert "first the layer cost: one fa and one convlstm layer (filters 4)" in start
    assert lines[1:] == [f"results: {out / 'results.json'}", f"report:  {out / 'report.md'}"]
    assert "compare: 100%" in captured.err  # the outer bar is there
    for noise in NOISE:
        assert noise not in captured.out + captured.err, noise

    # a rerun reuses the finished runs and the cached cost, and says so
    assert main(["compare", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    captured = capfd.readouterr()
    assert "layer cost already measured (cost.json)" in captured.out.splitlines()[0]
    assert captured.err == ""
