"""The run configuration: validated before anything runs, with errors that name the key."""

from pathlib import Path

import pytest

from faconvlstm.training.config import (
    ConfigError,
    RunConfig,
    load_config,
    parse_overrides,
    validate_model_kwargs,
)

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "faconvlstm" / "configs"


def test_defaults_fill_every_section():
    cfg = load_config({})
    assert isinstance(cfg, RunConfig)
    assert cfg.task == "autoencoder" and cfg.trainer.deterministic is True


def test_unknown_key_is_named_with_accepted_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'trainer\.max_epoch'.*max_epochs"):
        load_config({"trainer": {"max_epoch": 3}})


def test_unknown_top_level_section_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'optimizer'"):
        load_config({"optimizer": {"lr": 1}})


def test_wrong_type_names_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"'data\.batch_size': expected int, got str"):
        load_config({"data": {"batch_size": "eight"}})


def test_bool_is_not_accepted_for_int():
    with pytest.raises(ConfigError, match="expected int"):
        load_config({"seed": True})


def test_int_is_accepted_for_float():
    assert load_config({"optim": {"lr": 1}}).optim.lr == 1


def test_literal_choices_are_listed():
    with pytest.raises(ConfigError, match="'autoencoder' \\| 'forecast'"):
        load_config({"task": "classify"})


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigError, match="section 'trainer': expected a mapping"):
        load_config({"trainer": 5})


def test_forecast_needs_a_horizon():
    with pytest.raises(ConfigError, match=r"data\.horizon"):
        load_config({"task": "forecast"})


def test_overrides_are_yaml_parsed_and_merged():
    cfg = load_config(
        {"trainer": {"max_epochs": 4, "devices": 1}},
        ["trainer.max_epochs=2", "model.filters=[8, 8]"],
    )
    assert cfg.trainer.max_epochs == 2 and cfg.trainer.devices == 1
    assert cfg.model == {"filters": [8, 8]}


def test_override_inside_synthetic_keeps_the_other_keys():
    # before the fix a nested override replaced the whole data.synthetic mapping,
    # silently dropping n_years/nlon back to the generator's defaults
    cfg = load_config(
        {"data": {"source": "synthetic", "synthetic": {"n_years": 3, "nlat": 16, "nlon": 32}}},
        ["data.synthetic.nlat=8"],
    )
    assert cfg.data.synthetic == {"n_years": 3, "nlat": 8, "nlon": 32}


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_overrides(["trainer.max_epochs"])


def test_invalid_yaml_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


class _Model:
    def __init__(self, in_channels: int, filters: tuple[int, ...] = (8,), cell: str = "fa"):
        pass


def test_model_section_is_checked_against_the_constructor():
    validate_model_kwargs(_Model, {"filters": [4, 4], "cell": "convlstm"})
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.filter'.*filters"):
        validate_model_kwargs(_Model, {"filter": [4]})
    with pytest.raises(ConfigError, match=r"'model\.cell': expected str"):
        validate_model_kwargs(_Model, {"cell": 3})
    with pytest.raises(ConfigError, match="set from the data"):
        validate_model_kwargs(_Model, {"in_channels": 3})


SHIPPED = ["quick", "synthetic_fa", "synthetic_convlstm", "sst_sample", "era5_zarr"]
# compare configs whose name the issue fixed without the compare_ prefix
COMPARE_SHIPPED = ["benchmark"]


@pytest.mark.parametrize("path", [CONFIGS / f"{n}.yaml" for n in SHIPPED], ids=SHIPPED)
def test_shipped_configs_are_valid(path):
    from faconvlstm.training.fit import model_class

    cfg = load_config(path)
    validate_model_kwargs(model_class(cfg.task), cfg.model)


def test_shipped_quick_config_resolves_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()  # e.g. the output folder of an earlier run
    assert load_config("quick").task == "autoencoder"


