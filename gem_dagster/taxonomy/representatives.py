"""Choice of documents per cluster: representatives for the taxonomy, a balanced training set.

Representatives are the top-R documents of each cluster under a ranking score, skipping any
candidate that is a near-duplicate (cosine above a threshold) of one already chosen. The
ranking is the GIS by default. The ablation pickers rank by confidence alone
(``log gamma_ik``), by centrality alone (``log f_k(x_i)``) or at random, with the same
duplicate suppression.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._checks import check_fraction, check_numeric_array, check_positive_int, check_unit_rows
from .influence import InfluenceScores

__all__ = [
    "DEFAULT_DUPLICATE_THRESHOLD",
    "SELECTION_METHODS",
    "BalancedSelection",
    "balanced_training_selection",
    "select_distinct",
    "select_representatives",
]

logger = logging.getLogger(__name__)

DEFAULT_DUPLICATE_THRESHOLD = 0.95

SELECTION_METHODS = ("gis", "confidence", "centre", "random")
"""Ranking behind ``select_representatives``: total GIS, log gamma, log f_k, or random order."""


def select_representatives(
    vectors,
    influence: InfluenceScores,
    *,
    count: int = 5,
    method: str = "gis",
    duplicate_threshold: float | None = DEFAULT_DUPLICATE_THRESHOLD,
    seed: int | None = 0,
) -> list[np.ndarray]:
    """Pick up to ``count`` distinct top-ranked documents of every cluster.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        Unit-norm document embeddings, in the row order of ``influence``.
    influence : InfluenceScores
        Output of ``geometric_influence_scores`` for the same documents.
    count : int
        Number R of representatives per cluster. A cluster with fewer distinct documents
        yields fewer.
    method : {"gis", "confidence", "centre", "random"}
        Ranking score: the total GIS, ``log gamma_ik`` alone, ``log f_k(x_i)`` alone, or a
        random order drawn from ``seed``.
    duplicate_threshold : float or None
        A candidate whose cosine to an already chosen representative exceeds this value is
        skipped. None turns the suppression off.
    seed : int or None
        Seed of the random order. Only ``method="random"`` uses it.

    Returns
    -------
    list of ndarray of int64
        Entry k contains the row indices of cluster k's representatives, best first. An empty
        cluster gets an empty array.

    Raises
    ------
    ValueError
        If ``method`` is unknown, ``vectors`` does not match ``influence`` or a parameter is
        out of range.
    """
    if method not in SELECTION_METHODS:
        raise ValueError(f"method must be one of {SELECTION_METHODS}, got {method!r}")
    vectors = check_unit_rows(vectors, "vectors")
    labels = influence.labels
    if vectors.shape[0] != labels.shape[0]:
        raise ValueError(
            f"vectors has {vectors.shape[0]} rows but influence covers {labels.shape[0]} "
            "documents. Pass the vectors the scores were computed from."
        )
    count = check_positive_int(count, "count")
    if duplicate_threshold is not None:
        duplicate_threshold = check_fraction(
            duplicate_threshold, "duplicate_threshold", low=-1.0, high=1.0
        )

    scores = _ranking_scores(influence, method, seed)
    chosen = []
    for cluster in range(influence.n_clusters):
        members = np.flatnonzero(labels == cluster)
        order = members[np.argsort(-scores[members], kind="stable")]
        chosen.append(_select_distinct(vectors, order, count, duplicate_threshold))
    return chosen


def _ranking_scores(influence: InfluenceScores, method: str, seed: int | None) -> np.ndarray:
    if method == "gis":
        return influence.total
    if method == "confidence":
        return influence.log_confidence
    if method == "centre":
        return influence.log_centrality
    return np.random.default_rng(seed).random(influence.labels.shape[0])


def select_distinct(
    vectors, order, count: int, duplicate_threshold: float | None = DEFAULT_DUPLICATE_THRESHOLD
) -> np.ndarray:
    """Walk ``order`` and keep the first ``count`` rows that are not near-duplicates.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        Unit-norm embeddings.
    order : array-like of int, shape (n,)
        Candidate row indices, best first.
    count : int
        Maximum number of rows to keep.
    duplicate_threshold : float or None
        A candidate whose cosine to a kept row exceeds this value is skipped. None keeps the
        first ``count`` candidates.

    Returns
    -------
    ndarray of int64, shape (<= count,)
        Kept row indices in the order they were kept.
    """
    vectors = check_unit_rows(vectors, "vectors")
    order = check_numeric_array(order, "order", ndim=1).astype(np.int64)
    if order.size and (order.min() < 0 or order.max() >= vectors.shape[0]):
        bad = int(order[(order < 0) | (order >= vectors.shape[0])][0])
        raise ValueError(f"order contains row {bad}, outside 0 .. {vectors.shape[0] - 1}")
    count = check_positive_int(count, "count")
    if duplicate_threshold is not None:
        duplicate_threshold = check_fraction(
            duplicate_threshold, "duplicate_threshold", low=-1.0, high=1.0
        )
    return _select_distinct(vectors, order, count, duplicate_threshold)


def _select_distinct(
    vectors: np.ndarray, order: np.ndarray, count: int, duplicate_threshold: float | None
) -> np.ndarray:
    if duplicate_threshold is None:
        return order[:count].copy()

    kept: list[int] = []
    kept_vectors = np.empty((count, vectors.shape[1]), dtype=np.float64)
    for row in order:
        candidate = vectors[row].astype(np.float64)
        if kept and np.max(kept_vectors[: len(kept)] @ candidate) > duplicate_threshold:
            continue
        kept_vectors[len(kept)] = candidate
        kept.append(int(row))
        if len(kept) == count:
            break
    return np.asarray(kept, dtype=np.int64)


@dataclass(frozen=True)
class BalancedSelection:
    """Documents chosen for the student's training set, the same number from every cluster.

    Attributes
    ----------
    indices : ndarray of int64, shape (n_selected,)
        Row indices, grouped by cluster in increasing cluster id, best GIS first in a group.
    counts : ndarray of int64, shape (K,)
        Number of documents taken from each cluster.
    per_cluster : int
        Requested number B per cluster.
    short_clusters : dict of int to int
        Clusters with fewer than B documents, mapped to the number they had. All of their
        documents are in ``indices``.
    """

    indices: np.ndarray
    counts: np.ndarray
    per_cluster: int
    short_clusters: dict[int, int]


def balanced_training_selection(
    labels, gis, per_cluster: int, *, n_clusters: int | None = None
) -> BalancedSelection:
    """Take the top ``per_cluster`` documents by GIS from every cluster.

    Every cluster contributes the same number B, so the training set is balanced across
    clusters. A cluster with fewer than B documents contributes all of them. It is listed in
    ``short_clusters``, and a warning is logged.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Hard labels in 0 .. K-1.
    gis : array-like of float, shape (N,)
        Ranking score per document, normally ``InfluenceScores.total``.
    per_cluster : int
        Number B of documents per cluster.
    n_clusters : int, optional
        Number of clusters K. Defaults to ``max(labels) + 1``. Pass it so that clusters with
        no documents at all are reported as short.

    Returns
    -------
    BalancedSelection
    """
    gis = check_numeric_array(gis, "gis", ndim=1).astype(np.float64)
    labels = check_numeric_array(labels, "labels", ndim=1)
    if labels.shape[0] != gis.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but gis has {gis.shape[0]}. "
            "Pass one score per labelled document."
        )
    if labels.size and (labels.min() < 0 or not np.array_equal(labels, np.round(labels))):
        bad = labels[(labels < 0) | (labels != np.round(labels))][0].item()
        raise ValueError(f"labels must be integers >= 0, got {bad!r}")
    labels = labels.astype(np.int64)
    per_cluster = check_positive_int(per_cluster, "per_cluster")

    largest_label = int(labels.max()) + 1 if labels.size else 0
    if n_clusters is None:
        n_clusters = largest_label
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if largest_label > n_clusters:
        raise ValueError(
            f"label {largest_label - 1} is outside 0 .. {n_clusters - 1}, the range given by "
            f"n_clusters={n_clusters}"
        )

    groups = []
    counts = np.zeros(n_clusters, dtype=np.int64)
    short: dict[int, int] = {}
    for cluster in range(n_clusters):
        members = np.flatnonzero(labels == cluster)
        if members.size < per_cluster:
            short[cluster] = int(members.size)
        best = members[np.argsort(-gis[members], kind="stable")][:per_cluster]
        counts[cluster] = best.size
        groups.append(best)

    if short:
        logger.warning(
            "%d of %d clusters have fewer than %d documents, so all of their documents are "
            "taken and the selection is not fully balanced (cluster: size): %s",
            len(short),
            n_clusters,
            per_cluster,
            short,
        )
    indices = np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)
    return BalancedSelection(
        indices=indices.astype(np.int64),
        counts=counts,
        per_cluster=per_cluster,
        short_clusters=short,
    )
