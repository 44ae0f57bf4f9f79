"""Keywords per cluster: GIS-weighted class-based TF-IDF, re-ranked by geometric relevance.

Class-based TF-IDF treats each cluster as one document. Here that document is the GIS-weighted
average of the cluster's documents. Document i of cluster k enters with weight
``w_i = softmax(GIS / temperature)`` over the members of k. The weights of a cluster sum to 1,
so its term counts are expected counts per document. With those weighted counts ``n_kt``,

    ctfidf_kt = (n_kt / sum_t n_kt) * log(1 + A / sum_k n_kt),

where A is the mean of ``sum_t n_kt`` over the non-empty clusters. The first factor is the
term's share of the cluster's words. The second is large for terms that occur in few clusters.

When a term embedding is given, the top candidates by c-TF-IDF are re-ranked by geometric
relevance, ``cos(e_t, mu_k) - max_(j != k) cos(e_t, mu_j)``: how much closer the term lies to
its own cluster's direction than to any other cluster's. See ``rerank_by_geometry`` for how
the two scores are combined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from ._checks import (
    check_fraction,
    check_numeric_array,
    check_positive_int,
    check_same_length,
    check_unit_rows,
)
from .influence import InfluenceScores
from .tokens import tokenize

__all__ = [
    "ClusterKeywords",
    "TermEmbedder",
    "class_tfidf",
    "extract_keywords",
    "keywords_frame",
    "rerank_by_geometry",
    "softmax_weights",
]

TermEmbedder = Callable[[list[str]], np.ndarray]
"""Function that maps n terms to an (n, d) array of unit-norm embeddings."""


@dataclass(frozen=True)
class ClusterKeywords:
    """Ranked keywords of one cluster.

    Attributes
    ----------
    cluster : int
        Cluster id k.
    terms : tuple of str
        Keywords, best first.
    scores : tuple of float
        Final score of each term, the one the ranking uses. Equal to ``ctfidf`` without a term
        embedding, and the combined score in [0, 1] with one.
    ctfidf : tuple of float
        GIS-weighted c-TF-IDF of each term.
    relevance : tuple of float or None
        Geometric relevance of each term in [-2, 2], or None without a term embedding.
    """

    cluster: int
    terms: tuple[str, ...]
    scores: tuple[float, ...]
    ctfidf: tuple[float, ...]
    relevance: tuple[float, ...] | None = None


@dataclass(frozen=True)
class _TermCounts:
    matrix: sp.csr_matrix
    """Term counts, shape (N, V)."""
    vocabulary: list[str]


def extract_keywords(
    texts: Sequence[str] | pl.Series,
    influence: InfluenceScores,
    mean_directions,
    *,
    top_n: int = 10,
    candidates: int = 30,
    min_df: int = 2,
    bigrams: bool = False,
    temperature: float = 1.0,
    embed_terms: TermEmbedder | None = None,
    geometry_weight: float = 0.5,
) -> list[ClusterKeywords]:
    """Find the top ``top_n`` keywords of every cluster.

    Parameters
    ----------
    texts : sequence of str or polars.Series of str, length N
        Document texts in the row order of ``influence``.
    influence : InfluenceScores
        GIS of the same documents. Its labels define the clusters.
    mean_directions : array-like, shape (K, d)
        Unit-norm cluster mean directions. Only the geometric re-ranking uses them.
    top_n : int
        Number of keywords per cluster.
    candidates : int
        Number of c-TF-IDF candidates per cluster that the geometric re-ranking reorders.
        Must be >= ``top_n``.
    min_df : int
        Minimum number of documents, over the whole corpus, that a term must occur in.
    bigrams : bool
        Whether two adjacent content words also count as a term.
    temperature : float
        Divisor of the GIS inside the softmax, > 0. Because kappa multiplies the cosine, the
        GIS values of one cluster can spread over tens of nats or more, and then a few
        documents get nearly all the weight. A larger temperature spreads it.
    embed_terms : callable, optional
        Maps a list of terms to unit-norm embeddings of shape (n_terms, d), in the space of
        ``mean_directions``. Without it the keywords are ranked by c-TF-IDF alone.
    geometry_weight : float
        Weight in [0, 1] of geometric relevance in the combined score.

    Returns
    -------
    list of ClusterKeywords
        One entry per cluster, in cluster order. A cluster without documents, or whose
        documents have no term left after filtering, gets no terms.
    """
    texts = _check_texts(texts, influence.labels.shape[0])
    mean_directions = check_unit_rows(mean_directions, "mean_directions", dtype=np.float64)
    if mean_directions.shape[0] != influence.n_clusters:
        raise ValueError(
            f"mean_directions has {mean_directions.shape[0]} rows but influence has "
            f"{influence.n_clusters} clusters"
        )
    top_n = check_positive_int(top_n, "top_n")
    candidates = check_positive_int(candidates, "candidates")
    if candidates < top_n:
        raise ValueError(f"candidates ({candidates}) must be >= top_n ({top_n})")
    min_df = check_positive_int(min_df, "min_df")
    geometry_weight = check_fraction(geometry_weight, "geometry_weight", low=0.0, high=1.0)

    weights = softmax_weights(influence.total, influence.labels, temperature=temperature)
    counts = _count_terms(texts, bigrams=bigrams, min_df=min_df)
    scores = class_tfidf(counts.matrix, influence.labels, weights, influence.n_clusters)

    shortlists = [_top_terms(scores, cluster, candidates) for cluster in range(scores.shape[0])]
    if embed_terms is None:
        return [
            _keywords_without_geometry(cluster, columns, values, counts.vocabulary, top_n)
            for cluster, (columns, values) in enumerate(shortlists)
        ]

    return rerank_by_geometry(
        [[counts.vocabulary[t] for t in columns] for columns, _ in shortlists],
        [values for _, values in shortlists],
        mean_directions,
        embed_terms,
        top_n=top_n,
        geometry_weight=geometry_weight,
    )


def _check_texts(texts, n_samples: int) -> list[str]:
    values = texts.to_list() if isinstance(texts, pl.Series) else list(texts)
    check_same_length(values, "texts", n_samples)
    for index, text in enumerate(values):
        if not isinstance(text, str):
            raise ValueError(
                f"texts[{index}] is {type(text).__name__}, not str. Replace missing texts "
                "with an empty string."
            )
    return values


def softmax_weights(gis, labels, *, temperature: float = 1.0) -> np.ndarray:
    """Compute ``softmax(gis / temperature)`` separately inside each cluster.

    Parameters
    ----------
    gis : array-like of float, shape (N,)
        Score per document.
    labels : array-like of int, shape (N,)
        Cluster of each document.
    temperature : float
        Divisor of the scores, > 0.

    Returns
    -------
    ndarray of float64, shape (N,)
        Non-negative weights that sum to 1 over the members of each cluster.
    """
    gis = check_numeric_array(gis, "gis", ndim=1).astype(np.float64)
    labels = check_numeric_array(labels, "labels", ndim=1).astype(np.int64)
    if labels.shape != gis.shape:
        raise ValueError(f"labels has {labels.shape[0]} entries but gis has {gis.shape[0]}")
    if isinstance(temperature, bool) or not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")

    weights = np.empty_like(gis)
    for cluster in np.unique(labels):
        members = labels == cluster

        # Subtracting the maximum keeps exp() from overflowing for GIS in the thousands.
        shifted = np.exp((gis[members] - gis[members].max()) / temperature)
        weights[members] = shifted / shifted.sum()
    return weights


def _count_terms(texts: list[str], *, bigrams: bool, min_df: int) -> _TermCounts:
    """Count the terms of every document, keeping terms that occur in >= ``min_df`` documents."""
    per_document = [Counter(tokenize(text, bigrams=bigrams)) for text in texts]

    document_frequency: Counter[str] = Counter()
    for counts in per_document:
        document_frequency.update(counts.keys())
    vocabulary = sorted(term for term, df in document_frequency.items() if df >= min_df)
    column = {term: index for index, term in enumerate(vocabulary)}

    rows, columns, values = [], [], []
    for row, counts in enumerate(per_document):
        for term, count in counts.items():
            if term in column:
                rows.append(row)
                columns.append(column[term])
                values.append(count)
    matrix = sp.csr_matrix(
        (np.asarray(values, dtype=np.float64), (rows, columns)),
        shape=(len(texts), len(vocabulary)),
    )
    return _TermCounts(matrix=matrix, vocabulary=vocabulary)


def class_tfidf(term_counts, labels, weights, n_clusters: int) -> sp.csr_matrix:
    """Compute the weighted class-based TF-IDF of every term in every cluster.

    Parameters
    ----------
    term_counts : scipy sparse matrix or ndarray, shape (N, V)
        Count of term t in document i.
    labels : array-like of int, shape (N,)
        Cluster of each document, in 0 .. n_clusters-1.
    weights : array-like of float, shape (N,)
        Weight of each document inside its cluster, normally summing to 1 per cluster.
    n_clusters : int
        Number of clusters K.

    Returns
    -------
    scipy.sparse.csr_matrix of float64, shape (K, V)
        ``(n_kt / sum_t n_kt) * log(1 + A / sum_k n_kt)`` with weighted counts ``n_kt``. Rows
        of clusters without terms are 0, and so are terms that no weighted document contains.
        The matrix stays sparse because V can reach millions of terms with bigrams.
    """
    term_counts = sp.csr_matrix(term_counts)
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    n_samples = term_counts.shape[0]
    labels = check_numeric_array(labels, "labels", ndim=1).astype(np.int64)
    weights = check_numeric_array(weights, "weights", ndim=1).astype(np.float64)
    if labels.shape[0] != n_samples or weights.shape[0] != n_samples:
        raise ValueError(
            f"term_counts has {n_samples} rows, labels {labels.shape[0]} and weights "
            f"{weights.shape[0]}. All three need one entry per document."
        )
    outside = (labels < 0) | (labels >= n_clusters)
    if outside.any():
        raise ValueError(f"label {labels[outside][0].item()} is outside 0 .. {n_clusters - 1}")

    # Row k of the (K, N) matrix contains the weights of cluster k's documents.
    assignment = sp.csr_matrix(
        (weights, (labels, np.arange(n_samples))), shape=(n_clusters, n_samples)
    )
    cluster_counts = sp.csr_matrix(assignment @ term_counts)

    cluster_lengths = np.asarray(cluster_counts.sum(axis=1)).ravel()
    term_totals = np.asarray(cluster_counts.sum(axis=0)).ravel()
    non_empty = cluster_lengths > 0
    if not non_empty.any():
        return sp.csr_matrix(cluster_counts.shape, dtype=np.float64)
    average_length = cluster_lengths[non_empty].mean()

    row_scale = np.zeros(n_clusters)
    row_scale[non_empty] = 1.0 / cluster_lengths[non_empty]
    inverse_frequency = np.zeros(term_totals.shape[0])
    present = term_totals > 0
    inverse_frequency[present] = np.log1p(average_length / term_totals[present])
    return sp.csr_matrix(sp.diags(row_scale) @ cluster_counts @ sp.diags(inverse_frequency))


def _top_terms(scores: sp.csr_matrix, cluster: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the columns and values of row ``cluster``'s ``count`` best positive scores."""
    start, stop = scores.indptr[cluster], scores.indptr[cluster + 1]
    columns = scores.indices[start:stop]
    values = scores.data[start:stop]
    positive = values > 0
    columns, values = columns[positive], values[positive]

    # Ties break by column, which is alphabetical order, so the result is deterministic.
    order = np.lexsort((columns, -values))[:count]
    return columns[order], values[order]