def test_configs_have_one_source_the_packaged_folder():
    repo = Path(__file__).resolve().parents[2]
    assert not (repo / "configs").exists()  # no second copy to drift
    shipped = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    compare = [n for n in shipped if n.startswith("compare_") or n in COMPARE_SHIPPED]
    assert [n for n in shipped if n not in compare] == sorted(SHIPPED)
    assert {"compare_demo", "compare_synthetic", "compare_sst"} <= set(shipped)
    for name in SHIPPED:
        assert load_config(name).to_dict() == load_config(CONFIGS / f"{name}.yaml").to_dict()
    from faconvlstm.protocol.config import load_compare_config

    for name in compare:
        assert load_compare_config(name) == load_compare_config(CONFIGS / f"{name}.yaml")


def test_synthetic_fa_and_convlstm_configs_differ_only_in_the_cell():
    fa = load_config(CONFIGS / "synthetic_fa.yaml").to_dict()
    cl = load_config(CONFIGS / "synthetic_convlstm.yaml").to_dict()
    assert fa["model"].pop("cell") == "fa" and cl["model"].pop("cell") == "convlstm"
    fa.pop("out"), cl.pop("out")
    assert fa == cl


def test_compare_persistence_is_the_demo_on_the_persistence_record():
    """Only the record differs: its regimes are defined by their persistence."""
    import dataclasses

    from faconvlstm.protocol.config import load_compare_config

    demo = dataclasses.asdict(load_compare_config("compare_demo"))
    pers = dataclasses.asdict(load_compare_config("compare_persistence"))
    knobs = pers["train"]["data"]["synthetic"]
    extra = {k: knobs.pop(k) for k in ("regime_mode", "n_regimes", "regime_persistence")}
    assert extra == {"regime_mode": "persistence", "n_regimes": 2, "regime_persistence": 0.95}
    demo.pop("out"), pers.pop("out")
    assert pers == demo


def _split(**years):
    from faconvlstm.training.datamodule import GriddedDataModule, open_source

    cfg = load_config({"data": {"synthetic": {"n_years": 3, "nlat": 4, "nlon": 8}, **years}})
    dm = GriddedDataModule(cfg.data)
    train, val = dm._split(open_source(cfg.data))
    return [sorted(set(part["time"].dt.year.values.tolist())) for part in (train, val)]


def test_training_defaults_to_the_years_before_validation_and_test():
    assert _split(val_years=[2001, 2001], test_years=[2002, 2002]) == [[2000], [2001]]


def test_validation_defaults_to_the_end_of_the_training_period():
    train, val = _split(train_years=[2000, 2001])
    assert train[0] == 2000 and val[-1] == 2001 and 2002 not in train + val


def test_overlapping_periods_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        _split(train_years=[2000, 2001], val_years=[2001, 2001])


@pytest.mark.parametrize(
    ("name", "n_years", "years"),
    [
        ("compare_long", 10, ([2000, 2006], [2007, 2007], [2009, 2009])),
        ("compare_long20", 20, ([2000, 2016], [2017, 2017], [2019, 2019])),
    ],
)
def test_compare_long_is_the_demo_on_a_longer_record(name, n_years, years):
    """Only the record's length and the years differ; the screen's scored year is unused."""
    import dataclasses

    from faconvlstm.protocol.config import load_compare_config

    demo = dataclasses.asdict(load_compare_config("compare_demo"))
    long = dataclasses.asdict(load_compare_config(name))
    data = long["train"]["data"]
    assert (
        data["synthetic"].pop("n_years") == n_years
        and demo["train"]["data"]["synthetic"].pop("n_years") == 5
    )
    keys = ("train_years", "val_years", "test_years")
    assert tuple(data.pop(k) for k in keys) == years
    for k in keys:
        demo["train"]["data"].pop(k)
    demo.pop("out"), long.pop("out")
    assert long == demo


def test_compare_long20_perstep_is_compare_long20_with_the_per_step_decoder():
    import dataclasses

    from faconvlstm.protocol.config import load_compare_config

    shipped = dataclasses.asdict(load_compare_config("compare_long20"))
    perstep = dataclasses.asdict(load_compare_config("compare_long20_perstep"))
    assert perstep["train"]["model"].pop("decoder") == "per_step"
    assert "decoder" not in shipped["train"]["model"]
    assert (perstep.pop("out"), shipped.pop("out")) == ("runs/long20_perstep", "runs/long20")
    assert perstep == shipped
