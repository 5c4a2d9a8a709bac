"""The plan: one run spec per (subject, seed), one object owning the output layout."""

from pathlib import Path

import numpy as np
from tiny_compare import TINY

from faconvlstm.files import atomic_savez
from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.plan import Layout, make_plan


def test_plan_has_one_spec_per_subject_and_seed_with_its_run_config(tmp_path):
    cfg = load_compare_config(TINY)
    plan = make_plan(cfg, tmp_path)
    assert [(s.model, s.seed) for s in plan.specs] == [
        (m, seed) for m in ("fa", "convlstm", "eof") for seed in (0, 1)
    ]
    for spec in plan.specs:
        assert spec.learned == (spec.model != "eof")
        if spec.learned:
            assert (spec.run.model["cell"], spec.run.seed) == (spec.model, spec.seed)
        assert spec.paths == plan.layout.run(spec.model, spec.seed)
    assert plan.reference is plan.specs[0].run  # (fa, seed 0), built once
    assert plan.reference.model["cell"] == "fa" and plan.reference.seed == 0
    without_fa = make_plan(load_compare_config({**TINY, "models": ["convlstm", "eof"]}), tmp_path)
    assert without_fa.reference.model["cell"] == "fa"  # the data are those of the FA run
    assert plan.learned_models == ["fa", "convlstm"]
    assert list(tmp_path.iterdir()) == []  # planning writes nothing


def test_layout_names_every_file_of_the_documented_tree(tmp_path):
    layout = Layout(tmp_path)
    run = layout.run("fa", 3)
    expected = {
        layout.results: "results.json",
        layout.report: "report.md",
        layout.config: "compare.yaml",
        layout.cost: "cost.json",
        layout.figure("robustness"): "figures/robustness.png",
        run.train: "runs/fa/seed3/train",
        run.train_done: "runs/fa/seed3/train/done.json",
        run.last_checkpoint: "runs/fa/seed3/train/checkpoints/last.ckpt",
        run.epochs: "runs/fa/seed3/epochs",
        run.arrays: "runs/fa/seed3/arrays.npz",
        run.result: "runs/fa/seed3/result.json",
    }
    for path, relative in expected.items():
        assert path == tmp_path / relative
    assert layout.figure_link("robustness") == "figures/robustness.png"
    assert isinstance(Layout(str(tmp_path)).root, Path)


def test_run_paths_load_the_saved_arrays(tmp_path):
    run = Layout(tmp_path).run("eof", 0)
    assert run.load_arrays() is None
    atomic_savez(run.arrays, embeddings=np.eye(2))
    np.testing.assert_array_equal(run.load_arrays()["embeddings"], np.eye(2))
