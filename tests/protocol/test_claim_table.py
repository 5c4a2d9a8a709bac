"""benchmarks/claim/table.py: the screen table and the two-fold decision rule."""

import json

import pytest
from tiny_compare import claim_script

BASE = {
    "ari_truth": 0.3,
    "stability_cka": 0.8,
    "probe_r2": 0.1,
    "probe_r2_index": 0.2,
    "probe_acc_regime": 0.9,
    "recon_rmse": 1.0,
}


@pytest.fixture
def table():
    yield from claim_script("table", module_name="claim_table")


def _row(setting, fold, **changes):
    return {
        "setting": setting,
        "fold": fold,
        "seeds": [0, 1, 2],
        "wall_s": 1.0,
        "metrics": {"fa": {**BASE, **changes}},
        "final_losses": {},
    }


def _log(tmp_path, rows):
    path = tmp_path / "screen.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_setting_ships_only_if_its_fold_mean_beats_the_base_on_every_metric(tmp_path, table):
    better = {k: v + (-0.01 if k == "recon_rmse" else 0.01) for k, v in BASE.items()}
    rows = [
        _row("base", "2003"),
        _row("base", "2000"),
        # better on average on every metric, though worse in one fold on the probe
        _row("good", "2003", **{**better, "probe_r2": 0.05}),
        _row("good", "2000", **{**better, "probe_r2": 0.2}),
        # better everywhere but on RMSE (higher is worse there)
        _row("rmse_worse", "2003", **{**better, "recon_rmse": 1.02}),
        _row("rmse_worse", "2000", **better),
        # scored on one fold only: not decided
        _row("one_fold", "2003", **better),
        _row("one_fold", "2003", **BASE),  # a later line of the same key wins
    ]
    ref, decided = table.decide(table.read_log(_log(tmp_path, rows)), "base")
    assert ref == pytest.approx(BASE)
    verdicts = {v["setting"]: v for v in decided}
    assert set(verdicts) == {"good", "rmse_worse"}
    assert verdicts["good"]["ships"] and verdicts["good"]["folds"] == ["2000", "2003"]
    assert verdicts["good"]["means"]["probe_r2"] == pytest.approx(0.125)
    assert not verdicts["rmse_worse"]["ships"]
    assert verdicts["rmse_worse"]["means"]["recon_rmse"] == pytest.approx(1.005)  # > 1.0
    assert table.read_log(_log(tmp_path, rows))[("one_fold", 3, "2003")]["metrics"]["fa"] == BASE


def test_the_table_prints_seed_sd_where_the_results_are_beside_the_log(tmp_path, table, capsys):
    log = _log(tmp_path, [_row("base", "2003"), _row("base", "2000")])
    run = tmp_path / "base_s3"
    run.mkdir()
    summary = {"ari_truth_sd": 0.05, "recon_rmse_sd": 0.002}
    (run / "results.json").write_text(json.dumps({"models": {"fa": {"summary": summary}}}))
    table.main([str(log), "--decide", "base"])
    out = capsys.readouterr().out.splitlines()
    assert "| base | 2003 | 3 | 1 | fa | 0.300 ± 0.050 |" in out[2]
    assert "± " not in out[3]  # fold 2000: base_s3_f2000/results.json is absent
    assert out[-1] == "| base | 0.300 | 0.800 | 0.100 | 0.200 | 0.900 | 1.000 | – |"
    with pytest.raises(SystemExit, match="no row of the setting 'nope'"):
        table.decide(table.read_log(log), "nope")
