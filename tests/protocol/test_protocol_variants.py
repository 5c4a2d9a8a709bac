"""Ablation variants: configuration, plan, one training like a model, one report table."""

import copy
import json
import shutil

import pytest
from tiny_compare import TINY

from faconvlstm.protocol.config import load_compare_config, run_config
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.results import METRICS, Results
from faconvlstm.protocol.runs import compare
from faconvlstm.training.config import ConfigError

NO_ATTENTION = {"name": "no_attention", "model": {"layer_kwargs": {"attention_every": 0}}}


def _with(*variants, **layer_kwargs):
    cfg = copy.deepcopy(TINY)
    if layer_kwargs:  # FA options: under model_overrides (ConvLSTM2D would refuse them)
        cfg["model_overrides"] = {"fa": {"layer_kwargs": layer_kwargs}}
    cfg["variants"] = list(variants)
    return cfg


def test_a_variant_is_its_base_with_model_and_train_merged_recursively():
    cfg = load_compare_config(
        _with(
            {
                "name": "one_branch",
                "model": {"layer_kwargs": {"dilation_rates": [1]}},
                "train": {"optim": {"lr": 0.01}},
            },
            attention_every=2,
            se_ratio=2,
        )
    )
    run = run_config(cfg, "one_branch", 1)
    assert run.model["cell"] == "fa" and run.seed == 1
    # layer_kwargs merged, not replaced: the shared keys survive the variant's
    assert run.model["layer_kwargs"] == {"attention_every": 2, "se_ratio": 2, "dilation_rates": [1]}
    assert run.optim.lr == 0.01
    assert run.data == run_config(cfg, "fa", 1).data  # same data, seeds and budget
    assert run_config(cfg, "fa", 1).optim.lr != 0.01  # the base is untouched
    convlstm = load_compare_config(
        _with({"name": "cl_wide", "base": "convlstm", "model": {"filters": [8]}})
    )
    assert run_config(convlstm, "cl_wide", 0).model["cell"] == "convlstm"


def test_variant_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"variants\[0\]\.name': 'fa' must be unique"):
        load_compare_config(_with({"name": "fa"}))
    with pytest.raises(ConfigError, match=r"variants\[1\]\.name': 'a' must be unique"):
        load_compare_config(_with({"name": "a"}, {"name": "a"}))
    with pytest.raises(ConfigError, match=r"variants\[0\]\.name': 'a/b'"):
        load_compare_config(_with({"name": "a/b"}))
    with pytest.raises(ConfigError, match=r"variants\[0\]\.base': 'eof' is not a learned"):
        load_compare_config(_with({"name": "x", "base": "eof"}))
    with pytest.raises(ConfigError, match=r"unknown config key 'variants\[0\]\.modle'"):
        load_compare_config(_with({"name": "x", "modle": {}}))
    with pytest.raises(ConfigError, match=r"variants\[0\]' \(x\).*trainer\.max_epoch"):
        load_compare_config(_with({"name": "x", "train": {"trainer": {"max_epoch": 1}}}))
    with pytest.raises(ConfigError, match="expected a list"):
        load_compare_config({**TINY, "variants": {"name": "x"}})


def test_variants_are_planned_after_the_subjects_with_their_own_folders(tmp_path):
    plan = make_plan(load_compare_config(_with(NO_ATTENTION)), tmp_path)
    assert plan.variants == ["no_attention"]
    runs = plan.runs_of("no_attention")
    assert [s.seed for s in runs] == TINY["seeds"]
    assert runs[0].paths.root == tmp_path / "runs" / "no_attention" / "seed0"
    assert runs[0].run.model["layer_kwargs"] == {"attention_every": 0}
    assert plan.learned_models == ["fa", "convlstm"]  # no cost sweep of a variant


def test_a_variant_is_trained_measured_and_reported_in_the_ablation_table(finished, tmp_path):
    out = tmp_path / "with_variant"
    shutil.copytree(finished[0], out)  # the subjects' finished runs are reused: only the
    path = compare(_with(NO_ATTENTION), out, progress=False)  # variant trains
    results = json.loads(path.read_text())
    assert set(results["models"]) == {"fa", "convlstm", "eof"}
    var = results["variants"]["no_attention"]
    assert [s["seed"] for s in var["seeds"]] == TINY["seeds"]
    assert var["seeds"][0]["attention_gamma"] == []  # really trained without attention
    headline = [m.key for m in METRICS if m.headline]
    for key in ("recon_rmse", "ari_truth", "stability_cka", "probe_r2"):
        assert var["summary"][key] is not None
    typed = Results.from_dict(results)
    assert list(typed.variants) == ["no_attention"]
    report = (out / "report.md").read_text()
    table = report.split("## Ablations")[1].split("## Figures")[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "---" not in r]
    assert rows[0].startswith("| variant | ari_truth ↑")
    assert [r.split(" | ")[0] for r in rows[1:]] == [
        "| FAConvLSTM (full)",
        "| no_attention (FAConvLSTM)",
    ]
    assert all(len(r.split(" | ")) == len(headline) + 1 for r in rows)