def _keywords_without_geometry(
    cluster: int, columns: np.ndarray, values: np.ndarray, vocabulary: list[str], top_n: int
) -> ClusterKeywords:
    scores = tuple(float(value) for value in values[:top_n])
    return ClusterKeywords(
        cluster=cluster,
        terms=tuple(vocabulary[t] for t in columns[:top_n]),
        scores=scores,
        ctfidf=scores,
    )


def rerank_by_geometry(
    terms: Sequence[Sequence[str]],
    ctfidf: Sequence[np.ndarray],
    mean_directions,
    embed_terms: TermEmbedder,
    *,
    top_n: int = 10,
    geometry_weight: float = 0.5,
) -> list[ClusterKeywords]:
    """Re-rank each cluster's candidate terms by c-TF-IDF and geometric relevance together.

    Relevance of term t to cluster k is ``cos(e_t, mu_k) - max_(j != k) cos(e_t, mu_j)``, or
    ``cos(e_t, mu_k)`` when there is a single cluster. Within each cluster's candidate list
    both scores are min-max scaled to [0, 1], so the best candidate on each scale gets 1 and
    the worst gets 0 (all get 1 if the values are equal). The combined score is
    ``(1 - geometry_weight) * scaled_ctfidf + geometry_weight * scaled_relevance``.

    Parameters
    ----------
    terms : sequence of sequences of str, length K
        Candidate terms of each cluster.
    ctfidf : sequence of ndarray, length K
        c-TF-IDF of each candidate, aligned with ``terms``.
    mean_directions : array-like, shape (K, d)
        Unit-norm cluster mean directions.
    embed_terms : callable
        Maps a list of n terms to unit-norm embeddings of shape (n, d). It is called once,
        with the distinct candidate terms of all clusters.
    top_n : int
        Number of keywords kept per cluster.
    geometry_weight : float
        Weight in [0, 1] of the geometric relevance.

    Returns
    -------
    list of ClusterKeywords
        One entry per cluster, best combined score first.
    """
    mean_directions = check_unit_rows(mean_directions, "mean_directions", dtype=np.float64)
    n_clusters = mean_directions.shape[0]
    if len(terms) != n_clusters or len(ctfidf) != n_clusters:
        raise ValueError(
            f"terms and ctfidf must have one entry per cluster ({n_clusters}), got "
            f"{len(terms)} and {len(ctfidf)}"
        )
    top_n = check_positive_int(top_n, "top_n")
    geometry_weight = check_fraction(geometry_weight, "geometry_weight", low=0.0, high=1.0)

    distinct = sorted({term for cluster_terms in terms for term in cluster_terms})
    relevance = _geometric_relevance(distinct, mean_directions, embed_terms)
    row_of = {term: row for row, term in enumerate(distinct)}

    results = []
    for cluster in range(n_clusters):
        cluster_terms = list(terms[cluster])
        text_scores = np.asarray(ctfidf[cluster], dtype=np.float64)
        geometry = np.array([relevance[row_of[term], cluster] for term in cluster_terms])
        combined = (1.0 - geometry_weight) * _min_max(text_scores) + geometry_weight * _min_max(
            geometry
        )

        # Stable sort: equal combined scores keep the c-TF-IDF order.
        order = np.argsort(-combined, kind="stable")[:top_n]
        results.append(
            ClusterKeywords(
                cluster=cluster,
                terms=tuple(cluster_terms[i] for i in order),
                scores=tuple(float(combined[i]) for i in order),
                ctfidf=tuple(float(text_scores[i]) for i in order),
                relevance=tuple(float(geometry[i]) for i in order),
            )
        )
    return results


