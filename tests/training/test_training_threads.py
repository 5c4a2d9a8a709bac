"""``threads`` in a run configuration: auto by default, restored after the run."""

import pytest
import torch
import yaml

from faconvlstm import runtime
from faconvlstm.cli import main
from faconvlstm.training.config import ConfigError, RunConfig, load_config


def test_the_default_is_auto():
    assert RunConfig().threads == "auto"


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_a_bad_thread_count_names_the_key(bad):
    with pytest.raises(ConfigError, match="'threads'"):
        load_config("quick", [f"threads={bad}"])


def _fit(tmp_path, config, threads):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**config, "threads": threads}))
    return main(["fit", "--config", str(path), "--out", str(tmp_path / "run")])


def test_fit_restores_the_callers_thread_count(tmp_path, tiny_config):
    """fit used to leave torch at the configured count after returning (fails before)."""
    torch.set_num_threads(2)
    assert _fit(tmp_path, tiny_config, 1) == 0
    assert torch.get_num_threads() == 2


def test_fit_auto_trains_on_the_chosen_count_and_says_so(tmp_path, tiny_config, monkeypatch, capfd):
    for var in runtime.USER_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(runtime, "choose_threads", lambda: 1)
    seen = []
    from faconvlstm.training.datamodule import GriddedDataModule

    monkeypatch.setattr(GriddedDataModule, "setup", _recording(seen))
    torch.set_num_threads(2)
    assert _fit(tmp_path, tiny_config, "auto") == 0
    start = capfd.readouterr().out.splitlines()[0]
    assert ", 1 CPU threads -> " in start
    assert seen and set(seen) == {1}  # the data and the training saw the chosen count
    assert torch.get_num_threads() == 2


def _recording(seen):
    from faconvlstm.training.datamodule import GriddedDataModule

    original = GriddedDataModule.setup

    def setup(self, stage=None):
        seen.append(torch.get_num_threads())
        return original(self, stage)

    return setup
