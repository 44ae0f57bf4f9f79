"""Cluster balance and agreement metrics.

Balance: the normalised entropy ``H(pi) / log K`` of the cluster shares (1 when all clusters
have the same share, 0 when one cluster has all rows) and the largest and smallest shares.
Agreement with reference labels: normalised mutual information (NMI, arithmetic-mean
normalisation) and the adjusted Rand index (ARI, Hubert and Arabie 1985). Both agree with
scikit-learn's ``normalized_mutual_info_score`` and ``adjusted_rand_score`` (tested).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "adjusted_rand_index",
    "balance_entropy",
    "balance_entropy_of_labels",
    "cluster_shares",
    "largest_share",
    "normalized_mutual_info",
    "smallest_share",
]


def _as_mass(mass) -> np.ndarray:
    if isinstance(mass, torch.Tensor):
        mass = mass.detach().cpu().numpy()
    values = np.asarray(mass, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(
            f"mass must be a 1-D array of at least 2 clusters, got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ValueError("mass must be finite, non-negative and not all zero")
    return values / values.sum()


def _as_labels(labels, name: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
    return values


def cluster_shares(labels, n_clusters: int) -> np.ndarray:
    """Return the share of rows in each of ``n_clusters`` clusters, shape (n_clusters,).

    ``labels`` must be integers in ``[0, n_clusters)``; empty clusters get share 0.
    """
    values = _as_labels(labels, "labels")
    if values.size == 0:
        raise ValueError("labels must not be empty")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {values.dtype}")
    if values.min() < 0 or values.max() >= n_clusters:
        raise ValueError(
            f"labels must be integers in [0, {n_clusters}), got values from "
            f"{int(values.min())} to {int(values.max())}"
        )
    return np.bincount(values, minlength=n_clusters) / values.size


def balance_entropy(mass) -> float:
    """Return ``H(pi) / log K`` for cluster mass or shares ``pi`` of length K >= 2.

    ``mass`` may be unnormalised (counts); it is divided by its sum. Empty clusters count
    towards K, so they lower the score.
    """
    shares = _as_mass(mass)
    positive = shares[shares > 0]
    return float(-(positive * np.log(positive)).sum() / math.log(shares.size))


def balance_entropy_of_labels(labels, n_clusters: int) -> float:
    """Return ``H(pi) / log K`` of the hard cluster shares of ``labels``."""
    return balance_entropy(cluster_shares(labels, n_clusters))


def largest_share(mass) -> float:
    """Return the largest cluster share ``max_k pi_k`` (mass is normalised to sum 1)."""
    return float(_as_mass(mass).max())


def smallest_share(mass) -> float:
    """Return the smallest cluster share ``min_k pi_k`` (mass is normalised to sum 1)."""
    return float(_as_mass(mass).min())


def _contingency(labels_true, labels_pred) -> np.ndarray:
    """Return the table of counts n_ij of rows with true class i and predicted cluster j."""
    true = _as_labels(labels_true, "labels_true")
    pred = _as_labels(labels_pred, "labels_pred")
    if true.shape != pred.shape:
        raise ValueError(
            "labels_true and labels_pred must have the same length, "
            f"got {true.size} and {pred.size}"
        )
    _, true_codes = np.unique(true, return_inverse=True)
    _, pred_codes = np.unique(pred, return_inverse=True)
    table = np.zeros((true_codes.max(initial=-1) + 1, pred_codes.max(initial=-1) + 1))
    np.add.at(table, (true_codes, pred_codes), 1.0)
    return table


def _entropy_of_counts(counts: np.ndarray) -> float:
    total = counts.sum()
    shares = counts[counts > 0] / total
    return float(-(shares * np.log(shares)).sum())


def normalized_mutual_info(labels_true, labels_pred) -> float:
    """Return ``I(U; V) / ((H(U) + H(V)) / 2)`` between two labelings of the same rows.

    Two labelings that each put every row in one class are identical partitions and score 1.
    """
    table = _contingency(labels_true, labels_pred)
    n_true, n_pred = table.shape
    if n_true == n_pred == 1 or table.size == 0:
        return 1.0

    total = table.sum()
    row_sums = table.sum(axis=1)
    column_sums = table.sum(axis=0)
    i, j = np.nonzero(table)
    joint = table[i, j] / total
    mutual_information = float(
        (joint * (np.log(table[i, j] * total) - np.log(row_sums[i] * column_sums[j]))).sum()
    )
    # Clip rounding below zero; MI of independent labelings is 0.
    mutual_information = max(mutual_information, 0.0)

    mean_entropy = 0.5 * (_entropy_of_counts(row_sums) + _entropy_of_counts(column_sums))
    return mutual_information / max(mean_entropy, np.finfo(np.float64).eps)


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1.0) / 2.0).sum())


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """Return the adjusted Rand index between two labelings of the same rows.

    ``ARI = (sum_ij C(n_ij, 2) - E) / ((a + b)/2 - E)`` with ``a = sum_i C(n_i., 2)``,
    ``b = sum_j C(n_.j, 2)`` and ``E = a b / C(n, 2)``. When the denominator is 0 (both
    labelings trivial in the same way), the labelings are identical and the index is 1.
    """
    table = _contingency(labels_true, labels_pred)
    total = table.sum()
    if total < 2:
        return 1.0

    together = _pairs(table)
    true_pairs = _pairs(table.sum(axis=1))
    pred_pairs = _pairs(table.sum(axis=0))
    expected = true_pairs * pred_pairs / (total * (total - 1.0) / 2.0)
    maximum = 0.5 * (true_pairs + pred_pairs)
    if maximum == expected:
        return 1.0
    return float((together - expected) / (maximum - expected))
