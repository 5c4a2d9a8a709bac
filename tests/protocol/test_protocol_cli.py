"""`faconvlstm compare` / `faconvlstm demo` on the command line: help, SIGTERM."""

import importlib

import pytest

from faconvlstm import cli as faconvlstm_cli


@pytest.mark.parametrize("command", ["compare", "demo"])
def test_compare_and_demo_have_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        faconvlstm_cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"faconvlstm {command}" in text and "--no-progress" in text


@pytest.mark.parametrize("argv", [["compare", "--config", "compare_demo"], ["demo"]])
def test_sigterm_exits_143_with_a_resume_hint(argv, monkeypatch, tmp_path, capsys):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def interrupted(*args, **kwargs):
        raise SIGTERMException

    monkeypatch.setattr(importlib.import_module("faconvlstm.protocol.runs"), "compare", interrupted)
    assert faconvlstm_cli.main([*argv, "--out", str(tmp_path)]) == 143
    assert "rerun the same command to resume" in capsys.readouterr().err


def test_an_invalid_compare_config_exits_2_naming_the_key(tmp_path, capsys):
    status = faconvlstm_cli.main(
        [
            "compare",
            "--config",
            "compare_demo",
            "--set",
            "seeds=[0]",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    assert "'seeds': stability needs at least 2 seeds" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_subcommands_are_registered_as_functions_only():
    with pytest.raises(TypeError, match="must be functions"):
        faconvlstm_cli.register_subcommand("x", "help", "faconvlstm.protocol:add", "m:run")
