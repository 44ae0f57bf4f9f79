"""Draw samples from von Mises-Fisher distributions and their mixtures.

Reference: A. T. A. Wood, "Simulation of the von Mises Fisher distribution", Communications in
Statistics - Simulation and Computation 23(1), 1994. The component ``w = mu . x`` is drawn by
rejection from a Beta proposal; the remaining direction is uniform on the sphere orthogonal to
mu.
"""

from __future__ import annotations

import math

import numpy as np

from ._runtime import resolve_rng

__all__ = ["sample_anisotropic_cone", "sample_vmf", "sample_vmf_mixture"]


def _sample_cosines(n_samples: int, dim: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """Draw ``w = mu . x`` for x ~ vMF(mu, kappa) in R^dim, by Wood's rejection sampler."""
    m = dim - 1.0
    # b = (sqrt(4 kappa^2 + m^2) - 2 kappa) / m, written without cancellation for large kappa.
    b = m / (2.0 * kappa + math.sqrt(4.0 * kappa * kappa + m * m))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + m * math.log(1.0 - x0 * x0)

    cosines = np.empty(n_samples)
    missing = np.arange(n_samples)
    while missing.size:
        z = rng.beta(m / 2.0, m / 2.0, size=missing.size)
        w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z)
        u = rng.uniform(size=missing.size)
        accept = kappa * w + m * np.log(1.0 - x0 * w) - c >= np.log(u)
        cosines[missing[accept]] = w[accept]
        missing = missing[~accept]
    return cosines


def _rotate_from_last_axis(points: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Apply the Householder reflection that maps the last unit axis e_d onto ``direction``."""
    normal = -direction.copy()
    normal[-1] += 1.0
    norm_squared = normal @ normal
    if norm_squared < 1e-24:
        return points
    return points - np.outer(points @ normal, normal) * (2.0 / norm_squared)


def sample_vmf(n_samples: int, mean_direction, kappa: float, random_state=None) -> np.ndarray:
    """Draw ``n_samples`` unit vectors from vMF(mean_direction, kappa).

    Parameters
    ----------
    n_samples : int
        Number of samples.
    mean_direction : array-like of shape (d,)
        Mean direction mu, d >= 2; normalised to unit length.
    kappa : float
        Concentration >= 0; 0 gives the uniform distribution on the sphere.
    random_state : None, int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    ndarray of shape (n_samples, d), float64
    """
    rng = resolve_rng(random_state)
    mu = np.asarray(mean_direction, dtype=np.float64)
    if mu.ndim != 1 or mu.size < 2 or not np.all(np.isfinite(mu)) or not np.any(mu):
        raise ValueError("mean_direction must be a finite, non-zero vector of length >= 2")
    if not (math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be finite and >= 0, got {kappa!r}")
    mu = mu / np.linalg.norm(mu)
    dim = mu.size

    cosines = _sample_cosines(n_samples, dim, float(kappa), rng)

    # A uniform direction in the first d-1 coordinates, orthogonal to e_d.
    tangent = rng.standard_normal((n_samples, dim - 1))
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    sine = np.sqrt(np.clip(1.0 - cosines * cosines, 0.0, None))
    points = np.concatenate([tangent * sine[:, None], cosines[:, None]], axis=1)

    return _rotate_from_last_axis(points, mu)


def sample_vmf_mixture(
    n_samples: int,
    mean_directions,
    concentrations,
    weights=None,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_samples`` points from a mixture of vMF distributions.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    mean_directions : array-like of shape (K, d)
        Mean direction of each component (rows are normalised).
    concentrations : float or array-like of shape (K,)
        Concentration of each component.
    weights : array-like of shape (K,), optional
        Mixture weights; uniform when omitted. Normalised to sum 1.
    random_state : None, int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_samples, d), float64
        Unit vectors, in random order.
    labels : ndarray of shape (n_samples,), int64
        Component of each sample.
    """
    rng = resolve_rng(random_state)
    directions = np.atleast_2d(np.asarray(mean_directions, dtype=np.float64))
    n_components = directions.shape[0]
    kappas = np.broadcast_to(np.asarray(concentrations, dtype=np.float64), (n_components,))

    if weights is None:
        probabilities = np.full(n_components, 1.0 / n_components)
    else:
        probabilities = np.asarray(weights, dtype=np.float64)
        if probabilities.shape != (n_components,) or np.any(probabilities < 0):
            raise ValueError(
                f"weights must be {n_components} non-negative numbers, got {weights!r}"
            )
        probabilities = probabilities / probabilities.sum()

    labels = rng.choice(n_components, size=n_samples, p=probabilities)
    X = np.empty((n_samples, directions.shape[1]))
    for component in range(n_components):
        members = np.flatnonzero(labels == component)
        X[members] = sample_vmf(members.size, directions[component], kappas[component], rng)
    return X, labels.astype(np.int64)


def sample_anisotropic_cone(
    n_samples: int,
    dim: int = 32,
    n_topics: int = 6,
    zipf_exponent: float = 1.5,
    axis_weight: float = 2.0,
    spread: tuple[float, float] = (0.08, 0.6),
    decay: float = 8.0,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw unit vectors with the geometry of sentence embeddings: a narrow, anisotropic cone.

    Row i of topic t is ``normalise(axis_weight * e_0 + o_t + noise)``: every topic offset
    o_t is a unit vector orthogonal to the common axis e_0, so all rows lie in a cone around
    e_0 (mean pairwise cosine about 0.85 with the defaults). Topic sizes follow a Zipf law
    ``p_t ~ 1 / t^zipf_exponent``. The noise standard deviation grows geometrically from
    ``spread[0]`` for the largest topic to ``spread[1]`` for the smallest and decays as
    ``exp(-j / decay)`` over coordinate j, so the largest topic is also the tightest. On such
    data, k-means and vMF EM with learned weights give the largest topic one big cluster.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    dim : int
        Dimension d >= 2.
    n_topics : int
        Number of topics.
    zipf_exponent : float
        Exponent of the topic-size law; 0 gives equal sizes.
    axis_weight : float
        Length of the common component; larger values narrow the cone.
    spread : tuple of float
        Noise scale of the largest and of the smallest topic.
    decay : float
        Coordinate scale of the anisotropic noise decay.
    random_state : None, int or numpy.random.Generator
        Seed or generator.

    Returns
    -------
    X : ndarray of shape (n_samples, dim), float64
        Unit vectors.
    labels : ndarray of shape (n_samples,), int64
        Topic of each row; topic 0 is the largest.
    """
    rng = resolve_rng(random_state)
    sizes = 1.0 / np.arange(1, n_topics + 1) ** zipf_exponent
    labels = rng.choice(n_topics, size=n_samples, p=sizes / sizes.sum())

    offsets = rng.standard_normal((n_topics, dim))
    offsets[:, 0] = 0.0
    offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)

    topic_scale = np.geomspace(spread[0], spread[1], n_topics)
    coordinate_scale = np.exp(-np.arange(dim) / decay)
    noise = rng.standard_normal((n_samples, dim)) * coordinate_scale * topic_scale[labels, None]

    X = offsets[labels] + noise
    X[:, 0] += axis_weight
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, labels.astype(np.int64)
