"""Training and inference on PyTorch Lightning: one YAML file, one command.

* :func:`fit` — train from a run configuration (:mod:`~faconvlstm.training.config`);
  checkpoints carry everything inference needs (:mod:`~faconvlstm.training.checkpoint`).
* :func:`embed` / :func:`predict` — embeddings, reconstructions and forecasts from a
  checkpoint alone, written to NetCDF / Zarr (:mod:`~faconvlstm.training.infer`).
* :class:`AutoencoderTask`, :class:`ForecastTask` — the LightningModules
  (:mod:`~faconvlstm.training.modules`); :class:`GriddedDataModule` — the LightningDataModule
  over the xarray pipeline (:mod:`~faconvlstm.training.datamodule`).

The same entry points are on the command line: ``faconvlstm fit|embed|predict``
(:mod:`faconvlstm.cli`).
"""

from faconvlstm.training.checkpoint import CheckpointError, load_checkpoint
from faconvlstm.training.config import ConfigError, RunConfig, load_config
from faconvlstm.training.datamodule import GriddedDataModule
from faconvlstm.training.fit import fit
from faconvlstm.training.infer import embed, load_model, predict
from faconvlstm.training.modules import AutoencoderTask, ForecastTask, NonFiniteLossError

__all__ = [
    "AutoencoderTask",
    "CheckpointError",
    "ConfigError",
    "ForecastTask",
    "GriddedDataModule",
    "NonFiniteLossError",
    "RunConfig",
    "embed",
    "fit",
    "load_checkpoint",
    "load_config",
    "load_model",
    "predict",
]
