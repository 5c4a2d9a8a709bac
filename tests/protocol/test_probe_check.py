"""benchmarks/claim/probe_check.py: the probes of a finished comparison on its training
years only (the evaluation period is never embedded)."""

import numpy as np
import pytest
from tiny_compare import claim_script, tiny_years

from faconvlstm.protocol.runs import compare


@pytest.fixture
def probe_check():
    yield from claim_script("probe_check")


@pytest.fixture(scope="module")
def two_years(tmp_path_factory):
    """A finished tiny comparison (FA and EOF, 2 seeds) training on 2000-2001."""
    out = tmp_path_factory.mktemp("two_years")
    cfg = tiny_years(["fa", "eof"], 3, train=(2000, 2001), val=(2002, 2002))
    compare(cfg, out, progress=False)
    return out, cfg


def test_probe_check_scores_every_subject_and_seed_on_the_training_years(
    two_years, probe_check, capsys
):
    tmp_path, _ = two_years
    capsys.readouterr()  # compare's start line
    scores = probe_check.training_year_probes(tmp_path)
    assert set(scores) == {"fa", "eof"} and all(len(rows) == 2 for rows in scores.values())
    keys = {
        f"{t} {k}" for t in ("oscillator", "box index", "regime") for k in ("linear", "quadratic")
    }
    for rows in scores.values():
        for row in rows:
            assert set(row) == keys
            assert all(np.isfinite(v) and v <= 1.0 for v in row.values())
            assert 0.0 <= row["regime quadratic"] <= 1.0
    # EOF does not depend on the seed
    assert scores["eof"][0] == scores["eof"][1]
    probe_check.main([str(tmp_path)])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| subject | oscillator linear | oscillator quadratic")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| fa", "| eof"]


def test_probe_check_needs_two_training_years(finished, probe_check):
    out, _ = finished  # TINY trains on 2000 alone
    with pytest.raises(SystemExit, match="at least 2"):
        probe_check.training_year_probes(out)


def test_probe_check_by_window_position(two_years, probe_check, capsys):
    tmp_path, cfg = two_years
    capsys.readouterr()
    scores = probe_check.training_year_probes(tmp_path, by_position=True)
    steps = cfg["train"]["data"]["window"]
    targets = ("oscillator", "box index", "regime")
    want = {f"{t} linear t={s}" for t in targets for s in range(steps)}
    for rows in scores.values():
        assert all(set(row) == want for row in rows)
        assert all(np.isfinite(v) and v <= 1.0 for row in rows for v in row.values())
    # a position's probe sees that position's samples only: the EOF code of one day does
    # not depend on its neighbours, so its scores differ between positions only because
    # the sample sets do, and they do differ
    eof = scores["eof"][0]
    assert len({round(eof[f"oscillator linear t={s}"], 9) for s in range(steps)}) > 1
    probe_check.main([str(tmp_path), "--by-position"])
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| subject | probe | " + " | ".join(f"t={s}" for s in range(steps)) + " |"
    assert [line.split(" | ")[:2] for line in table[2:]] == [
        [f"| {m}", f"{t} linear"] for m in ("fa", "eof") for t in targets
    ]
