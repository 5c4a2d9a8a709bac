"""benchmarks/claim/window_eof.py: per-day EOFs against window (extended) EOFs on the
training and validation years of a finished comparison (the test period is never opened)."""

import sys

import numpy as np
import pytest
from tiny_compare import TINY, claim_script, tiny_years

from faconvlstm.protocol.runs import compare

WINDOW = TINY["train"]["data"]["window"]
WIDTH = TINY["train"]["model"]["embed_dim"]


@pytest.fixture
def window_eof():
    yield from claim_script("window_eof")  # it imports fit_check, dropped with it


@pytest.fixture(scope="module")
def eof_only(tmp_path_factory):
    """The EOF baseline alone (nothing trained): train 2000, validation 2001, test 2002."""
    cfg = tiny_years(["eof"], 3, train=(2000, 2000), val=(2001, 2001), test=(2002, 2002))
    out = tmp_path_factory.mktemp("window_eof")
    compare(cfg, out, progress=False)
    return out


def test_training_windows_are_every_run_of_consecutive_days(window_eof):
    days = np.arange(6 * 2 * 3 * 4, dtype=float).reshape(6, 2, 3, 4)
    days[2, 0, 0, 0] = np.nan
    windows = window_eof.training_windows(days, 4)
    assert windows.shape == (3, 4, 2, 3, 4)
    for i in range(3):
        np.testing.assert_array_equal(windows[i], np.nan_to_num(days[i : i + 4]))


def test_window_eofs_of_full_rank_reconstruct_their_windows_exactly(window_eof):
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((10, 3, 2, 4, 5))
    lat = np.linspace(-60.0, 60.0, 4)
    code = window_eof.WindowEOF(9, lat).fit(windows)  # 10 centred windows span 9 dimensions
    np.testing.assert_allclose(code.reconstruct(windows), windows, atol=1e-8)
    # a lower rank loses something, and keeps the windows' mean
    low = window_eof.WindowEOF(2, lat).fit(windows).reconstruct(windows)
    assert np.abs(low - windows).max() > 0.1
    np.testing.assert_allclose(low.mean(0), windows.mean(0), atol=1e-8)


def test_scores_per_day_and_window_eofs_on_training_and_validation_years(eof_only, window_eof):
    rows = window_eof.window_eof(eof_only, ranks=[WIDTH, WINDOW * WIDTH])
    assert list(rows) == [
        "zero",
        f"per-day EOF ({WIDTH})",
        f"window EOF (rank {WIDTH})",
        f"window EOF (rank {WINDOW * WIDTH})",
    ]
    daily = rows[f"per-day EOF ({WIDTH})"]
    ceiling = rows[f"window EOF (rank {WINDOW * WIDTH})"]
    # Eckart-Young: E EOFs per day are one rank-T·E code of a window, so the best rank-T·E
    # window code explains more of the training windows (stride-1 fit, stride-T scoring
    # windows of the same days)
    assert ceiling["train explained"] > daily["train explained"] > 0
    # one window's worth of E numbers codes T days: less than E numbers per day
    assert rows[f"window EOF (rank {WIDTH})"]["train explained"] < daily["train explained"]
    for row in rows.values():
        for period in ("train", "validation"):
            assert row[f"{period} rmse"] > 0
            assert row[f"{period} explained"] < 1
    # the per-day row is the protocol's EOF baseline scored on the validation year
    fit_check = sys.modules["fit_check"]
    assert fit_check.fit_check(eof_only)["eof"][0]["validation rmse"] == pytest.approx(
        daily["validation rmse"], rel=1e-9
    )


def test_a_rank_above_the_number_of_windows_is_refused(eof_only, window_eof, capsys):
    with pytest.raises(SystemExit, match=r"rank 100000 is more than the \d+ training windows"):
        window_eof.main([str(eof_only), "--ranks", "100000"])
    window_eof.main([str(eof_only), "--ranks", "8"])
    assert capsys.readouterr().out.splitlines()[2].startswith("| zero | ")
