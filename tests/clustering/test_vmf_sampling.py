"""Wood's vMF sampler and the synthetic data sets built on it."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.clustering import (
    bessel_ratio,
    sample_anisotropic_cone,
    sample_vmf,
    sample_vmf_mixture,
)


@pytest.mark.parametrize("dim, kappa", [(2, 1.0), (3, 5.0), (16, 50.0), (128, 500.0)])
def test_mean_cosine_matches_bessel_ratio(dim, kappa):
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)

    samples = sample_vmf(20000, direction, kappa, random_state=1)
    cosines = samples @ direction

    # E[mu . x] = A_d(kappa), up to five standard errors of the sample mean.
    tolerance = 5 * cosines.std() / np.sqrt(cosines.size)
    assert abs(cosines.mean() - bessel_ratio(dim, kappa)) < tolerance


def test_samples_are_unit_vectors():
    samples = sample_vmf(500, [0.0, 0.0, 3.0, 4.0], 20.0, random_state=0)

    np.testing.assert_allclose(np.linalg.norm(samples, axis=1), 1.0, atol=1e-12)


def test_mean_resultant_points_to_mean_direction():
    direction = np.array([1.0, -2.0, 0.5, 3.0, 0.0, 1.0])
    direction /= np.linalg.norm(direction)

    samples = sample_vmf(5000, direction, 30.0, random_state=4)
    resultant = samples.mean(axis=0)

    assert resultant @ direction / np.linalg.norm(resultant) > 0.999


def test_zero_kappa_is_uniform():
    samples = sample_vmf(20000, [1.0, 0.0, 0.0], 0.0, random_state=2)

    # The mean of a uniform sample on S^2 is 0 with standard error 1 / sqrt(3 n) per coordinate.
    assert np.abs(samples.mean(axis=0)).max() < 5 / np.sqrt(3 * 20000)


def test_same_seed_gives_same_samples():
    first = sample_vmf(100, [0.0, 1.0, 0.0], 10.0, random_state=7)
    second = sample_vmf(100, [0.0, 1.0, 0.0], 10.0, random_state=7)

    np.testing.assert_array_equal(first, second)


def test_mixture_labels_follow_weights():
    directions = np.eye(3, 8)
    weights = np.array([0.6, 0.3, 0.1])

    X, labels = sample_vmf_mixture(20000, directions, [50.0, 50.0, 50.0], weights, random_state=3)
    shares = np.bincount(labels, minlength=3) / labels.size

    np.testing.assert_allclose(shares, weights, atol=0.02)
    # Each row lies near the direction of its own component.
    nearest = np.argmax(X @ directions.T, axis=1)
    assert np.mean(nearest == labels) > 0.99


def test_mixture_rejects_negative_weights():
    with pytest.raises(ValueError, match="weights must be 2 non-negative numbers"):
        sample_vmf_mixture(10, np.eye(2, 4), 1.0, weights=[1.0, -1.0])


def test_sample_vmf_rejects_zero_direction():
    with pytest.raises(ValueError, match="mean_direction must be a finite, non-zero vector"):
        sample_vmf(10, [0.0, 0.0, 0.0], 1.0)


def test_anisotropic_cone_is_narrow_and_skewed():
    X, labels = sample_anisotropic_cone(3000, random_state=0)

    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-12)
    mean_cosine = (X[:500] @ X[:500].T).mean()
    assert mean_cosine > 0.7
    shares = np.bincount(labels) / labels.size
    assert shares[0] > 0.45
    assert shares[-1] < 0.06
