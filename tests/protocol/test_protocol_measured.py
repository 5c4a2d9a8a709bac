"""What a comparison measures is the trained model a user loads: nothing the protocol does
around the measurement (the step timing, the FA internals) may change the model's weights
or buffers. The shipped head normalises with BatchNorm (``norm: batch``), whose running
statistics a training-mode forward moves toward the batch it sees."""

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_compare import TINY

from faconvlstm.models import SequenceAutoencoder
from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.heldout import prepare_data
from faconvlstm.protocol.measure import model_step_ms
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.runs import compare, measured_model
from faconvlstm.protocol.subjects import LearnedSubject


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_timing_a_step_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = SequenceAutoencoder(
        3, cell="fa", filters=(4,), embed_dim=8, head_kwargs={"norm": "batch"}
    ).eval()
    before = _state(model)
    assert any("running_mean" in k for k in before)  # the BatchNorm head is there
    data = SimpleNamespace(x=torch.randn(6, 4, 3, 8, 16) * 3 + 1, phase=torch.rand(6, 4))
    assert model_step_ms(model, data) > 0
    assert not model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)
    assert all(p.grad is None for p in model.parameters())


def _config():
    cfg = copy.deepcopy(TINY)
    cfg["models"] = ["fa", "eof"]
    cfg["train"]["model"]["head_kwargs"] = {"norm": "batch"}
    cfg["train"]["trainer"]["max_epochs"] = 1
    cfg["cost"]["enabled"] = False
    return cfg


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("measured")
    compare(_config(), out, progress=False)
    return out


def test_the_stored_embeddings_are_those_of_the_checkpoint_a_user_loads(measured):
    cfg = load_compare_config(_config())
    plan = make_plan(cfg, measured)
    data = prepare_data(plan.reference, cfg.evaluation.climatology_smooth_days)
    for spec in plan.runs_of("fa"):
        model, _ = measured_model(spec)
        fresh = LearnedSubject(model, data).embed(data.x)
        stored = np.load(spec.paths.arrays)["embeddings"]
        np.testing.assert_allclose(stored, fresh, rtol=0, atol=1e-5)
        result = json.loads(spec.paths.result.read_text())
        assert result["model_fwd_bwd_ms"] > 0  # the step was timed, on a copy
