"""`faconvlstm compare` end to end on a tiny configuration: schema, report, resumption."""

import json

import numpy as np
import pytest
import yaml

from faconvlstm.cli import main
from faconvlstm.evaluation.compare import (
    SCHEMA_VERSION,
    compare,
    load_compare_config,
    summarise,
)

TINY = {
    "seeds": [0, 1],
    "threads": 1,  # tiny tensors: one thread avoids thread-pool contention on shared CPUs
    "models": ["fa", "convlstm", "eof"],
    "train": {
        "data": {
            "source": "synthetic",
            "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
            "window": 4,
            "stride": 4,
            "train_years": [2000, 2000],
            "val_years": [2001, 2001],
            "batch_size": 16,
        },
        "model": {"filters": [4], "embed_dim": 8},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "limit_train_batches": 3,
            "limit_val_batches": 2,
            "log_every_n_steps": 1,
        },
        "checkpoint": {"every_n_train_steps": None},
    },
    "evaluation": {
        "noise_sigmas": [0.0, 0.5],
        "mask_fractions": [0.3],
        "block": [2, 4],
        "probe_windows": 4,
    },
    "cost": {
        "filters": 4,
        "in_channels": 3,
        "batch": 1,
        "grids": [[8, 16]],
        "steps": [4],
        "repeats": 1,
        "memory": False,
    },
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    path = compare(TINY, out, progress=False)
    return out, json.loads(path.read_text())


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


def test_report_and_figures_are_written(finished):
    out, _ = finished
    report = (out / "report.md").read_text()
    assert "Where FA does not win" in report
    assert "attribution by occlusion" in report
    assert "| tp |" in report
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


def test_config_errors_name_the_key():
    from faconvlstm.training.config import ConfigError

    with pytest.raises(ConfigError, match=r"evaluation\.sigmas"):
        load_compare_config({**TINY, "evaluation": {"sigmas": [1.0]}})
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        load_compare_config({**TINY, "seeds": [0]})
    with pytest.raises(ConfigError, match="autoencoders"):
        load_compare_config(
            {
                **TINY,
                "train": {
                    **TINY["train"],
                    "task": "forecast",
                    "data": {**TINY["train"]["data"], "horizon": 2},
                },
            }
        )


def test_summary_of_seeds_with_identical_embeddings_is_perfectly_stable():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(loc=c * 10.0, size=(50, 3)) for c in range(3)])
    curve = {"level": [0.0, 1.0], "cosine": [1.0, 0.5], "ari": [1.0, 0.25]}
    seed = {
        "ari_truth": 0.5,
        "robustness": {"noise": curve, "random_mask": curve, "block_mask": curve},
        "attribution": {"t2m": 0.2},
    }
    out = summarise([seed, {**seed, "ari_truth": 0.7}], [z, z.copy()], k=3)
    assert out["stability_cka"] == pytest.approx(1.0)
    assert out["stability_ari"] == pytest.approx(1.0)
    assert out["ari_truth"] == pytest.approx(0.6)
    assert out["ari_truth_sd"] == pytest.approx(0.1)
    assert out["robustness_cos"] == {"0": 1.0, "1": 0.5}
    assert out["robustness_cos_mean"] == pytest.approx(0.5)  # σ = 0 is not a perturbation
    assert out["attribution"] == {"t2m": pytest.approx(0.2)}
