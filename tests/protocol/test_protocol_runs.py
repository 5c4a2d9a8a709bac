"""`faconvlstm compare` end to end on a tiny configuration: schema, report, resumption."""

import json

import pytest
import yaml
from tiny_compare import TINY

from faconvlstm.cli import main
from faconvlstm.protocol.results import SCHEMA_VERSION


def test_results_hold_every_model_seed_and_summary_of_the_schema(finished):
    _, results = finished
    assert results["schema_version"] == SCHEMA_VERSION
    assert set(results["models"]) == {"fa", "convlstm", "eof"}
    for name, model in results["models"].items():
        assert {"params", "flops", "fwd_bwd_ms", "peak_mem_mb"} <= set(model["cost"])
        assert [s["seed"] for s in model["seeds"]] == [0, 1]
        summary = model["summary"]
        for key in ("stability_cka", "stability_ari", "ari_truth", "silhouette", "recon_rmse"):
            assert isinstance(summary[key], float), (name, key)
        assert set(summary["robustness_cos"]) == {"0", "0.5"}
        assert summary["robustness_cos"]["0"] == pytest.approx(1.0)
    fa, eof = results["models"]["fa"], results["models"]["eof"]
    assert fa["cost"]["params"] > 0 and eof["cost"]["flops"] is None
    # the EOF baseline is one deterministic SVD: identical embeddings for every seed
    assert eof["summary"]["stability_cka"] == pytest.approx(1.0)
    seed = fa["seeds"][0]
    assert len(seed["history"]["val_loss"]) == 2
    assert len(seed["drift"]["cka_drift"]) == 1
    assert 0.0 <= seed["attention_chance"] < 1.0
    assert set(seed["attribution"]) == {"t2m", "z500", "tp"}
    assert len(seed["attention_gamma"]) == 2  # encoder and decoder FA layers
    assert "attention_gamma" not in results["models"]["convlstm"]["seeds"][0]
    # the regime probe: every subject, and the single-day field baseline, in [0, 1]
    for model in results["models"].values():
        assert 0.0 <= model["summary"]["probe_acc_regime"] <= 1.0
        assert 0.0 <= model["summary"]["probe_acc_regime_quad"] <= 1.0
        assert isinstance(model["summary"]["probe_r2_quad"], float)
    assert 0.0 <= results["data"]["probe_acc_regime_field"] <= 1.0


def test_report_and_figures_are_written(finished):
    out, _ = finished
    report = (out / "report.md").read_text()
    assert "Where FA does not win" in report
    # every headline comparison of FA with a baseline is in exactly one of the two lists
    wins = report.split("## Where FA wins")[1].split("## Where FA does not win")[0]
    losses = report.split("## Where FA does not win")[1].split("\n## ")[0]
    n = wins.count("is better than") + losses.count("is worse than") + losses.count("ties")
    assert n > 0 and n == report.count("**: FA (")
    assert "attribution by occlusion" in report
    assert "| tp |" in report
    assert "linear-probe balanced accuracy of the true regime" in report
    assert "Regime persistence: a linear classifier of the true regime" in report
    for name in (
        "cost_scaling",
        "training_curves",
        "embeddings",
        "cluster_timeline",
        "attention_map",
        "robustness",
        "cluster_composites",
    ):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert f"figures/{name}.png" in report


def test_rerun_resumes_and_redoes_only_the_unfinished_run(finished, capsys):
    out, _ = finished
    runs = out / "runs"
    kept = runs / "convlstm" / "seed0" / "result.json"
    before = kept.stat().st_mtime_ns
    ckpt = runs / "fa" / "seed1" / "train" / "checkpoints" / "last.ckpt"
    ckpt_before = ckpt.stat().st_mtime_ns
    (runs / "fa" / "seed1" / "result.json").unlink()  # as if stopped during its evaluation
    (out / "results.json").unlink()
    cfg_path = out / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    assert main(["compare", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    assert "report.md" in capsys.readouterr().out
    assert kept.stat().st_mtime_ns == before
    assert ckpt.stat().st_mtime_ns == ckpt_before  # not retrained
    results = json.loads((out / "results.json").read_text())
    assert [s["seed"] for s in results["models"]["fa"]["seeds"]] == [0, 1]


def test_a_subject_without_a_fitting_step_is_an_error_not_an_eof(tmp_path):
    from faconvlstm.protocol.config import load_compare_config
    from faconvlstm.protocol.plan import RunSpec, make_plan
    from faconvlstm.protocol.runs import run_one

    plan = make_plan(load_compare_config(TINY), tmp_path)
    spec = RunSpec("pca2", 0, None, plan.layout.run("pca2", 0))
    with pytest.raises(NotImplementedError, match="'pca2' is neither learned nor EOF"):
        run_one(spec, plan, data=None)
    assert not spec.paths.result.exists()
