"""The data pipeline: xarray in, normalised PyTorch windows out, results back to NetCDF/Zarr.

- :func:`open_gridded` — NetCDF/Zarr (local or fsspec) → lazy ``(time, channel, lat, lon)``.
- :func:`compute_stats` / :class:`NormStats` — training-period normalisation, climatology.
- :func:`split_by_years`, :class:`WindowDataset`, :func:`collate_windows` — model inputs.
- :func:`annual_phase` — calendar-aware time stamps → phase for the seasonal encoding.
- :func:`sample` — real observed data shipped with ``eofs`` (``"sst"``, ``"z500"``).
- :func:`synthetic` — synthetic climate with ground-truth regimes and a teleconnection.
- :func:`write_embeddings`, :func:`write_fields`, :func:`write_labels`, :func:`save_dataset`
  (atomic writers; ``*_dataset`` build the Dataset, :func:`save_datasets` writes a set).
"""

from faconvlstm.data.gridded import (
    detect_periodic_lon,
    latitude_weights,
    open_gridded,
    split_by_years,
)
from faconvlstm.data.io import (
    embeddings_dataset,
    features_dataset,
    fields_dataset,
    forecast_dataset,
    global_attrs,
    labels_dataset,
    save_dataset,
    save_datasets,
    write_embeddings,
    write_fields,
    write_labels,
)
from faconvlstm.data.samples import sample
from faconvlstm.data.stats import NormStats, compute_climatology, compute_stats
from faconvlstm.data.synthetic import synthetic
from faconvlstm.data.time import annual_phase
from faconvlstm.data.windows import WindowDataset, collate_windows

__all__ = [
    "NormStats",
    "WindowDataset",
    "annual_phase",
    "collate_windows",
    "compute_climatology",
    "compute_stats",
    "detect_periodic_lon",
    "embeddings_dataset",
    "features_dataset",
    "fields_dataset",
    "forecast_dataset",
    "global_attrs",
    "labels_dataset",
    "latitude_weights",
    "open_gridded",
    "sample",
    "save_dataset",
    "save_datasets",
    "split_by_years",
    "synthetic",
    "write_embeddings",
    "write_fields",
    "write_labels",
]