def _geometric_relevance(
    terms: list[str], mean_directions: np.ndarray, embed_terms: TermEmbedder
) -> np.ndarray:
    """Return relevance of each term to each cluster, float64 of shape (n_terms, K)."""
    n_clusters, dim = mean_directions.shape
    if not terms:
        return np.zeros((0, n_clusters))

    embeddings = check_unit_rows(embed_terms(list(terms)), "embed_terms output", dtype=np.float64)
    if embeddings.shape != (len(terms), dim):
        raise ValueError(
            f"embed_terms returned shape {embeddings.shape} for {len(terms)} terms, but "
            f"({len(terms)}, {dim}) is required: one row per term in the space of "
            "mean_directions"
        )
    cosines = embeddings @ mean_directions.T
    if n_clusters == 1:
        return cosines

    # For term t and cluster k, the best other cosine is the row maximum, or the row's second
    # largest value where column k itself contains the maximum.
    top_two = np.sort(cosines, axis=1)[:, -2:]
    best_other = np.where(cosines >= top_two[:, 1:2], top_two[:, 0:1], top_two[:, 1:2])
    return cosines - best_other


def _min_max(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return values
    spread = values.max() - values.min()
    if spread <= 0:
        return np.ones_like(values)
    return (values - values.min()) / spread


def keywords_frame(keywords: Sequence[ClusterKeywords]) -> pl.DataFrame:
    """Flatten keywords into one row per cluster and term.

    Returns
    -------
    polars.DataFrame
        Columns ``cluster`` (Int64), ``rank`` (Int64, 0 is best), ``term`` (String),
        ``score``, ``ctfidf`` and ``relevance`` (Float64, null without a term embedding).
    """
    rows = [
        {
            "cluster": entry.cluster,
            "rank": rank,
            "term": term,
            "score": entry.scores[rank],
            "ctfidf": entry.ctfidf[rank],
            "relevance": None if entry.relevance is None else entry.relevance[rank],
        }
        for entry in keywords
        for rank, term in enumerate(entry.terms)
    ]
    schema = {
        "cluster": pl.Int64,
        "rank": pl.Int64,
        "term": pl.String,
        "score": pl.Float64,
        "ctfidf": pl.Float64,
        "relevance": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
