"""Representatives per cluster, the ablation pickers and the balanced training selection."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gem_dagster.taxonomy import (
    balanced_training_selection,
    geometric_influence_scores,
    select_distinct,
    select_representatives,
)


def scores_for(corpus, vectors=None, labels=None, probabilities=None):
    """GIS of the corpus, or of replacement documents in the corpus's clusters."""
    if vectors is None:
        vectors, labels, probabilities = corpus.vectors, corpus.labels, corpus.probabilities
    return geometric_influence_scores(
        vectors, labels, probabilities, corpus.mean_directions, corpus.concentrations
    )


def test_representatives_are_top_gis_of_own_cluster(corpus):
    influence = scores_for(corpus)

    chosen = select_representatives(corpus.vectors, influence, count=5)

    assert len(chosen) == corpus.n_clusters
    for cluster, rows in enumerate(chosen):
        members = np.flatnonzero(corpus.labels == cluster)
        top_five = members[np.argsort(-influence.total[members])][:5]
        assert len(rows) == 5
        assert set(corpus.labels[rows]) == {cluster}
        np.testing.assert_array_equal(rows, top_five)


def test_near_duplicate_is_skipped(corpus):
    # Copy the best document of cluster 0, so the copy ties with it for first place.
    base = scores_for(corpus)
    best = int(np.argmax(np.where(corpus.labels == 0, base.total, -np.inf)))
    vectors = np.vstack([corpus.vectors, corpus.vectors[best]])
    labels = np.append(corpus.labels, 0)
    probabilities = np.vstack([corpus.probabilities, corpus.probabilities[best]])
    influence = scores_for(corpus, vectors, labels, probabilities)
    copy = len(labels) - 1

    suppressed = select_representatives(vectors, influence, count=5)[0]
    unsuppressed = select_representatives(vectors, influence, count=5, duplicate_threshold=None)[0]

    assert len(suppressed) == 5
    assert len({best, copy} & set(suppressed.tolist())) == 1
    assert {best, copy} <= set(unsuppressed.tolist())


def test_threshold_is_configurable():
    vectors = np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]], dtype=np.float32)
    order = np.array([0, 1, 2])

    # Rows 0 and 1 have cosine 0.96.
    assert select_distinct(vectors, order, 3, 0.95).tolist() == [0, 2]
    assert select_distinct(vectors, order, 3, 0.97).tolist() == [0, 1, 2]
    assert select_distinct(vectors, order, 2, None).tolist() == [0, 1]


def test_confidence_and_centre_methods(corpus):
    influence = scores_for(corpus)
    members = np.flatnonzero(corpus.labels == 2)

    by_confidence = select_representatives(corpus.vectors, influence, count=3, method="confidence")
    by_centre = select_representatives(corpus.vectors, influence, count=3, method="centre")

    assert by_confidence[2][0] == members[np.argmax(influence.log_confidence[members])]
    assert by_centre[2][0] == members[np.argmax(influence.log_centrality[members])]


def test_random_method_follows_seed(corpus):
    influence = scores_for(corpus)

    first = select_representatives(corpus.vectors, influence, count=5, method="random", seed=1)
    again = select_representatives(corpus.vectors, influence, count=5, method="random", seed=1)
    other = select_representatives(corpus.vectors, influence, count=5, method="random", seed=2)

    for cluster in range(corpus.n_clusters):
        np.testing.assert_array_equal(first[cluster], again[cluster])
        assert set(corpus.labels[first[cluster]]) == {cluster}
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_unknown_method_raises(corpus):
    influence = scores_for(corpus)

    with pytest.raises(ValueError, match="'density'"):
        select_representatives(corpus.vectors, influence, method="density")


def test_vectors_must_match_scores(corpus):
    influence = scores_for(corpus)

    with pytest.raises(ValueError, match="vectors has 10 rows but influence covers 160"):
        select_representatives(corpus.vectors[:10], influence)


def test_balanced_selection_same_count_per_cluster(corpus):
    influence = scores_for(corpus)

    selection = balanced_training_selection(corpus.labels, influence.total, per_cluster=7)

    assert selection.counts.tolist() == [7, 7, 7, 7]
    assert selection.short_clusters == {}
    assert len(selection.indices) == 28
    for cluster in range(corpus.n_clusters):
        members = np.flatnonzero(corpus.labels == cluster)
        expected = set(members[np.argsort(-influence.total[members])][:7].tolist())
        chosen = {int(i) for i in selection.indices if corpus.labels[i] == cluster}
        assert chosen == expected


def test_balanced_selection_reports_short_clusters(caplog):
    labels = np.array([0] * 6 + [1] * 6 + [2] * 3)
    gis = np.arange(len(labels), dtype=float)

    with caplog.at_level(logging.WARNING, logger="gem_dagster.taxonomy"):
        selection = balanced_training_selection(labels, gis, per_cluster=5, n_clusters=4)

    assert selection.counts.tolist() == [5, 5, 3, 0]
    assert selection.short_clusters == {2: 3, 3: 0}
    assert sorted(selection.indices[10:].tolist()) == [12, 13, 14]
    assert selection.indices[:5].tolist() == [5, 4, 3, 2, 1]
    assert "2 of 4 clusters have fewer than 5 documents" in caplog.text


@pytest.mark.parametrize(
    ("labels", "gis", "kwargs", "message"),
    [
        ([0, 1], [1.0], {}, "labels has 2 entries but gis has 1"),
        ([0, -1], [1.0, 2.0], {}, "got -1"),
        ([0, 5], [1.0, 2.0], {"n_clusters": 3}, "label 5 is outside 0 .. 2"),
        ([0, 1], [1.0, np.nan], {}, "nan"),
    ],
)
def test_balanced_selection_rejects_bad_input(labels, gis, kwargs, message):
    with pytest.raises(ValueError, match=message):
        balanced_training_selection(labels, gis, per_cluster=2, **kwargs)
