"""k-means++ seeding (Arthur and Vassilvitskii 2007) and the hard partition it induces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._runtime import chunk_bounds


def _kmeans_plus_plus(
    n_samples: int,
    n_clusters: int,
    rng: np.random.Generator,
    squared_distance_to: Callable[[int], torch.Tensor],
) -> list[int]:
    """Pick ``n_clusters`` row indices by D^2 sampling.

    The first seed is uniform; each further seed is drawn with probability proportional to
    the squared distance to its nearest chosen seed. When every remaining distance is zero
    (fewer distinct rows than seeds), the draw falls back to uniform.
    """
    seeds = [int(rng.integers(n_samples))]
    nearest = squared_distance_to(seeds[0])

    for _ in range(1, n_clusters):
        weights = nearest.clamp_min(0.0).cpu().numpy()
        total = weights.sum()
        if total > 0:
            index = int(rng.choice(n_samples, p=weights / total))
        else:
            index = int(rng.integers(n_samples))
        seeds.append(index)
        nearest = torch.minimum(nearest, squared_distance_to(index))
    return seeds


def spherical_kmeans_plus_plus(
    X: torch.Tensor, n_clusters: int, rng: np.random.Generator
) -> torch.Tensor:
    """Choose ``n_clusters`` rows of unit-norm ``X`` as seeds by cosine k-means++.

    For unit vectors the squared Euclidean distance is ``2 (1 - cos)``, so the D^2 weights
    are ``1 - max cosine to the chosen seeds``.

    Returns
    -------
    torch.Tensor of shape (n_clusters, n_features), float64
    """

    def one_minus_cosine(index: int) -> torch.Tensor:
        return 1.0 - (X @ X[index]).double()

    seeds = _kmeans_plus_plus(X.shape[0], n_clusters, rng, one_minus_cosine)
    return X[seeds].double()


def euclidean_kmeans_plus_plus(
    X: torch.Tensor, n_clusters: int, rng: np.random.Generator
) -> torch.Tensor:
    """Choose ``n_clusters`` rows of ``X`` as seeds by Euclidean k-means++.

    Returns
    -------
    torch.Tensor of shape (n_clusters, n_features), float64
    """

    squared_norms = torch.cat([(block.double() ** 2).sum(dim=1) for block in X.split(65536)])

    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2 needs no N x d temporary.
    def squared_distance(index: int) -> torch.Tensor:
        cross = (X @ X[index]).double()
        return (squared_norms - 2.0 * cross + squared_norms[index]).clamp_min(0.0)

    seeds = _kmeans_plus_plus(X.shape[0], n_clusters, rng, squared_distance)
    return X[seeds].double()


@dataclass
class HardPartition:
    """Sizes and resultant vectors of a hard assignment of N rows to K cells.

    Attributes
    ----------
    labels : torch.Tensor of shape (N,), int64
    counts : torch.Tensor of shape (K,), float64
    sums : torch.Tensor of shape (K, d), float64
        Sum of the rows in each cell.
    """

    labels: torch.Tensor
    counts: torch.Tensor
    sums: torch.Tensor


def nearest_direction_partition(
    X: torch.Tensor, directions: torch.Tensor, chunk_rows: int
) -> HardPartition:
    """Assign every row of ``X`` to the direction of largest cosine, a chunk of rows at a time."""
    n_samples = X.shape[0]
    n_clusters = directions.shape[0]
    directions32 = directions.to(torch.float32)

    labels = torch.empty(n_samples, dtype=torch.int64, device=X.device)
    counts = torch.zeros(n_clusters, dtype=torch.float64, device=X.device)
    sums = torch.zeros(n_clusters, X.shape[1], dtype=torch.float64, device=X.device)

    for start, stop in chunk_bounds(n_samples, chunk_rows):
        rows = X[start:stop]
        chunk_labels = torch.argmax(rows @ directions32.T, dim=1)
        labels[start:stop] = chunk_labels
        counts.index_add_(0, chunk_labels, torch.ones_like(chunk_labels, dtype=torch.float64))
        sums.index_add_(0, chunk_labels, rows.double())
    return HardPartition(labels=labels, counts=counts, sums=sums)
