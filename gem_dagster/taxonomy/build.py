"""Build a named, two-level taxonomy of a fitted mixture's clusters in one call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from ._checks import check_positive_int, check_same_length
from .influence import DEFAULT_BETA, DEFAULT_NEIGHBOURS, InfluenceScores, geometric_influence_scores
from .keywords import TermEmbedder, extract_keywords
from .naming import ClusterNamer, keyword_names, unique_names
from .representatives import DEFAULT_DUPLICATE_THRESHOLD, select_representatives
from .tree import build_cluster_tree

__all__ = ["ClusterRecord", "Taxonomy", "build_taxonomy"]

# Candidate terms per cluster that the geometric re-ranking reorders, unless more keywords
# than this are requested.
_KEYWORD_CANDIDATES = 30


@dataclass(frozen=True)
class ClusterRecord:
    """Everything the taxonomy states about one cluster.

    Attributes
    ----------
    cluster : int
        Cluster id k.
    name : str
        Name, unique within the taxonomy.
    description : str
        One-line description.
    name_source : str
        "keywords", "chat" or "cache", see ``ClusterName.source``.
    size : int
        Number of documents with label k.
    keywords : tuple of str
        Keywords, best first.
    keyword_scores : tuple of float
        Score of each keyword, see ``ClusterKeywords.scores``.
    representative_ids : tuple
        Ids of the representative documents, best GIS first.
    excerpts : tuple of str
        Start of each representative's text, whitespace collapsed.
    parent : int
        Id of the parent group in ``Taxonomy.tree``.
    """

    cluster: int
    name: str
    description: str
    name_source: str
    size: int
    keywords: tuple[str, ...]
    keyword_scores: tuple[float, ...]
    representative_ids: tuple
    excerpts: tuple[str, ...]
    parent: int


@dataclass(frozen=True)
class Taxonomy:
    """Named clusters, their parent groups and the per-document scores behind them.

    Attributes
    ----------
    clusters : list of ClusterRecord
        One record per cluster, in cluster order.
    gis : ndarray of float64, shape (N,)
        Geometric Influence Score of each document.
    influence : InfluenceScores
        The GIS components.
    tree : dict
        JSON-serialisable tree, see ``ClusterTree.root``.
    """

    clusters: list[ClusterRecord]
    gis: np.ndarray
    influence: InfluenceScores
    tree: dict

    def to_dict(self) -> dict:
        """Return the clusters and the tree as plain JSON-serialisable Python objects.

        Representative ids are kept as given, so they serialise only if they are str, int
        or float.
        """
        clusters = []
        for record in self.clusters:
            entry = asdict(record)
            for key in ("keywords", "keyword_scores", "representative_ids", "excerpts"):
                entry[key] = list(entry[key])
            clusters.append(entry)
        return {"clusters": clusters, "tree": self.tree}

    def to_frame(self) -> pl.DataFrame:
        """Return one row per cluster, with list columns for keywords and representatives.

        Representative ids are converted to strings so that the column has one type.
        """
        return pl.DataFrame(
            {
                "cluster": [r.cluster for r in self.clusters],
                "name": [r.name for r in self.clusters],
                "description": [r.description for r in self.clusters],
                "name_source": [r.name_source for r in self.clusters],
                "size": [r.size for r in self.clusters],
                "parent": [r.parent for r in self.clusters],
                "keywords": [list(r.keywords) for r in self.clusters],
                "representative_ids": [
                    [str(identifier) for identifier in r.representative_ids] for r in self.clusters
                ],
                "excerpts": [list(r.excerpts) for r in self.clusters],
            },
            schema={
                "cluster": pl.Int64,
                "name": pl.String,
                "description": pl.String,
                "name_source": pl.String,
                "size": pl.Int64,
                "parent": pl.Int64,
                "keywords": pl.List(pl.String),
                "representative_ids": pl.List(pl.String),
                "excerpts": pl.List(pl.String),
            },
        )


def build_taxonomy(
    texts: Sequence[str] | pl.Series,
    ids: Sequence | np.ndarray | pl.Series,
    vectors,
    labels,
    probabilities,
    mean_directions,
    concentrations,
    *,
    beta: float = DEFAULT_BETA,
    neighbours: int = DEFAULT_NEIGHBOURS,
    representatives: int = 5,
    keywords: int = 10,
    embed_terms: TermEmbedder | None = None,
    namer: ClusterNamer | None = None,
    n_parents: int | None = None,
    duplicate_threshold: float | None = DEFAULT_DUPLICATE_THRESHOLD,
    min_df: int = 2,
    bigrams: bool = False,
    temperature: float = 1.0,
    excerpt_chars: int = 300,
) -> Taxonomy:
    """Score documents, pick representatives, extract keywords, name clusters and group them.

    Parameters
    ----------
    texts : sequence of str or polars.Series, length N
        Document texts.
    ids : sequence, ndarray or polars.Series, length N
        Document ids, reported for the representatives and used in ``ChatNamer``'s cache key.
    vectors : array-like, shape (N, d)
        Unit-norm document embeddings.
    labels : array-like of int, shape (N,)
        Hard cluster labels in 0 .. K-1.
    probabilities : array-like, shape (N,) or (N, K)
        Probability of each document's assigned cluster, or the full soft assignment matrix.
    mean_directions : array-like, shape (K, d)
        Unit-norm vMF mean directions.
    concentrations : array-like, shape (K,)
        vMF concentrations.
    beta : float
        Weight of the local density term of the GIS.
    neighbours : int
        Number of in-cluster nearest neighbours behind the local density.
    representatives : int
        Representatives per cluster.
    keywords : int
        Keywords per cluster.
    embed_terms : callable, optional
        Term embedding for the geometric re-ranking of keywords, see ``extract_keywords``.
    namer : ClusterNamer, optional
        For example a ``ChatNamer``. Without it clusters are named from their keywords.
    n_parents : int, optional
        Number of parent groups. Defaults to ``round(sqrt(K))``.
    duplicate_threshold : float or None
        Cosine above which a candidate representative counts as a near-duplicate.
    min_df : int
        Minimum number of documents a keyword must occur in.
    bigrams : bool
        Whether keywords may be pairs of adjacent words.
    temperature : float
        Divisor of the GIS in the softmax that weights documents for c-TF-IDF.
    excerpt_chars : int
        Maximum characters of each representative excerpt.

    Returns
    -------
    Taxonomy

    Raises
    ------
    ValueError
        If an input has the wrong length or shape, rows are not unit-norm, a label is out of
        range, or a parameter is invalid. The message names the value.
    """
    influence = geometric_influence_scores(
        vectors,
        labels,
        probabilities,
        mean_directions,
        concentrations,
        beta=beta,
        neighbours=neighbours,
    )
    n_samples = influence.labels.shape[0]
    ids = _as_list(ids)
    check_same_length(ids, "ids", n_samples)
    texts = _as_list(texts)
    check_same_length(texts, "texts", n_samples)
    representatives = check_positive_int(representatives, "representatives")
    keywords = check_positive_int(keywords, "keywords")
    excerpt_chars = check_positive_int(excerpt_chars, "excerpt_chars")

    chosen = select_representatives(
        vectors, influence, count=representatives, duplicate_threshold=duplicate_threshold
    )
    cluster_keywords = extract_keywords(
        texts,
        influence,
        mean_directions,
        top_n=keywords,
        candidates=max(keywords, _KEYWORD_CANDIDATES),
        min_df=min_df,
        bigrams=bigrams,
        temperature=temperature,
        embed_terms=embed_terms,
    )
    representative_ids = [[ids[i] for i in rows] for rows in chosen]
    excerpts = [[_excerpt(texts[i], excerpt_chars) for i in rows] for rows in chosen]

    names = keyword_names([entry.terms for entry in cluster_keywords])
    if namer is not None:
        names = [
            namer.name_cluster(
                cluster,
                list(cluster_keywords[cluster].terms),
                representative_ids[cluster],
                excerpts[cluster],
                names[cluster],
            )
            for cluster in range(influence.n_clusters)
        ]
        # Two chat replies can give the same label to different clusters.
        names = unique_names(names)

    tree = build_cluster_tree(mean_directions, cluster_keywords, n_parents=n_parents)
    sizes = np.bincount(influence.labels, minlength=influence.n_clusters)
    records = [
        ClusterRecord(
            cluster=cluster,
            name=names[cluster].name,
            description=names[cluster].description,
            name_source=names[cluster].source,
            size=int(sizes[cluster]),
            keywords=cluster_keywords[cluster].terms,
            keyword_scores=cluster_keywords[cluster].scores,
            representative_ids=tuple(representative_ids[cluster]),
            excerpts=tuple(excerpts[cluster]),
            parent=int(tree.parent_of[cluster]),
        )
        for cluster in range(influence.n_clusters)
    ]
    return Taxonomy(clusters=records, gis=influence.total, influence=influence, tree=tree.root)


def _as_list(values) -> list:
    """Return a list of plain Python values from a sequence, an ndarray or a polars Series."""
    if isinstance(values, pl.Series):
        return values.to_list()
    if isinstance(values, np.ndarray):
        return values.tolist()
    return list(values)


def _excerpt(text: str, max_chars: int) -> str:
    collapsed = " ".join(str(text).split())
    if len(collapsed) <= max_chars:
        return collapsed
    if max_chars <= 3:
        return collapsed[:max_chars]
    return collapsed[: max_chars - 3].rstrip() + "..."
