"""The compare config: the training configs' typed loader, errors that name the key."""

import pytest
from tiny_compare import TINY

from faconvlstm.protocol.config import CompareConfig, load_compare_config, run_config
from faconvlstm.training.config import ConfigError


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"evaluation\.sigmas"):
        load_compare_config({**TINY, "evaluation": {"sigmas": [1.0]}})
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        load_compare_config({**TINY, "seeds": [0]})
    # a forecast compare is accepted since issue 12, but not with the EOF baseline in it
    with pytest.raises(ConfigError, match=r"'models': 'eof'"):
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


def test_types_are_checked_as_in_run_configs():
    with pytest.raises(ConfigError, match=r"'cost\.repeats': expected int, got str"):
        load_compare_config({**TINY, "cost": {**TINY["cost"], "repeats": "two"}})
    with pytest.raises(ConfigError, match=r"unknown model 'gru'; accepted: fa, convlstm, eof"):
        load_compare_config({**TINY, "models": ["fa", "gru"]})
    bad_train = {**TINY, "train": {**TINY["train"], "trainer": {"max_epoch": 1}}}
    with pytest.raises(ConfigError, match=r"'train': unknown config key 'trainer\.max_epoch'"):
        load_compare_config(bad_train)


def test_overrides_use_the_shared_merge_rule_and_do_not_touch_the_source():
    source = {**TINY, "evaluation": dict(TINY["evaluation"])}
    cfg = load_compare_config(source, ["train.trainer.max_epochs=5", "evaluation.block=[1, 1]"])
    assert isinstance(cfg, CompareConfig)
    assert cfg.train["trainer"]["max_epochs"] == 5
    assert cfg.train["trainer"]["limit_train_batches"] == 3  # merged, not replaced
    assert cfg.evaluation.block == [1, 1]
    assert cfg.evaluation.noise_sigmas == [0.0, 0.5]
    assert source["evaluation"]["block"] == [2, 4]


def test_shipped_configs_load():
    for name in ("compare_demo", "compare_synthetic"):
        cfg = load_compare_config(name)
        assert cfg.models == ["fa", "convlstm", "eof"]


def test_run_config_sets_seed_cell_overrides_and_the_data_seed():
    cfg = load_compare_config(
        {**TINY, "data_seed": 7, "model_overrides": {"convlstm": {"embed_dim": 4}}}
    )
    run = run_config(cfg, "convlstm", 1)
    assert (run.seed, run.task, run.model["cell"], run.model["embed_dim"]) == (
        1,
        "autoencoder",
        "convlstm",
        4,
    )
    assert run.data.synthetic["seed"] == 7
    assert run_config(cfg, "fa", 1).model["embed_dim"] == 8


def test_a_model_option_only_fa_accepts_is_refused_at_load_not_after_fa_trained():
    # train.model.layer_kwargs applies to every learned model: ConvLSTM2D has no
    # attention_every, which used to fail only when its first run started
    cfg = {"train": {"model": {"layer_kwargs": {"attention_every": 2}}}}
    with pytest.raises(ConfigError, match=r"ConvLSTM2D.*'convlstm'.*model_overrides"):
        load_compare_config(cfg)
    cfg = {"model_overrides": {"fa": {"layer_kwargs": {"attention_every": 2}}}}
    assert load_compare_config(cfg).model_overrides["fa"]["layer_kwargs"]["attention_every"] == 2
