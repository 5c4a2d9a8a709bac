"""Joint deep clustering (DEC/IDEC, ``loss.clustering`` + ``model.n_clusters``) end to end:
config validation, the warm-up, the KL term in the loss, the k-means initialisation, an
exact resume, and the labels / probabilities ``faconvlstm embed`` writes."""

import copy
import glob
import warnings

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from tiny_run import TINY

from faconvlstm.training import embed, fit, load_checkpoint
from faconvlstm.training.config import ConfigError, config_from_dict
from faconvlstm.training.datamodule import GriddedDataModule
from faconvlstm.training.infer import load_model
from faconvlstm.training.modules import AutoencoderTask

WEIGHT = 0.1
STEPS = 6  # 2 epochs x 3 batches: epoch 0 is the warm-up


def clustered(**clustering):
    cfg = copy.deepcopy(TINY)
    cfg["model"]["n_clusters"] = 3
    cfg["loss"] = {
        "clustering": {
            "weight": WEIGHT,
            "warmup_epochs": 1,
            "update_interval": 2,
            "n_init": 4,
            **clustering,
        }
    }
    return cfg


@pytest.fixture(scope="module")
def clustered_run(tmp_path_factory):
    """One tiny clustered run: (config, out). Read-only."""
    torch.set_num_threads(1)
    cfg = clustered()
    out = tmp_path_factory.mktemp("dec") / "run"
    fit(copy.deepcopy(cfg), out=out, summary=False)
    return cfg, out


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"model": {"n_clusters": None}}, "loss.clustering.weight"),
        ({"loss": {"clustering": {"weight": 0.0}}}, "model.n_clusters"),
        ({"loss": {"clustering": {"weight": -1.0}}}, "loss.clustering.weight"),
        ({"loss": {"clustering": {"warmup_epochs": 2}}}, "loss.clustering.warmup_epochs"),
        ({"loss": {"clustering": {"update_interval": 0}}}, "loss.clustering.update_interval"),
        ({"loss": {"clustering": {"update_interval": "batch"}}}, "loss.clustering.update_interval"),
        ({"loss": {"clustering": {"n_init": 1}}}, "loss.clustering.n_init"),
        ({"loss": {"clustering": {"gamma": 1}}}, "loss.clustering.gamma"),
        ({"task": "forecast", "data": {"horizon": 2}}, "loss.clustering.weight"),
    ],
)
def test_config_refuses_half_a_switch_and_bad_values(change, key):
    cfg = clustered()
    for section, values in change.items():
        if isinstance(values, dict):
            for name, value in values.items():
                if isinstance(value, dict):
                    cfg[section][name].update(value)
                else:
                    cfg[section][name] = value
        else:
            cfg[section] = values
    if cfg["model"].get("n_clusters") is None:
        cfg["model"].pop("n_clusters", None)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        config_from_dict(cfg)


def test_config_accepts_the_switch_and_defaults_to_off():
    cfg = config_from_dict(clustered(update_interval="epoch"))
    assert cfg.loss.clustering.enabled and cfg.loss.clustering.update_interval == "epoch"
    assert not config_from_dict(copy.deepcopy(TINY)).loss.clustering.enabled


# -- training -----------------------------------------------------------------------------


def _metrics(out):
    (path,) = glob.glob(str(out / "csv" / "version_0" / "metrics.csv"))
    return pd.read_csv(path)


def test_warm_up_is_pure_reconstruction_then_the_kl_term_is_added(clustered_run):
    cfg, out = clustered_run
    m = _metrics(out)
    train = m.dropna(subset=["train/loss"])
    warm, joint = train[train["epoch"] == 0], train[train["epoch"] == 1]
    assert len(warm) == 3 and len(joint) == 3
    assert warm["train/kl"].isna().all()
    # the head has no orthogonality penalty here: loss = mse during the warm-up ...
    np.testing.assert_allclose(warm["train/loss"], warm["train/mse"], rtol=1e-6)
    # ... and mse + γ·KL after it (float32 logging round-off)
    assert (joint["train/kl"] > 0).all()
    np.testing.assert_allclose(
        joint["train/loss"], joint["train/mse"] + WEIGHT * joint["train/kl"], rtol=1e-5
    )
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    assert bool(ckpt["state_dict"]["model.clustering.initialized"])
    state = ckpt["callbacks"]["DeepClustering"]
    # initialised at step 3 (first batch of epoch 1), refreshed every 2 steps: 3, 5
    assert state["refreshed_step"] == 5 and state["refreshed_epoch"] == 1
    assert state["target"].shape == (state["starts"].numel(), TINY["data"]["window"], 3)
    # the task rebuilt from the checkpoint keeps the clustering loss settings
    task = AutoencoderTask.load_from_checkpoint(out / "checkpoints" / "last.ckpt")
    assert task.loss_cfg.clustering.weight == WEIGHT
    assert task.model.clustering.n_clusters == 3


