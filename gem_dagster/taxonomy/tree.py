"""Two-level taxonomy: clusters grouped into parents by average linkage of their directions."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from ._checks import check_positive_int, check_unit_rows
from .keywords import ClusterKeywords
from .naming import DEFAULT_WORDS_PER_NAME, keyword_names

__all__ = ["ClusterTree", "build_cluster_tree", "default_parent_count"]

# Keywords of a parent listed in the tree and used for its name and description.
_PARENT_KEYWORDS = 10


@dataclass(frozen=True)
class ClusterTree:
    """Parent groups of the clusters.

    Attributes
    ----------
    root : dict
        JSON-serialisable tree ``{"name": str, "children": [{"id": int, "name": str,
        "description": str, "keywords": [str, ...], "clusters": [int, ...]}, ...]}``.
        Every cluster id appears in exactly one child. Children are ordered by their smallest
        cluster id, and their ids are their positions.
    parent_of : ndarray of int64, shape (K,)
        Parent id of each cluster.
    """

    root: dict
    parent_of: np.ndarray


def default_parent_count(n_clusters: int) -> int:
    """Return ``round(sqrt(K))``, at least 1, the default number of parent groups."""
    return max(1, round(math.sqrt(n_clusters)))


def build_cluster_tree(
    mean_directions,
    keywords: Sequence[ClusterKeywords],
    *,
    n_parents: int | None = None,
    words_per_name: int = DEFAULT_WORDS_PER_NAME,
    root_name: str = "All clusters",
) -> ClusterTree:
    """Group the clusters into parents and name each parent from its children's keywords.

    The mean directions are clustered by average linkage on cosine distance
    ``1 - mu_j . mu_k``, and the dendrogram is cut into at most ``n_parents`` groups. A cut
    can give fewer groups when several merges happen at the same distance.

    A parent's keywords are its children's keywords ranked by the sum of their scores, where
    each child's scores are first divided by that child's best score. A term shared by
    several children therefore outranks a term that only one child has. Parent names are
    made unique in the same way as cluster names.

    Parameters
    ----------
    mean_directions : array-like, shape (K, d)
        Unit-norm cluster mean directions.
    keywords : sequence of ClusterKeywords, length K
        Keywords of each cluster, in cluster order.
    n_parents : int, optional
        Number of parent groups, in 1 .. K. Defaults to ``round(sqrt(K))``.
    words_per_name : int
        Number of keywords in a parent's name before any extension.
    root_name : str
        Name of the root node.

    Returns
    -------
    ClusterTree
    """
    mean_directions = check_unit_rows(mean_directions, "mean_directions", dtype=np.float64)
    n_clusters = mean_directions.shape[0]
    if len(keywords) != n_clusters:
        raise ValueError(
            f"keywords has {len(keywords)} entries but mean_directions has {n_clusters} rows. "
            "Pass the keywords of every cluster in cluster order."
        )
    if n_parents is None:
        n_parents = default_parent_count(n_clusters)
    n_parents = check_positive_int(n_parents, "n_parents")
    if n_parents > n_clusters:
        raise ValueError(
            f"n_parents must be at most the number of clusters {n_clusters}, got {n_parents}"
        )

    parent_of = _cut_dendrogram(mean_directions, n_parents)
    groups = [np.flatnonzero(parent_of == parent).tolist() for parent in range(parent_of.max() + 1)]

    parent_terms = [_merged_keywords([keywords[child] for child in group]) for group in groups]
    names = keyword_names(parent_terms, words_per_name=words_per_name)

    children = [
        {
            "id": parent,
            "name": names[parent].name,
            "description": names[parent].description,
            "keywords": parent_terms[parent],
            "clusters": group,
        }
        for parent, group in enumerate(groups)
    ]
    return ClusterTree(root={"name": root_name, "children": children}, parent_of=parent_of)


def _cut_dendrogram(mean_directions: np.ndarray, n_parents: int) -> np.ndarray:
    """Return the parent of each cluster, numbered in order of each parent's smallest child."""
    n_clusters = mean_directions.shape[0]
    if n_clusters == 1 or n_parents == 1:
        return np.zeros(n_clusters, dtype=np.int64)

    # Distances from the Gram matrix, clipped because rounding can give -1e-16 for equal
    # directions, and symmetrised so that squareform accepts the matrix.
    distances = np.clip(1.0 - mean_directions @ mean_directions.T, 0.0, 2.0)
    distances = 0.5 * (distances + distances.T)
    np.fill_diagonal(distances, 0.0)
    merges = linkage(squareform(distances, checks=False), method="average")
    groups = fcluster(merges, t=n_parents, criterion="maxclust")

    parent_of = np.empty(n_clusters, dtype=np.int64)
    renumbered: dict[int, int] = {}
    for cluster, group in enumerate(groups):
        parent_of[cluster] = renumbered.setdefault(int(group), len(renumbered))
    return parent_of


def _merged_keywords(children: Sequence[ClusterKeywords]) -> list[str]:
    """Rank the children's terms by their summed, per-child normalised scores."""
    totals: dict[str, float] = defaultdict(float)
    for child in children:
        if not child.terms:
            continue
        best = max(child.scores)
        for term, score in zip(child.terms, child.scores, strict=True):
            totals[term] += score / best if best > 0 else 1.0

    # Ties break alphabetically so that parent names do not depend on dict order.
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [term for term, _ in ranked[:_PARENT_KEYWORDS]]
