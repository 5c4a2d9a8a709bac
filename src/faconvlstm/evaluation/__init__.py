"""The metrics of the evaluation: pure functions, numpy/xarray/torch in, numbers or xarray out.

They know nothing about training or about the comparison that applies them to trained
models (that is :mod:`faconvlstm.protocol`, behind ``faconvlstm compare``):

- :mod:`~faconvlstm.evaluation.stability` — linear CKA, seed agreement of k-means regimes,
  embedding drift between epochs;
- :mod:`~faconvlstm.evaluation.quality` — WeatherBench2 latitude-weighted RMSE and ACC,
  clustering scores, ARI/NMI against ground truth, composite-based regime scores;
- :mod:`~faconvlstm.evaluation.robustness` — noise and masking perturbations and the
  similarity curves of embeddings under them;
- :mod:`~faconvlstm.evaluation.interpretability` — axial-attention maps, SE/branch
  statistics, occlusion attribution, linear probes of known drivers;
- :mod:`~faconvlstm.evaluation.indices` — climate indices as probe targets (NAO from the
  leading EOF of z500, jet strength / latitude; Niño-3.4 is in ``interpretability``);
- :mod:`~faconvlstm.evaluation.efficiency` — parameters, FLOPs, wall time and peak memory
  of one recurrent layer (shared with ``benchmarks/layer_cost.py``).
"""

from faconvlstm.evaluation.indices import jet_index, nao_index
from faconvlstm.evaluation.interpretability import (
    attention_map,
    attention_mass_on_region,
    box_mean_index,
    knn_probe_accuracy,
    knn_probe_r2,
    linear_probe_accuracy,
    linear_probe_r2,
    nino34_index,
    occlusion_attribution,
    quadratic_probe_accuracy,
    quadratic_probe_r2,
    region_mask,
    se_branch_statistics,
    uniform_attention_map,
)
from faconvlstm.evaluation.quality import (
    acc,
    ari_nmi_truth,
    cluster_quality,
    dayofyear_climatology,
    intra_inter_cluster_rmse,
    lat_weighted_rmse,
    spatial_correlation_matrix,
)
from faconvlstm.evaluation.robustness import (
    add_gaussian_noise,
    block_mask,
    embedding_cosine,
    random_mask,
    robustness_curve,
)
from faconvlstm.evaluation.stability import (
    cluster_agreement,
    embedding_drift,
    kmeans_labels,
    linear_cka,
    mean_pairwise_cka,
    pairwise_cka,
)

__all__ = [
    "acc",
    "add_gaussian_noise",
    "ari_nmi_truth",
    "attention_map",
    "attention_mass_on_region",
    "block_mask",
    "box_mean_index",
    "cluster_agreement",
    "cluster_quality",
    "dayofyear_climatology",
    "embedding_cosine",
    "embedding_drift",
    "intra_inter_cluster_rmse",
    "jet_index",
    "kmeans_labels",
    "knn_probe_accuracy",
    "knn_probe_r2",
    "lat_weighted_rmse",
    "linear_cka",
    "linear_probe_accuracy",
    "linear_probe_r2",
    "mean_pairwise_cka",
    "nao_index",
    "nino34_index",
    "occlusion_attribution",
    "pairwise_cka",
    "quadratic_probe_accuracy",
    "quadratic_probe_r2",
    "random_mask",
    "region_mask",
    "robustness_curve",
    "se_branch_statistics",
    "spatial_correlation_matrix",
    "uniform_attention_map",
]
