"""LightningDataModule over the xarray pipeline of :mod:`faconvlstm.data`.

``setup()`` opens the source (lazily, with dask, for files larger than memory), splits it
by years, computes normalisation statistics on the training period only and builds
:class:`faconvlstm.data.WindowDataset` s. Loaders are :class:`ResumableDataLoader` s over a
:class:`ShardedSampler`, so DDP ranks read disjoint shards and an interrupted epoch
resumes where it stopped (see :mod:`faconvlstm.training.sampling`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from faconvlstm import data as fdata
from faconvlstm.training.config import DataConfig
from faconvlstm.training.sampling import ResumableDataLoader, ShardedSampler

__all__ = ["GriddedDataModule", "open_source"]


def open_source(cfg: DataConfig, seed: int = 0, source: str | None = None) -> Any:
    """Open ``source`` (default ``cfg.source``) as a DataArray ``(time, channel, lat, lon)``.

    ``"synthetic"`` runs :func:`faconvlstm.data.synthetic` with ``cfg.synthetic`` (and
    ``seed`` unless given there); ``"sample:NAME"`` opens a shipped sample; anything else is
    a path or URL for :func:`faconvlstm.data.open_gridded`.
    """
    source = cfg.source if source is None else source
    if source == "synthetic":
        kwargs = {"seed": seed, **cfg.synthetic}
        dataset, _truth = fdata.synthetic(**kwargs)
    elif source.startswith("sample:"):
        dataset = fdata.sample(source.split(":", 1)[1])
    else:
        dataset = source
    return fdata.open_gridded(dataset, variables=cfg.variables, levels=cfg.levels, dims=cfg.dims)


class GriddedDataModule(L.LightningDataModule):
    """Windows of a gridded dataset for training and validation.

    Args:
        cfg: the ``data`` section of the run configuration.
        seed: seeds the synthetic generator and the per-epoch shuffling.

    After :meth:`setup`: ``array`` (the full DataArray), ``stats`` (NormStats of the
    training period), ``train_set`` / ``val_set`` (WindowDataset), and :meth:`describe`.
    """

    def __init__(self, cfg: DataConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.array = self.stats = self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cfg = self.cfg
        self.array = open_source(cfg, self.seed)
        train, val = self._split(self.array)
        self.stats = fdata.compute_stats(
            train,
            climatology=cfg.climatology,
            detrend=cfg.detrend,
            standardize=cfg.standardize,
        )
        need = cfg.window + cfg.horizon
        for name, part in (("train", train), ("val", val)):
            if part.sizes["time"] < need:
                raise ValueError(
                    f"the {name} period has {part.sizes['time']} time steps, fewer than "
                    f"data.window + data.horizon = {need}; widen data.{name}_years"
                )
        self.train_set = self._windows(train)
        self.val_set = self._windows(val)

    def _windows(self, part: Any) -> Any:
        cfg = self.cfg
        return fdata.WindowDataset(
            part, window=cfg.window, horizon=cfg.horizon, stride=cfg.stride, stats=self.stats
        )

    def _split(self, da: Any) -> tuple[Any, Any]:
        """(train, val) periods. Without ``train_years`` training takes every year before
        the first validation/test year; without ``val_years`` validation is the last
        ``val_fraction`` of the training period. Overlapping periods are an error."""
        cfg = self.cfg
        ranges = {
            k: tuple(v)
            for k, v in (("val", cfg.val_years), ("test", cfg.test_years))
            if v is not None
        }
        train = cfg.train_years
        if train is None:
            first = int(da["time"].dt.year.values[0])
            held_out = [r[0] for r in ranges.values()]
            train = (first, min(held_out) - 1) if held_out else (first, first + 10_000)
        parts = fdata.split_by_years(da, train=tuple(train), **ranges)
        if "val" in parts:
            return parts["train"], parts["val"]
        train_da = parts["train"]
        n_val = max(round(train_da.sizes["time"] * cfg.val_fraction), 1)
        return train_da.isel(time=slice(None, -n_val)), train_da.isel(time=slice(-n_val, None))

    def _loader(self, dataset: Any, train: bool) -> ResumableDataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        sampler = ShardedSampler(
            len(dataset),
            shuffle=train and self.cfg.shuffle,
            seed=self.seed,
            rank=rank,
            world_size=world,
            drop_remainder=train,
        )
        loader = ResumableDataLoader(
            dataset,
            sampler,
            batch_size=self.cfg.batch_size,
            collate_fn=fdata.collate_windows,
            num_workers=self.cfg.num_workers,
            drop_last=False,
            # worker seeds from a private generator: loading never moves the global RNG
            generator=torch.Generator().manual_seed(self.seed),
        )
        if train and trainer is not None:
            limit = trainer.limit_train_batches
            n = len(loader)
            loader.epoch_batches = min(n, limit) if isinstance(limit, int) else int(n * limit)
        return loader

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_set, train=False)

    def describe(self) -> dict:
        """The data description stored in checkpoints (plain types only)."""
        ds = self.train_set
        units = self.array.attrs.get("units_by_channel")
        if units is None and "units" in self.array.coords:
            units = [str(u) for u in self.array.coords["units"].values]
        return {
            "source": self.cfg.source,
            "channels": [str(c) for c in ds.channels],
            "units": list(units) if units is not None else None,
            "lat": np.asarray(ds.lat, dtype=float).tolist(),
            "lon": np.asarray(ds.lon, dtype=float).tolist(),
            "periodic_lon": bool(ds.periodic_lon),
            "window": self.cfg.window,
            "horizon": self.cfg.horizon,
            "calendar": str(
                getattr(self.array["time"].values[0], "calendar", None)  # cftime stamps
                or self.array["time"].encoding.get("calendar", "standard")
            ),
        }
