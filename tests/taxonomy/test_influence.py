"""Geometric Influence Score: components, local density and the effect of beta."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.clustering import log_vmf_normalizer
from gem_dagster.taxonomy import geometric_influence_scores, local_density
from gem_dagster.taxonomy import influence as influence_module

from .conftest import DIM, unit_rows


def naive_density(vectors: np.ndarray, labels: np.ndarray, neighbours: int) -> np.ndarray:
    """Mean cosine to the nearest other members, one document at a time."""
    result = np.full(len(vectors), np.nan)
    for i in range(len(vectors)):
        others = [j for j in np.flatnonzero(labels == labels[i]) if j != i]
        if not others:
            continue
        cosines = np.sort(vectors[others].astype(np.float64) @ vectors[i].astype(np.float64))
        result[i] = cosines[-neighbours:].mean()
    return result


def test_total_is_sum_of_components(corpus):
    scores = geometric_influence_scores(
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
        beta=0.7,
    )

    expected = scores.log_confidence + scores.log_centrality + 0.7 * scores.log_density
    np.testing.assert_allclose(scores.total, expected)
    assert scores.total.shape == (len(corpus.labels),)
    assert np.isfinite(scores.total).all()


def test_centrality_is_vmf_log_density(corpus):
    scores = geometric_influence_scores(
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
    )

    cosines = np.einsum(
        "ij,ij->i", corpus.vectors.astype(np.float64), corpus.mean_directions[corpus.labels]
    )
    expected = log_vmf_normalizer(DIM, corpus.concentrations[corpus.labels]) + 50.0 * cosines
    np.testing.assert_allclose(scores.log_centrality, expected, rtol=1e-10)


def test_confidence_from_full_matrix_and_vector(corpus):
    full = geometric_influence_scores(
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
    )
    assigned = corpus.probabilities[np.arange(len(corpus.labels)), corpus.labels]
    vector = geometric_influence_scores(
        corpus.vectors, corpus.labels, assigned, corpus.mean_directions, corpus.concentrations
    )

    np.testing.assert_allclose(full.log_confidence, np.log(assigned))
    np.testing.assert_allclose(vector.total, full.total)


def test_density_matches_brute_force(corpus):
    density = local_density(corpus.vectors, corpus.labels, corpus.n_clusters, neighbours=5)

    np.testing.assert_allclose(density, naive_density(corpus.vectors, corpus.labels, 5), atol=1e-6)


def test_density_blocks_match_single_block(corpus, monkeypatch):
    whole = local_density(corpus.vectors, corpus.labels, corpus.n_clusters, neighbours=5)

    # 100 similarities per block gives blocks of 2 rows for clusters of 40.
    monkeypatch.setattr(influence_module, "_SIMILARITY_BLOCK_ELEMENTS", 100)
    blocked = local_density(corpus.vectors, corpus.labels, corpus.n_clusters, neighbours=5)

    np.testing.assert_allclose(blocked, whole, atol=1e-6)


def test_density_small_cluster_uses_all_members():
    rng = np.random.default_rng(3)
    vectors = unit_rows(rng.standard_normal((4, 6))).astype(np.float32)
    labels = np.zeros(4, dtype=int)

    density = local_density(vectors, labels, 1, neighbours=10)

    gram = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    expected = (gram.sum(axis=1) - np.diag(gram)) / 3
    np.testing.assert_allclose(density, expected, atol=1e-6)


def test_density_exact_duplicate_counts_as_neighbour():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)

    density = local_density(vectors, np.zeros(3, dtype=int), 1, neighbours=1)

    np.testing.assert_allclose(density, [1.0, 1.0, 0.0], atol=1e-7)


def test_singleton_and_negative_density_use_floor():
    # Cluster 0 is two antipodal points (mean cosine -1), cluster 1 a single point.
    vectors = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 0, 1])
    mean_directions = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

    scores = geometric_influence_scores(
        vectors, labels, np.ones(3), mean_directions, [1.0, 1.0], density_floor=0.01
    )

    np.testing.assert_allclose(scores.density[:2], [-1.0, -1.0])
    assert np.isnan(scores.density[2])
    np.testing.assert_allclose(scores.log_density, np.log(0.01))
    assert np.isfinite(scores.total).all()


def outlier_cluster() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cluster: two tight groups at 45 degrees either side of mu, and a lone point at mu.

    The lone point is the most central and the most confident, but its nearest neighbours
    are 45 degrees away while each group member has neighbours almost on top of it.
    """
    rng = np.random.default_rng(5)
    mu = np.zeros(DIM)
    mu[0] = 1.0
    side_a = unit_rows(np.eye(DIM)[0] + np.eye(DIM)[1] + 0.01 * rng.standard_normal((15, DIM)))
    side_b = unit_rows(np.eye(DIM)[0] - np.eye(DIM)[1] + 0.01 * rng.standard_normal((15, DIM)))
    vectors = np.vstack([mu, side_a, side_b]).astype(np.float32)
    probabilities = np.full(len(vectors), 0.9)
    probabilities[0] = 1.0
    return vectors, probabilities, mu[None, :]


def test_beta_demotes_isolated_outlier():
    vectors, probabilities, mean_directions = outlier_cluster()
    labels = np.zeros(len(vectors), dtype=int)

    def best_document(beta: float) -> int:
        scores = geometric_influence_scores(
            vectors, labels, probabilities, mean_directions, [2.0], beta=beta, neighbours=3
        )
        return int(np.argmax(scores.total))

    assert best_document(0.0) == 0
    assert best_document(20.0) != 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": np.array([0, 1, 7])}, "label 7 at index 2"),
        ({"labels": np.array([0, 1])}, "labels has 2 entries"),
        ({"labels": np.array([0.0, 1.5, 1.0])}, "1.5"),
        ({"vectors": np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])}, "row 2 of vectors"),
        ({"vectors": np.array([[1.0, 0.0], [np.nan, 1.0], [1.0, 0.0]])}, "nan"),
        ({"probabilities": np.array([0.5, 1.5, 0.5])}, "probability 1.5 of document 1"),
        ({"probabilities": np.ones((3, 3))}, "shape (3, 3)"),
        ({"probabilities": np.ones(4)}, "probabilities has 4 entries"),
        ({"concentrations": np.array([1.0, -2.0])}, "concentration -2.0 of cluster 1"),
        ({"concentrations": np.array([1.0])}, "concentrations has 1 entries"),
        ({"mean_directions": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])}, "3 columns"),
        ({"beta": -1.0}, "beta must be finite and >= 0, got -1.0"),
        ({"neighbours": 0}, "neighbours must be an integer >= 1, got 0"),
    ],
)
def test_invalid_input_names_value(change, message):
    arguments = {
        "vectors": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
        "labels": np.array([0, 1, 0]),
        "probabilities": np.array([0.9, 0.8, 0.7]),
        "mean_directions": np.array([[1.0, 0.0], [0.0, 1.0]]),
        "concentrations": np.array([1.0, 2.0]),
    }
    arguments.update(change)

    with pytest.raises(ValueError) as raised:
        geometric_influence_scores(**arguments)

    assert message in str(raised.value)
