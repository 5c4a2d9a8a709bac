"""Expected mistakes exit 2 with a one-line message that says what to fix — no traceback.

Each case runs the command line in process (``faconvlstm.cli.main``): an exception that
``main`` does not turn into an exit status would propagate and fail the test, so a
traceback cannot pass unnoticed.
"""

import copy
import math

import pytest
import torch
import yaml

from faconvlstm.cli import main
from faconvlstm.files import atomic_torch_save
from faconvlstm.training import fit
from faconvlstm.training.checkpoint import META_KEY, load_state
from faconvlstm.training.config import ConfigError, load_config


def _fails(capsys, argv, *fragments):
    """``faconvlstm ARGV`` exits 2 with one line naming every fragment."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def config_path(tmp_path, tiny):
    def write(cfg=None, text=None):
        path = tmp_path / "cfg.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(cfg or tiny))
        return path

    return write


@pytest.mark.parametrize(
    ("key", "value", "fragments"),
    [
        ("trainer.max_epochs", "0", ["trainer.max_epochs", "no epochs trains nothing"]),
        ("trainer.max_steps", "0", ["trainer.max_steps", ">= 1"]),
        (
            "model.layer_kwargs",
            "{attention_evry: 3}",
            ["model.layer_kwargs.attention_evry", "FAConvLSTM2D", "attention_every"],
        ),
        ("model.layer_kwargs", "{dropout: high}", ["model.layer_kwargs.dropout", "float"]),
        (
            "data.synthetic",
            "{n_yeras: 2}",
            ["data.synthetic.n_yeras", "faconvlstm.data.synthetic", "n_years"],
        ),
        ("data.val_fraction", "1.5", ["data.val_fraction", "between 0 and 1", "1.5"]),
        ("model.filters", "eight", ["model.filters", "'eight'"]),
        ("data.dims", "{tiem: valid_time}", ["data.dims", "time, lat, lon"]),
    ],
)
def test_invalid_values_exit_2_naming_the_key(capsys, config_path, tmp_path, key, value, fragments):
    argv = ["fit", "--config", config_path(), "--out", tmp_path / "run", "--set", f"{key}={value}"]
    _fails(capsys, argv, *fragments)
    _fails(capsys, [*argv, "--check"], *fragments)  # --check finds it too
    assert not (tmp_path / "run").exists()


def test_layer_kwargs_of_the_convlstm_cell_are_checked_against_that_cell(
    capsys, config_path, tmp_path
):
    # attention_every is an FA option: a plain ConvLSTM layer does not take it
    _fails(
        capsys,
        ["fit", "--config", config_path(), "--check", "--set", "model.cell=convlstm"],
        "model.layer_kwargs.attention_every",
        "ConvLSTM2D",
    )


def test_a_duplicate_yaml_key_is_named_with_both_lines(capsys, config_path, tiny):
    text = yaml.safe_dump(tiny, sort_keys=False) + "seed: 3\n"  # 'seed' is also line 1
    _fails(
        capsys,
        ["fit", "--config", config_path(text=text), "--check"],
        "key 'seed' is given twice",
        "lines 1 and",
    )


def test_a_duplicate_key_in_a_nested_section_is_refused(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("optim:\n  lr: 0.1\n  weight_decay: 0.0\n  lr: 0.01\n")
    with pytest.raises(ConfigError, match=r"key 'lr' is given twice \(lines 2 and 4\)"):
        load_config(path)


@pytest.mark.parametrize("value", ["!!python/object/apply:os.system [echo hi]", "!mytag 3"])
def test_a_yaml_tag_in_set_is_refused(capsys, config_path, value):
    _fails(
        capsys,
        ["fit", "--config", config_path(), "--check", "--set", f"seed={value}"],
        "override 'seed=",
        "not valid YAML",
        "only plain values",
    )


def test_out_below_a_regular_file_exits_2(capsys, config_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _fails(
        capsys,
        ["fit", "--config", config_path(), "--out", blocker / "run"],
        "cannot write the output directory",
        str(blocker / "run"),
    )


def test_an_unwritable_out_exits_2_naming_the_path(capsys, config_path, tmp_path, monkeypatch):
    """Permission denied / read-only file system (simulated: the tests may run as root,
    for whom chmod does not deny anything)."""
    import pathlib

    target = tmp_path / "ro" / "run"
    mkdir = pathlib.Path.mkdir

    def denied(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", denied)
    _fails(
        capsys,
        ["fit", "--config", config_path(), "--out", target],
        "Permission denied",
        str(target),
        "writable --out",
    )


# -- checkpoints that cannot be right --------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_for_module):
    out = tmp_path_factory.mktemp("finished") / "run"
    cfg = copy.deepcopy(tiny_for_module)
    cfg["trainer"].update(max_epochs=1, limit_train_batches=1)
    return fit(cfg, out=out)


def _tampered(src, dst, edit):
    ckpt = load_state(src)
    edit(ckpt)
    atomic_torch_save(ckpt, dst)
    return dst


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            lambda c: c["state_dict"][next(iter(c["state_dict"]))].fill_(math.nan),
            ["weight tensor 'model.", "NaN"],
        ),
        (lambda c: c[META_KEY]["stats"]["std"].__setitem__(0, 0.0), ["std of channel", "> 0"]),
        (lambda c: c[META_KEY]["stats"]["std"].__setitem__(0, math.nan), ["std of channel"]),
        (lambda c: c[META_KEY].pop("stats"), ["lacks 'stats'", "normalisation statistics"]),
    ],
)
def test_a_tampered_checkpoint_is_refused_by_embed(capsys, finished, tmp_path, edit, fragments):
    ckpt = _tampered(finished, tmp_path / "bad.ckpt", edit)
    _fails(capsys, ["embed", "--ckpt", ckpt, "--out", tmp_path / "emb.nc"], *fragments)
    assert not (tmp_path / "emb.nc").exists()


def test_max_epochs_zero_never_reports_a_checkpoint_that_does_not_exist(
    capsys, config_path, tmp_path
):
    _fails(
        capsys,
        [
            "fit",
            "--config",
            config_path(),
            "--out",
            tmp_path / "run",
            "--set",
            "trainer.max_epochs=0",
        ],
        "trainer.max_epochs",
    )
    assert not list(tmp_path.glob("run/checkpoints/*.ckpt"))


def test_data_dims_maps_odd_dimension_names(tmp_path, tiny):
    from faconvlstm.data import synthetic
    from faconvlstm.training.datamodule import open_source

    ds, _ = synthetic(seed=0, n_years=1, nlat=4, nlon=8)
    odd = ds.rename({"time": "valid_time", "lat": "y", "lon": "x"})
    path = tmp_path / "odd.nc"
    odd.to_netcdf(path)
    tiny["data"].update(source=str(path), dims={"time": "valid_time", "lat": "y", "lon": "x"})
    cfg = load_config(tiny)
    da = open_source(cfg.data)
    assert da.dims == ("time", "channel", "lat", "lon") and da.sizes["lat"] == 4
    assert torch.equal(torch.as_tensor(da["lat"].values), torch.as_tensor(ds["lat"].values))
