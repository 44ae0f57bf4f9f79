"""Clustering of unit-norm embeddings into balanced semantic domains.

A plain library (no Dagster imports): the GEM estimator, baselines with the same interface,
the von Mises-Fisher special functions, samplers and metrics. It takes NumPy arrays or torch
tensors and returns NumPy arrays and small dataclasses.
"""

from ._runtime import ConvergenceWarning
from .baselines import KMeans, SphericalKMeans, VanillaVMF
from .diagnostics import IterationRecord, Reseed, find_objective_decreases
from .gem import GEM
from .metrics import (
    adjusted_rand_index,
    balance_entropy,
    balance_entropy_of_labels,
    cluster_shares,
    largest_share,
    normalized_mutual_info,
    smallest_share,
)
from .sampling import sample_anisotropic_cone, sample_vmf, sample_vmf_mixture
from .sphere import (
    DEFAULT_KAPPA_BOUNDS,
    bessel_ratio,
    bessel_ratio_inverse,
    log_bessel_iv,
    log_vmf_normalizer,
)

__all__ = [
    "DEFAULT_KAPPA_BOUNDS",
    "GEM",
    "ConvergenceWarning",
    "IterationRecord",
    "KMeans",
    "Reseed",
    "SphericalKMeans",
    "VanillaVMF",
    "adjusted_rand_index",
    "balance_entropy",
    "balance_entropy_of_labels",
    "bessel_ratio",
    "bessel_ratio_inverse",
    "cluster_shares",
    "find_objective_decreases",
    "largest_share",
    "log_bessel_iv",
    "log_vmf_normalizer",
    "normalized_mutual_info",
    "sample_anisotropic_cone",
    "sample_vmf",
    "sample_vmf_mixture",
    "smallest_share",
]
