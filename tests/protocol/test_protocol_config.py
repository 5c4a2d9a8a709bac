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
    for name in ("compare_demo", "compare_synthetic", "compare_ablation", "benchmark"):
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


def test_shipped_ablation_config_changes_one_thing_per_variant_on_validation_years():
    """compare_ablation: each variant differs from fa's run configuration only in the
    component it switches, and it never scores the demo's test year."""
    cfg = load_compare_config("compare_ablation")
    demo = load_compare_config("compare_demo")
    assert cfg.train["data"]["test_years"] != demo.train["data"]["test_years"]
    assert cfg.train["data"]["test_years"][1] < demo.train["data"]["test_years"][0]
    base = run_config(cfg, "fa", 0).to_dict()
    expected = {
        "no_axial_attention": ("model", "layer_kwargs", "attention_every"),
        "no_se": ("model", "layer_kwargs", "se_ratio"),
        "one_scale": ("model", "layer_kwargs", "dilation_rates"),
        "no_peephole": ("model", "layer_kwargs", "peephole"),
        "no_seasonal_encoding": ("model", "head_kwargs", "harmonics"),
        "no_temporal_attention": ("model", "head_kwargs", "num_layers"),
        "masked30": ("loss", "masking", "fraction"),
        "joint_clustering": None,
        "forecast_pretext": ("loss", "forecast", "weight"),
        "window_contrastive": ("loss", "contrastive", "weight"),
    }
    assert [v.name for v in cfg.variants] == list(expected)

    def leaves(d, prefix=()):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from leaves(v, (*prefix, k))
            else:
                yield (*prefix, k), v

    flat_base = dict(leaves(base))
    for name, path in expected.items():
        run = dict(leaves(run_config(cfg, name, 0).to_dict()))
        changed = {k for k in flat_base.keys() | run.keys() if flat_base.get(k) != run.get(k)}
        changed.discard(("name",))
        if path is None:  # joint clustering: the model's k and the loss's clustering block
            assert ("model", "n_clusters") in changed
            assert all(k[:2] == ("loss", "clustering") for k in changed - {("model", "n_clusters")})
        else:
            assert changed == {path}, (name, changed)