def test_centroids_start_at_kmeans_of_the_training_embeddings(tmp_path):
    """With lr = 0 nothing moves, so the final centroids are the initial k-means centres of
    the embeddings of every training window, and the stored target is P of their Q
    (refreshed once per epoch)."""
    from sklearn.cluster import KMeans

    torch.set_num_threads(1)
    cfg = clustered(update_interval="epoch")
    cfg["optim"]["lr"] = 0.0
    last = fit(copy.deepcopy(cfg), out=tmp_path / "run", summary=False)
    model, _ = load_model(last)
    data = GriddedDataModule(config_from_dict(copy.deepcopy(cfg)).data, seed=cfg["seed"])
    data.setup("fit")
    batch = [data.train_set[i] for i in range(len(data.train_set))]
    with torch.no_grad():
        z = model(
            torch.stack([b["x"] for b in batch]),
            times=torch.stack([b["phase"] for b in batch]),
            mask=torch.stack([b["mask"] for b in batch]),
        )["embeddings"]
    km = KMeans(3, n_init=4, random_state=cfg["seed"]).fit(z.reshape(-1, 8).double().numpy())
    # the callback embeds in batches of 32, here all at once: float32 round-off only
    np.testing.assert_allclose(
        model.clustering.centroids.detach().numpy(), km.cluster_centers_, atol=1e-5
    )
    state = load_checkpoint(last)["callbacks"]["DeepClustering"]
    # "epoch": one refresh (with the init) at the first batch of epoch 1, none after
    assert state["refreshed_step"] == 3 and state["refreshed_epoch"] == 1
    q = model.clustering.soft_assign(z)
    torch.testing.assert_close(state["target"], model.clustering.target_distribution(q))


class StopAt(L.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("interrupted")


def test_resumed_run_equals_the_uninterrupted_one(clustered_run, tmp_path):
    """Interrupted at step 4 (after the k-means init at step 3, before the refresh at 5):
    the resumed run restores the target and refresh step and ends with the same weights."""
    torch.set_num_threads(1)
    cfg, ref_out = clustered_run
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(copy.deepcopy(cfg), out=out, callbacks=[StopAt(4)], summary=False)
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 4
    fit(copy.deepcopy(cfg), out=out, resume=True, summary=False)
    ref = load_checkpoint(ref_out / "checkpoints" / "last.ckpt")
    got = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert got["global_step"] == STEPS
    for name, value in ref["state_dict"].items():
        assert torch.equal(got["state_dict"][name], value), name
    a, b = ref["callbacks"]["DeepClustering"], got["callbacks"]["DeepClustering"]
    assert torch.equal(a["target"], b["target"]) and a["refreshed_step"] == b["refreshed_step"]


# -- embed --------------------------------------------------------------------------------


def test_embed_writes_labels_and_probabilities(clustered_run, tmp_path):
    _, out = clustered_run
    last = out / "checkpoints" / "last.ckpt"
    (path,) = embed(last, tmp_path / "emb.nc")
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    probs, labels = ds["cluster_probability"], ds["cluster"]
    assert probs.dims == ("time", "cluster_id") and labels.dims == ("time",)
    assert probs.sizes["cluster_id"] == 3 and labels.sizes["time"] == ds.sizes["time"]
    assert np.issubdtype(labels.dtype, np.integer)
    assert ds["cluster_id"].dtype == np.int32  # CF 2.2: no int64 in netCDF files
    assert probs.attrs["units"] == "1" and labels.attrs["units"] == "1"
    assert "long_name" in probs.attrs and "long_name" in labels.attrs
    # float32 sums of 3 terms
    np.testing.assert_allclose(probs.sum("cluster_id"), 1.0, atol=1e-6)
    np.testing.assert_array_equal(labels.values, probs.values.argmax(1))
    # the probabilities are the model's soft assignment of the embeddings written beside them
    model, _ = load_model(last)
    q = model.clustering.soft_assign(torch.as_tensor(ds["embedding"].values))
    np.testing.assert_allclose(probs.values, q.detach().numpy(), atol=1e-6)


def test_embed_skips_clusters_of_a_checkpoint_saved_during_the_warm_up(clustered_run, tmp_path):
    _, out = clustered_run
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    ckpt["state_dict"]["model.clustering.initialized"] = torch.tensor(False)
    warm = tmp_path / "warm.ckpt"
    torch.save(ckpt, warm)
    with pytest.warns(UserWarning, match="never initialised"):
        (path,) = embed(warm, tmp_path / "emb.nc")
    with xr.open_dataset(path) as ds:
        assert "embedding" in ds and "cluster" not in ds and "cluster_probability" not in ds


def test_embed_of_a_plain_model_writes_no_clusters(trained_run, tmp_path):
    _, out = trained_run
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        (path,) = embed(out / "checkpoints" / "last.ckpt", tmp_path / "emb.nc")
    with xr.open_dataset(path) as ds:
        assert "cluster" not in ds and "cluster_probability" not in ds
