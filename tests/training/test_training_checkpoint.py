"""Checkpoint files: refused with a clear error when corrupt, foreign or unsafe; atomic writes."""

import os

import pytest
import torch

from faconvlstm.training.checkpoint import (
    META_KEY,
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
)


def _meta():
    return {
        "format": 1,
        "task": "autoencoder",
        "model_class": "SequenceAutoencoder",
        "model_config": {},
        "data": {},
        "config": {},
        "stats": {"channels": ["t2m", "sst"], "mean": [280.0, 290.0], "std": [5.0, 2.0]},
    }


def _valid(path, meta=None, weight=None):
    atomic_torch_save(
        {
            "state_dict": {"model.w": torch.ones(2) if weight is None else weight},
            META_KEY: meta or _meta(),
        },
        path,
    )
    return path


def test_valid_checkpoint_loads(tmp_path):
    ckpt = load_checkpoint(_valid(tmp_path / "a.ckpt"))
    assert torch.equal(ckpt["state_dict"]["model.w"], torch.ones(2))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")


def test_truncated_file_is_refused(tmp_path):
    path = _valid(tmp_path / "a.ckpt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "a.ckpt"
    path.write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="not a faconvlstm checkpoint"):
        load_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, META_KEY: {"model_config": _Exploit()}}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "future.ckpt"
    atomic_torch_save({"state_dict": {}, META_KEY: {"format": 99, "model_config": {}}}, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def test_atomic_save_leaves_previous_file_when_writing_fails(tmp_path):
    path = _valid(tmp_path / "a.ckpt")
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"x": Unpicklable()}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_non_finite_weights_are_refused_by_name(tmp_path):
    path = _valid(tmp_path / "a.ckpt", weight=torch.tensor([1.0, float("nan")]))
    with pytest.raises(CheckpointError, match=r"weight tensor 'model\.w' holds NaN"):
        load_checkpoint(path)


@pytest.mark.parametrize("std", [0.0, float("nan"), -1.0])
def test_unusable_normalisation_std_is_refused_naming_the_channel(tmp_path, std):
    meta = _meta()
    meta["stats"]["std"] = [5.0, std]
    with pytest.raises(CheckpointError, match="std of channel 'sst' is"):
        load_checkpoint(_valid(tmp_path / "a.ckpt", meta))


def test_missing_stats_entry_is_named_with_what_it_is(tmp_path):
    meta = _meta()
    del meta["stats"]
    with pytest.raises(CheckpointError, match=r"lacks 'stats' \(the training-period normal"):
        load_checkpoint(_valid(tmp_path / "a.ckpt", meta))
