"""The ``trainer`` section takes any ``lightning.Trainer`` argument, and Lightning's own
callbacks / loggers / profilers as ``class_path`` specs — nothing else."""

import copy

import pytest
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.profilers import SimpleProfiler

from faconvlstm.training.config import ConfigError, load_config
from faconvlstm.training.fit import make_trainer


def _trainer(tmp_path, tiny_config, **section):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(section)
    run = load_config(cfg)
    return run, make_trainer(run, tmp_path, [])


def test_plain_trainer_arguments_beyond_the_common_fields_reach_the_trainer(tmp_path, tiny_config):
    run, trainer = _trainer(
        tmp_path, tiny_config, detect_anomaly=True, profiler="simple", min_epochs=2
    )
    assert isinstance(trainer.profiler, SimpleProfiler)
    assert trainer.fit_loop.min_epochs == 2 and trainer._detect_anomaly is True
    assert run.to_dict()["trainer"]["detect_anomaly"] is True  # written back inline
    assert load_config(run.to_dict()).trainer.extra == run.trainer.extra  # round trip


def test_callback_and_logger_specs_are_instantiated(tmp_path, tiny_config):
    _, trainer = _trainer(
        tmp_path,
        tiny_config,
        callbacks=[
            {
                "class_path": "lightning.pytorch.callbacks.EarlyStopping",
                "init_args": {"monitor": "val/loss", "patience": 2},
            },
            {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"},
        ],
        logger=[
            {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(tmp_path), "name": "extra"},
            }
        ],
    )
    stop = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert stop.patience == 2
    assert any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)
    assert [type(lg).__name__ for lg in trainer.loggers] == [
        "CSVLogger",
        "TensorBoardLogger",
        "CSVLogger",
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"max_epoch": 3}, r"unknown config key 'trainer\.max_epoch'.*accepted keys: max_epochs"),
        ({"benchmark": "yes"}, r"'trainer\.benchmark': expected"),
        ({"default_root_dir": "/tmp"}, r"'trainer\.default_root_dir' is set by faconvlstm"),
        (
            {"callbacks": [{"class_path": "os.system", "init_args": {"command": "echo hi"}}]},
            r"'os\.system' is not in lightning\.pytorch\.callbacks",
        ),
        (
            {
                "callbacks": [
                    {
                        "class_path": "lightning.pytorch.callbacks.EarlyStopping",
                        "init_args": {"monitr": "val/loss"},
                    }
                ]
            },
            r"trainer\.callbacks\[0\]\.init_args\.monitr",
        ),
        ({"callbacks": "EarlyStopping"}, r"expected a list of \{class_path"),
    ],
)
def test_bad_trainer_settings_are_refused_by_key(tiny_config, section, message):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(section)
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)
