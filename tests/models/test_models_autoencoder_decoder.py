"""SequenceAutoencoder(decoder="per_step"): step t is rebuilt from its own embedding only."""

import pytest
import torch

from faconvlstm.models import SequenceAutoencoder

SMALL = {"filters": (8,), "embed_dim": 8, "head_kwargs": {"channels": 4}}


def _recon_of(ae: SequenceAutoencoder, x: torch.Tensor, z: torch.Tensor, mask=None):
    """The reconstruction when the head returns ``z`` whatever its input (a forward hook)."""
    hook = ae.encoder.head.register_forward_hook(lambda *_: z)
    try:
        return ae(x, mask=mask)["recon"]
    finally:
        hook.remove()


def _steps_reaching(ae: SequenceAutoencoder, step: int, mask=None) -> list[list[bool]]:
    """Which embeddings z_s the reconstruction of ``step`` has a gradient from."""
    torch.manual_seed(1)
    x = torch.randn(2, 5, 3, 8, 16)
    z = torch.randn(2, 5, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(_recon_of(ae, x, z, mask)[:, step].sum(), z)
    return (grad.abs().sum(-1) > 0).tolist()


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_per_step_decoder_rebuilds_each_step_from_its_own_embedding(cell):
    torch.manual_seed(0)
    per_step = SequenceAutoencoder(3, cell=cell, decoder="per_step", **SMALL)
    assert _steps_reaching(per_step, 3) == [[False, False, False, True, False]] * 2
    # the recurrent default reads every embedding up to the step
    torch.manual_seed(0)
    recurrent = SequenceAutoencoder(3, cell=cell, **SMALL)
    assert _steps_reaching(recurrent, 3) == [[True, True, True, True, False]] * 2


@pytest.mark.parametrize("cell", ["fa", "convlstm"])
def test_per_step_decoder_equals_the_same_layers_run_on_one_step_sequences(cell):
    """Same parameters as the recurrent decoder; step t's output is what the recurrent
    decoder gives for a window holding only step t."""
    torch.manual_seed(0)
    per_step = SequenceAutoencoder(3, cell=cell, decoder="per_step", **SMALL).eval()
    torch.manual_seed(0)
    recurrent = SequenceAutoencoder(3, cell=cell, **SMALL).eval()
    assert [n for n, _ in per_step.named_parameters()] == [
        n for n, _ in recurrent.named_parameters()
    ]
    recurrent.load_state_dict(per_step.state_dict())
    x = torch.randn(2, 4, 3, 8, 16)
    z = torch.randn(2, 4, 8)
    with torch.no_grad():
        whole = _recon_of(per_step, x, z)
        for t in range(4):
            alone = _recon_of(recurrent, x[:, t : t + 1], z[:, t : t + 1])
            torch.testing.assert_close(whole[:, t : t + 1], alone)


def test_per_step_decoder_with_a_time_mask_and_config_round_trip():
    torch.manual_seed(0)
    ae = SequenceAutoencoder(3, cell="fa", decoder="per_step", **SMALL)
    mask = torch.tensor([[True, True, False, True, True], [True] * 5])
    out = ae(torch.randn(2, 5, 3, 8, 16), mask=mask)
    assert out["recon"].shape == (2, 5, 3, 8, 16)
    assert torch.isfinite(out["recon"]).all()
    assert _steps_reaching(ae, 1, mask) == [[False, True, False, False, False]] * 2
    cfg = ae.get_config()
    assert cfg["decoder"] == "per_step"
    assert SequenceAutoencoder.from_config(cfg).decoder_kind == "per_step"
    # the default adds no key: configs and checkpoints of recurrent models are unchanged
    assert "decoder" not in SequenceAutoencoder(3, **SMALL).get_config()


def test_unknown_decoder_is_refused():
    with pytest.raises(ValueError, match="'recurrent' or 'per_step'"):
        SequenceAutoencoder(3, decoder="pointwise", **SMALL)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"decoder": "per_step"},
        {"head_kwargs": {"norm": "batch"}, "cell": "convlstm"},
        {"eof_path": True, "grid": (8, 12)},
    ],
    ids=["recurrent", "per_step", "batchnorm_convlstm", "eof_path"],
)
def test_encode_is_the_forward_embedding_without_the_decoder(kw):
    """``encode`` (what the protocol embeds with) gives the embeddings of ``forward``
    exactly, with missing values and a time mask, on every path (the EOF path's
    z = p + γ_z·z_learned included, with γ_z moved off 0)."""
    import numpy as np

    from faconvlstm.protocol.subjects import LearnedSubject

    torch.manual_seed(0)
    kw = {"cell": "fa", **kw}
    model = SequenceAutoencoder(2, filters=(4,), embed_dim=8, **kw)
    x = torch.randn(5, 4, 2, 8, 12)
    x[1, 2, 0, 3, 3] = float("nan")
    if kw.get("eof_path"):
        model.init_eof_path(np.random.default_rng(0).normal(size=(30, 2, 8, 12)), np.zeros(8))
        with torch.no_grad():
            model.eof_gate.fill_(0.7)
    model.eval()
    times = torch.rand(5, 4)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[0, 3] = False
    with torch.no_grad():
        want = model(x, times=times, mask=mask)["embeddings"]
        torch.testing.assert_close(model.encode(x, times=times, mask=mask), want, rtol=0, atol=0)
        full = model(x, times=times)["embeddings"]
    subject = LearnedSubject(model, type("D", (), {"phase": times})())
    np.testing.assert_array_equal(subject.embed(x), full.reshape(-1, 8).numpy())
    subject.batch_size = 2  # batches of windows, in order (other batch shapes: float32 rounding)
    np.testing.assert_allclose(subject.embed(x), full.reshape(-1, 8).numpy(), rtol=0, atol=1e-5)
