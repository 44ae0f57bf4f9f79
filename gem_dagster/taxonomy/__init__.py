"""Taxonomy of GEM clusters: influence scores, representatives, keywords, names and a tree.

A plain library (no Dagster imports). It takes NumPy arrays, Polars frames or series and
Python lists, and returns arrays, Polars frames, lists and small dataclasses.

``build_taxonomy`` runs every step. The steps are also public:
``geometric_influence_scores`` scores each document, ``select_representatives`` and
``balanced_training_selection`` pick documents per cluster, ``extract_keywords`` ranks terms,
``keyword_names`` or a ``ChatNamer`` names clusters, and ``build_cluster_tree`` groups them.
"""

from .build import ClusterRecord, Taxonomy, build_taxonomy
from .chat_namer import ChatNamer
from .influence import (
    DEFAULT_BETA,
    DEFAULT_DENSITY_FLOOR,
    DEFAULT_NEIGHBOURS,
    InfluenceScores,
    geometric_influence_scores,
    local_density,
)
from .keywords import (
    ClusterKeywords,
    TermEmbedder,
    class_tfidf,
    extract_keywords,
    keywords_frame,
    rerank_by_geometry,
    softmax_weights,
)
from .naming import ClusterName, ClusterNamer, keyword_description, keyword_names, unique_names
from .representatives import (
    DEFAULT_DUPLICATE_THRESHOLD,
    SELECTION_METHODS,
    BalancedSelection,
    balanced_training_selection,
    select_distinct,
    select_representatives,
)
from .tokens import ENGLISH_STOP_WORDS, tokenize
from .tree import ClusterTree, build_cluster_tree, default_parent_count

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DENSITY_FLOOR",
    "DEFAULT_DUPLICATE_THRESHOLD",
    "DEFAULT_NEIGHBOURS",
    "ENGLISH_STOP_WORDS",
    "SELECTION_METHODS",
    "BalancedSelection",
    "ChatNamer",
    "ClusterKeywords",
    "ClusterName",
    "ClusterNamer",
    "ClusterRecord",
    "ClusterTree",
    "InfluenceScores",
    "Taxonomy",
    "TermEmbedder",
    "balanced_training_selection",
    "build_cluster_tree",
    "build_taxonomy",
    "class_tfidf",
    "default_parent_count",
    "extract_keywords",
    "geometric_influence_scores",
    "keyword_description",
    "keyword_names",
    "keywords_frame",
    "local_density",
    "rerank_by_geometry",
    "select_distinct",
    "select_representatives",
    "softmax_weights",
    "tokenize",
    "unique_names",
]
