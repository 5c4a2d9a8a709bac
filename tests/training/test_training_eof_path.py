"""The EOF path of the autoencoder (``model.eof_path``, issue 14): a learned correction to
the best linear code, which the untrained model reproduces exactly."""

import copy

import numpy as np
import pytest
import torch

from faconvlstm.models import EOFEmbedding, SequenceAutoencoder
from faconvlstm.training import GriddedDataModule, fit, load_model
from faconvlstm.training.config import ConfigError, load_config
from faconvlstm.training.fit import train_fields

C, H, W, E = 2, 8, 12, 8
LAT = np.linspace(-80, 80, H)  # includes rows close to the poles (small √cos φ weights)


def _fields(n=60, seed=0):
    rng = np.random.default_rng(seed)
    # a field with structure: 3 patterns with red time series, plus noise and a mean
    pat = rng.standard_normal((3, C, H, W))
    amp = np.cumsum(rng.standard_normal((n, 3)), axis=0) * 0.3
    f = np.einsum("tk,kchw->tchw", amp, pat) + 0.5 * rng.standard_normal((n, C, H, W)) + 0.2
    f = f.astype("float32")
    f[3, 0, 2, 2] = np.nan  # a missing cell, zero anomaly for the EOFs
    return f


def _model(**kw):
    torch.manual_seed(0)
    return SequenceAutoencoder(C, filters=(8,), embed_dim=E, eof_path=True, grid=(H, W), **kw)


def test_the_untrained_model_is_the_eof_code_and_its_reconstruction():
    f = _fields()
    model = _model()
    eof = model.init_eof_path(f, LAT)
    model.eval()
    x = torch.as_tensor(f[:48]).reshape(4, 12, C, H, W)
    with torch.no_grad():
        out = model(x)
    pcs = eof.transform(f[:48], lat=LAT)
    # float32 products of O(1) values over 192 state entries: ~1e-6 rounding
    np.testing.assert_allclose(out["embeddings"].reshape(-1, E).numpy(), pcs, atol=2e-5)
    want = np.nan_to_num(eof.inverse_transform(pcs))
    np.testing.assert_allclose(out["recon"].reshape(48, C, H, W).numpy(), want, atol=2e-5)
    # the reconstruction is not trivial: E EOFs explain part, not all, of the field
    resid = np.nanmean((np.nan_to_num(f[:48]) - want) ** 2)
    assert 0.05 < resid < np.nanvar(f[:48])


def test_a_cell_mask_makes_cells_zero_anomaly_like_missing_values():
    f = _fields()
    model = _model()
    model.init_eof_path(f, LAT)
    model.eval()
    x = torch.as_tensor(f[:24]).reshape(2, 12, C, H, W)
    land = torch.ones(1, H, W, dtype=torch.bool)
    land[:, 4:, :3] = False
    masked = x.clone()
    masked[..., 4:, :3] = float("nan")
    with torch.no_grad():
        a = model(x, mask=land)["embeddings"]
        b = model(masked)["embeddings"]
    torch.testing.assert_close(a, b)


def test_the_gates_start_at_zero_and_the_reconstruction_gate_gets_a_gradient():
    f = _fields()
    model = _model()
    model.init_eof_path(f, LAT)
    x = torch.as_tensor(f[:24]).reshape(2, 12, C, H, W)
    out = model(x)
    torch.nn.functional.mse_loss(out["recon"], torch.nan_to_num(x)).backward()
    assert torch.equal(model.eof_gate.detach(), torch.zeros(2))
    assert model.eof_gate.grad[1].abs() > 0  # the learned correction can start to grow
    names = {n for n, _ in model.named_parameters()}
    assert "eof_gate" in names and not {"eof_encode", "eof_decode", "eof_mean"} & names
    assert {"eof_encode", "eof_decode", "eof_mean", "eof_initialized"} <= set(model.state_dict())


def test_without_the_path_the_model_is_the_plain_autoencoder():
    torch.manual_seed(0)
    plain = SequenceAutoencoder(C, filters=(8,), embed_dim=E)
    with_path = _model()
    assert "eof_path" not in plain.get_config() and not any("eof" in k for k in plain.state_dict())
    # the path's tensors are created last: every shared parameter draws the same numbers
    shared = plain.state_dict()
    for k, v in shared.items():
        torch.testing.assert_close(with_path.state_dict()[k], v)


