"""benchmarks/claim/eof_gates.py: how far a compare's EOF-path models moved off the EOFs."""

import pytest
from tiny_compare import claim_script, tiny_years

from faconvlstm.protocol.runs import compare


@pytest.fixture
def eof_gates():
    yield from claim_script("eof_gates")


def _config(models, eof_path):
    """The tiny comparison on 3 years: train 2000, validation 2001, test 2002 (unread)."""
    cfg = tiny_years(models, 3, train=(2000, 2000), val=(2001, 2001), test=(2002, 2002))
    if eof_path:
        cfg["train"]["model"]["eof_path"] = True
    return cfg


def test_gates_of_trained_models_and_the_share_of_their_learned_part(tmp_path, eof_gates, capsys):
    compare(_config(models=["fa", "eof"], eof_path=True), tmp_path, progress=False)
    rows = eof_gates.gate_rows(tmp_path)
    assert [(r["model"], r["seed"]) for r in rows] == [("fa", 0), ("fa", 1)]  # not the EOFs
    for row in rows:
        assert row["gamma_z"] != 0 and row["gamma_x"] != 0  # training moved both gates
        # the learned part is the gate times a finite, nonzero output: a positive share
        assert 0 < row["z_share"] < 100 and 0 < row["x_share"] < 100
    capsys.readouterr()
    eof_gates.main([str(tmp_path)])
    assert capsys.readouterr().out.splitlines()[0].startswith("| model | seed | γ_z | γ_x |")


def test_a_comparison_without_the_path_is_refused(tmp_path, eof_gates):
    compare(_config(models=["fa"], eof_path=False), tmp_path, progress=False)
    with pytest.raises(SystemExit, match=r"no learned model with model\.eof_path"):
        eof_gates.main([str(tmp_path)])
