"""Geometric Influence Score (GIS) of each document in a fitted von Mises-Fisher mixture.

For document i with hard label k,

    GIS_i = log gamma_ik + log f_k(x_i) + beta * log rho_k(x_i),

where gamma_ik is the soft assignment probability (confidence),
``log f_k(x_i) = log C_d(kappa_k) + kappa_k mu_k . x_i`` is the vMF log density of cluster k
(centrality), and ``rho_k(x_i)`` is the mean cosine similarity of x_i to its M nearest
neighbours inside cluster k (local density). The density term keeps isolated outliers, which
can score high on the first two terms, from being ranked first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gem_dagster.clustering.sphere import log_vmf_normalizer

from ._checks import (
    check_assigned_probabilities,
    check_concentrations,
    check_fraction,
    check_labels,
    check_nonnegative_float,
    check_positive_int,
    check_unit_rows,
)

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DENSITY_FLOOR",
    "DEFAULT_NEIGHBOURS",
    "InfluenceScores",
    "geometric_influence_scores",
    "local_density",
]

DEFAULT_BETA = 0.5
DEFAULT_NEIGHBOURS = 10

DEFAULT_DENSITY_FLOOR = 1e-3
"""Lower clip of rho before the log. Mean cosines can be 0 or negative in high dimension."""

# A block of queries times the cluster's members is at most this many float32 similarities
# (64 MiB), whatever the cluster size.
_SIMILARITY_BLOCK_ELEMENTS = 16 * 1024 * 1024


@dataclass(frozen=True)
class InfluenceScores:
    """Per-document GIS and its three components, all float64 arrays of shape (N,).

    Attributes
    ----------
    log_confidence : ndarray, shape (N,)
        ``log gamma_ik`` of the assigned cluster k.
    log_centrality : ndarray, shape (N,)
        ``log f_k(x_i) = log C_d(kappa_k) + kappa_k mu_k . x_i``.
    density : ndarray, shape (N,)
        ``rho_k(x_i)``, the unclipped mean cosine to the nearest neighbours in the same
        cluster. NaN for the only member of a singleton cluster, which has no neighbours.
    log_density : ndarray, shape (N,)
        ``log max(rho_k(x_i), density_floor)``. Singletons get ``log density_floor``, the
        value of the most isolated document possible.
    total : ndarray, shape (N,)
        ``log_confidence + log_centrality + beta * log_density``.
    labels : ndarray of int64, shape (N,)
        Hard labels the scores were computed for.
    n_clusters : int
        Number of clusters K.
    beta : float
        Weight of the density term.
    neighbours : int
        Number of nearest neighbours M behind ``density``.
    density_floor : float
        Lower clip of ``density`` before the log.
    """

    log_confidence: np.ndarray
    log_centrality: np.ndarray
    density: np.ndarray
    log_density: np.ndarray
    total: np.ndarray
    labels: np.ndarray
    n_clusters: int
    beta: float
    neighbours: int
    density_floor: float


def geometric_influence_scores(
    vectors,
    labels,
    probabilities,
    mean_directions,
    concentrations,
    *,
    beta: float = DEFAULT_BETA,
    neighbours: int = DEFAULT_NEIGHBOURS,
    density_floor: float = DEFAULT_DENSITY_FLOOR,
) -> InfluenceScores:
    """Compute the Geometric Influence Score of every document and its three components.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        Unit-norm document embeddings, float32 or wider.
    labels : array-like of int, shape (N,)
        Hard cluster label of each document, in 0 .. K-1.
    probabilities : array-like, shape (N,) or (N, K)
        Probability of each document's assigned cluster, or the full soft assignment matrix
        from which column ``labels[i]`` of row i is taken. Zeros are raised to 1e-30 so that
        the log stays finite.
    mean_directions : array-like, shape (K, d)
        Unit-norm vMF mean directions mu_k.
    concentrations : array-like, shape (K,)
        vMF concentrations kappa_k >= 0.
    beta : float
        Weight of the log density term, >= 0. With 0 the score ignores density.
    neighbours : int
        Number M of nearest neighbours inside the cluster that define rho. Clusters with M or
        fewer other members use all of them.
    density_floor : float
        Lower clip of rho before the log, in (0, 1]. Mean cosines can be 0 or negative, and
        the clip gives all such documents the same, lowest, density score.

    Returns
    -------
    InfluenceScores
        The total score and each component, shape (N,) each.

    Raises
    ------
    ValueError
        If shapes disagree, rows are not unit-norm, a label is outside 0 .. K-1, a probability
        is outside [0, 1], or a parameter is out of range. The message names the value.
    """
    vectors = check_unit_rows(vectors, "vectors")
    mean_directions = check_unit_rows(mean_directions, "mean_directions", dtype=np.float64)
    n_samples, dim = vectors.shape
    n_clusters = mean_directions.shape[0]
    if mean_directions.shape[1] != dim:
        raise ValueError(
            f"mean_directions has {mean_directions.shape[1]} columns but vectors has {dim}. "
            "Both must live in the same embedding space."
        )
    labels = check_labels(labels, n_samples, n_clusters)
    assigned = check_assigned_probabilities(probabilities, labels, n_clusters)
    kappa = check_concentrations(concentrations, n_clusters)
    beta = check_nonnegative_float(beta, "beta")
    neighbours = check_positive_int(neighbours, "neighbours")
    density_floor = check_fraction(density_floor, "density_floor", low=1e-12, high=1.0)

    log_confidence = np.log(assigned)
    log_centrality = _log_vmf_density(vectors, labels, mean_directions, kappa)

    density = _local_density(vectors, labels, n_clusters, neighbours)
    clipped = np.where(np.isnan(density), density_floor, np.maximum(density, density_floor))
    log_density = np.log(clipped)

    total = log_confidence + log_centrality + beta * log_density
    return InfluenceScores(
        log_confidence=log_confidence,
        log_centrality=log_centrality,
        density=density,
        log_density=log_density,
        total=total,
        labels=labels,
        n_clusters=n_clusters,
        beta=beta,
        neighbours=neighbours,
        density_floor=density_floor,
    )


def _log_vmf_density(
    vectors: np.ndarray, labels: np.ndarray, mean_directions: np.ndarray, kappa: np.ndarray
) -> np.ndarray:
    """Compute ``log C_d(kappa_k) + kappa_k mu_k . x_i`` for each row, float64 of shape (N,)."""
    dim = vectors.shape[1]
    log_normalizer = np.asarray(log_vmf_normalizer(dim, kappa), dtype=np.float64)

    result = np.empty(vectors.shape[0], dtype=np.float64)
    for cluster in range(mean_directions.shape[0]):
        members = np.flatnonzero(labels == cluster)
        if members.size == 0:
            continue

        # The dot product is summed in float64 because kappa, 1e4 and more for tight clusters,
        # multiplies every rounding error of the cosine.
        cosines = vectors[members].astype(np.float64) @ mean_directions[cluster]
        result[members] = log_normalizer[cluster] + kappa[cluster] * cosines
    return result


def local_density(
    vectors, labels, n_clusters: int, *, neighbours: int = DEFAULT_NEIGHBOURS
) -> np.ndarray:
    """Compute each document's mean cosine to its nearest neighbours inside its own cluster.

    The search is exact and brute force. It runs one cluster at a time on blocks of query
    rows, so memory stays at about 64 MiB of similarities plus one copy of the largest
    cluster, whatever the cluster sizes. The cost is O(n_k^2 d) per cluster of size n_k.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        Unit-norm embeddings.
    labels : array-like of int, shape (N,)
        Hard labels in 0 .. n_clusters-1.
    n_clusters : int
        Number of clusters K.
    neighbours : int
        Number M of nearest neighbours, excluding the document itself. A cluster with M or
        fewer other members uses all of them.

    Returns
    -------
    ndarray of float64, shape (N,)
        Mean cosine to the neighbours, in [-1, 1]. NaN for the member of a singleton cluster.
    """
    vectors = check_unit_rows(vectors, "vectors")
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    labels = check_labels(labels, vectors.shape[0], n_clusters)
    neighbours = check_positive_int(neighbours, "neighbours")
    return _local_density(vectors, labels, n_clusters, neighbours)


def _local_density(
    vectors: np.ndarray, labels: np.ndarray, n_clusters: int, neighbours: int
) -> np.ndarray:
    density = np.full(vectors.shape[0], np.nan, dtype=np.float64)
    for cluster in range(n_clusters):
        members = np.flatnonzero(labels == cluster)
        if members.size < 2:
            continue
        density[members] = _cluster_density(vectors[members], neighbours)
    return density


def _cluster_density(members: np.ndarray, neighbours: int) -> np.ndarray:
    """Return the mean cosine of each row of ``members`` (n, d) to its nearest other rows."""
    size = members.shape[0]
    count = min(neighbours, size - 1)
    block_rows = max(1, _SIMILARITY_BLOCK_ELEMENTS // size)

    density = np.empty(size, dtype=np.float64)
    for start in range(0, size, block_rows):
        stop = min(start + block_rows, size)
        similarities = members[start:stop] @ members.T

        # A row is its own nearest neighbour, so its own column is masked out by index. An
        # exact duplicate elsewhere in the cluster still counts, with cosine 1.
        rows = np.arange(stop - start)
        similarities[rows, start + rows] = -np.inf

        if count < size - 1:
            nearest = np.partition(similarities, size - count, axis=1)[:, size - count :]
        else:
            nearest = np.where(np.isinf(similarities), 0.0, similarities)
        density[start:stop] = nearest.sum(axis=1, dtype=np.float64) / count
    return density