def test_the_path_is_refused_where_it_cannot_be_right():
    with pytest.raises(ValueError, match=r"grid=\(H, W\)"):
        SequenceAutoencoder(C, filters=(8,), embed_dim=E, eof_path=True)
    with pytest.raises(ValueError, match="only used by eof_path"):
        SequenceAutoencoder(C, filters=(8,), embed_dim=E, grid=(H, W))
    model = _model()
    x = torch.zeros(1, 4, C, H, W)
    with pytest.raises(RuntimeError, match="never fitted"):
        model(x)
    with pytest.raises(ValueError, match=r"\(C, H, W\) = \(2, 8, 12\)"):
        model.init_eof_path(np.zeros((10, C, H, W + 1)), LAT)
    model.init_eof_path(_fields(), LAT)
    with pytest.raises(ValueError, match="grid-specific"):
        model(torch.zeros(1, 4, C, H, 2 * W))
    with pytest.raises(RuntimeError, match="eof_path=True"):
        SequenceAutoencoder(C, filters=(8,), embed_dim=E).init_eof_path(_fields(), LAT)


def test_config_keys_of_the_path_are_checked(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["model"]["grid"] = [8, 16]
    with pytest.raises(ConfigError, match=r"'model\.grid' is set from the data"):
        fit(cfg, out=None, summary=False)
    cfg = copy.deepcopy(tiny_config)
    cfg["model"]["eof_path"] = "yes"
    with pytest.raises(ConfigError, match=r"model\.eof_path"):
        fit(cfg, out=None, summary=False)


def test_fit_sets_the_path_from_the_training_period_and_learns_the_gates(tmp_path, tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["trainer"].update(max_epochs=2, limit_val_batches=1)
    cfg["model"]["eof_path"] = True
    last = fit(cfg, out=tmp_path / "run", summary=False)
    model, meta = load_model(last)
    assert meta["model_config"]["eof_path"] is True
    data = GriddedDataModule(load_config(cfg).data, seed=cfg.get("seed", 0))
    data.setup("fit")
    fields = train_fields(data)
    eof = EOFEmbedding(n_eofs=model.eof_encode.shape[0]).fit(fields, lat=data.train_set.lat)
    k = eof.components_.shape[0]
    want = torch.as_tensor(eof.components_ * eof.weights_, dtype=torch.float32)
    torch.testing.assert_close(model.eof_encode[:k], want)  # fixed: training left it alone
    assert bool(model.eof_initialized)
    assert model.eof_gate.detach().abs().min() > 0  # both gates moved off the EOF code
    # resuming keeps the stored path (it is not refitted) and trains on
    cfg["trainer"]["max_epochs"] = 3
    last = fit(cfg, out=tmp_path / "run", resume=True, summary=False)
    resumed, _ = load_model(last)
    torch.testing.assert_close(resumed.eof_encode, model.eof_encode)
    assert not torch.equal(resumed.eof_gate, model.eof_gate)


def test_the_reconstruction_reads_the_input_only_through_the_embedding():
    """Two inputs with different principal components p but the same embedding
    z = p + γ_z·z_learned get the same reconstruction: the linear part reads z, not p, so
    the path is a bottleneck of E numbers per step like the EOF baseline it is compared with
    (reading p gave the decoder 2E numbers)."""
    f = _fields()
    model = _model()
    model.init_eof_path(f, LAT)
    model.eval()
    with torch.no_grad():
        model.eof_gate.copy_(torch.tensor([0.5, 0.3]))
    x1 = torch.as_tensor(np.nan_to_num(f[:12])).reshape(1, 12, C, H, W)
    x2 = torch.as_tensor(np.nan_to_num(f[12:24])).reshape(1, 12, C, H, W)
    valid = torch.ones_like(x1, dtype=torch.bool)
    p1, p2 = model.eof_pcs(x1, valid), model.eof_pcs(x2, valid)
    assert (p1 - p2).abs().max() > 0.1
    z = torch.randn(1, 12, E)
    learned = {"x1": (z - p1) / 0.5, "x2": (z - p2) / 0.5}  # so that z is the same for both
    recon = {}
    for name, x in (("x1", x1), ("x2", x2)):
        hook = model.encoder.head.register_forward_hook(lambda *_, n=name: learned[n])
        try:
            with torch.no_grad():
                out = model(x)
        finally:
            hook.remove()
        torch.testing.assert_close(out["embeddings"], z)
        recon[name] = out["recon"]
    torch.testing.assert_close(recon["x1"], recon["x2"])
