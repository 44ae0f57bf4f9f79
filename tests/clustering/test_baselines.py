"""Baseline clusterers: k-means against scikit-learn, spherical k-means and vanilla vMF EM."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.cluster

from gem_dagster.clustering import (
    KMeans,
    SphericalKMeans,
    VanillaVMF,
    adjusted_rand_index,
    normalized_mutual_info,
    sample_vmf_mixture,
)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(5, 10))
    labels = rng.integers(0, 5, 1000)
    X = centres[labels] + rng.standard_normal((1000, 10))
    return X, labels


def test_kmeans_matches_sklearn_from_same_start(blobs):
    X, _ = blobs
    start = X[[0, 100, 200, 300, 400]]

    ours = KMeans(5, init=start, tol=0.0, max_iter=100).fit(X)
    reference = sklearn.cluster.KMeans(5, init=start, n_init=1, tol=0.0, max_iter=100).fit(X)

    assert adjusted_rand_index(ours.labels_, reference.labels_) == 1.0
    assert ours.inertia_ == pytest.approx(reference.inertia_, rel=1e-5)
    order = np.argsort(ours.cluster_centers_[:, 0])
    reference_order = np.argsort(reference.cluster_centers_[:, 0])
    np.testing.assert_allclose(
        ours.cluster_centers_[order], reference.cluster_centers_[reference_order], atol=1e-4
    )


def test_kmeans_inertia_never_increases(blobs):
    X, labels = blobs

    model = KMeans(5, random_state=1).fit(X)

    assert np.all(np.diff(model.objective_trace_) <= 1e-9 * model.objective_trace_[1:])
    assert normalized_mutual_info(labels, model.labels_) > 0.95
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.score(X) == pytest.approx(-model.inertia_)


def test_kmeans_refills_empty_cluster():
    # Three initial centres coincide at the origin, where the first group lies, so two of them
    # start with no rows and must move onto the second group.
    X = np.vstack([np.zeros((50, 2)), np.full((50, 2), 10.0) + np.arange(50)[:, None] * 0.01])
    start = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [10.0, 10.0]])

    model = KMeans(4, init=start, max_iter=20).fit(X)

    assert np.count_nonzero(model.cluster_mass_) >= 3


def test_spherical_kmeans_recovers_vmf_mixture(vmf_mixture):
    model = SphericalKMeans(4, random_state=0).fit(vmf_mixture.X)

    assert normalized_mutual_info(vmf_mixture.labels, model.labels_) >= 0.95
    assert np.all(np.diff(model.objective_trace_) >= -1e-9)
    np.testing.assert_allclose(np.linalg.norm(model.mean_directions_, axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(vmf_mixture.X), model.labels_)


def test_spherical_kmeans_score_is_mean_cosine(vmf_mixture):
    model = SphericalKMeans(4, random_state=0).fit(vmf_mixture.X)

    cosines = vmf_mixture.X @ model.mean_directions_.T
    assert model.score(vmf_mixture.X) == pytest.approx(cosines.max(axis=1).mean(), rel=1e-6)


def test_vanilla_vmf_learns_unequal_weights():
    rng = np.random.default_rng(1)
    weights = np.array([0.6, 0.3, 0.1])
    directions = rng.standard_normal((3, 12))
    X, labels = sample_vmf_mixture(3000, directions, 40.0, weights, random_state=2)
    # One row of each component as the start, so the test is about the weights, not the seeding.
    start = np.stack([X[labels == k][0] for k in range(3)])

    model = VanillaVMF(3, init=start).fit(X)

    assert normalized_mutual_info(labels, model.labels_) >= 0.95
    np.testing.assert_allclose(model.mixture_weights_, weights, atol=0.03)
    np.testing.assert_allclose(model.concentrations_, 40.0, rtol=0.1)


def test_vanilla_vmf_log_likelihood_never_decreases(narrow_cone):
    model = VanillaVMF(narrow_cone.n_clusters, random_state=0).fit(narrow_cone.X)

    trace = model.objective_trace_
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    assert trace[-1] > trace[0]


def test_vanilla_vmf_score_is_final_log_likelihood(vmf_mixture):
    model = VanillaVMF(4, random_state=0).fit(vmf_mixture.X)

    assert model.score(vmf_mixture.X) == pytest.approx(model.log_likelihood_, rel=1e-6)
    np.testing.assert_array_equal(model.predict(vmf_mixture.X), model.labels_)
    np.testing.assert_allclose(
        model.predict_proba(vmf_mixture.X), model.responsibilities_, atol=1e-10
    )


@pytest.mark.parametrize("estimator", [KMeans, SphericalKMeans, VanillaVMF])
def test_baselines_reject_invalid_parameters(estimator, vmf_mixture):
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        estimator(1).fit(vmf_mixture.X)
    with pytest.raises(ValueError, match="init must be one of 'k-means\\+\\+', got 'random'"):
        estimator(3, init="random").fit(vmf_mixture.X)


@pytest.mark.parametrize("estimator", [SphericalKMeans, VanillaVMF])
def test_spherical_baselines_reject_zero_rows(estimator, vmf_mixture):
    X = vmf_mixture.X.copy()
    X[5] = 0.0

    with pytest.raises(ValueError, match="row 5 of X has zero norm"):
        estimator(3).fit(X)
