"""benchmarks/claim/fit_check.py: reconstruction of a finished comparison on its training
and validation years (the test period is never opened), beside the EOFs."""

import numpy as np
import pytest
from tiny_compare import claim_script, tiny_years

from faconvlstm.protocol.heldout import year_of
from faconvlstm.protocol.runs import compare


@pytest.fixture
def fit_check():
    yield from claim_script("fit_check")


@pytest.fixture(scope="module")
def three_year_compare(tmp_path_factory):
    """fa and eof, 2 seeds; train 2000-2001, validation 2002, test 2003 (never scored)."""
    cfg = tiny_years(["fa", "eof"], 4, train=(2000, 2001), val=(2002, 2002), test=(2003, 2003))
    out = tmp_path_factory.mktemp("fit_check")
    compare(cfg, out, progress=False)
    return out


def test_the_scored_periods_are_the_training_and_validation_years(three_year_compare, fit_check):
    _, _, data = fit_check.validation_data(three_year_compare)
    assert set(np.unique(year_of(data.times.ravel()))) == {2002}
    assert set(np.unique(year_of(data.train_times.ravel()))) <= {2000, 2001}


def test_fit_check_scores_every_subject_and_seed(three_year_compare, fit_check, capsys):
    scores = fit_check.fit_check(three_year_compare)
    assert list(scores) == ["zero", "fa", "eof"]
    assert [len(rows) for rows in scores.values()] == [1, 2, 2]
    zero = scores["zero"][0]
    assert zero["train rmse"] > 0 and zero["validation rmse"] > 0
    for name in ("fa", "eof"):
        for row in scores[name]:
            for period in fit_check.PERIODS:
                rmse, explained = row[f"{period} rmse"], row[f"{period} explained"]
                assert np.isfinite(rmse) and rmse > 0
                assert explained == pytest.approx(1 - (rmse / zero[f"{period} rmse"]) ** 2)
    # EOFs are fitted to the training period: they explain a positive share of it, at
    # most all of it, and do not depend on the seed
    eof = scores["eof"][0]
    assert 0 < eof["train explained"] < 1
    assert scores["eof"][0] == scores["eof"][1]
    capsys.readouterr()
    fit_check.main([str(three_year_compare)])
    table = capsys.readouterr().out.splitlines()
    assert table[0] == (
        "| subject | train rmse | train explained | validation rmse | validation explained |"
    )
    assert [line.split(" | ")[0] for line in table[2:]] == ["| zero", "| fa", "| eof"]


def test_a_reconstruction_equal_to_the_field_has_zero_rmse(fit_check):
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 4, 8)).astype("float32")
    valid = np.ones(x.shape, dtype=bool)
    lat = np.linspace(-60, 60, 4)
    assert fit_check._rmse(x, x, valid, lat) == pytest.approx(0.0, abs=1e-7)
    assert fit_check._rmse(np.zeros_like(x), x, valid, lat) > 0.5
