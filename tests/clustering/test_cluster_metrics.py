"""Balance and agreement metrics, the latter against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from gem_dagster.clustering import (
    adjusted_rand_index,
    balance_entropy,
    balance_entropy_of_labels,
    cluster_shares,
    largest_share,
    normalized_mutual_info,
    smallest_share,
)

RNG = np.random.default_rng(0)
BLOCKS = np.repeat(np.arange(4), 50)
LABEL_PAIRS = [
    ("random", RNG.integers(0, 5, 400), RNG.integers(0, 7, 400)),
    ("noisy copy", BLOCKS, BLOCKS ^ (RNG.random(200) < 0.2)),
    ("identical", np.arange(30) % 3, np.arange(30) % 3),
    ("permuted", np.arange(30) % 3, (np.arange(30) + 1) % 3),
    ("both single class", np.zeros(10, int), np.zeros(10, int)),
    ("one single class", np.zeros(10, int), np.arange(10) % 2),
    ("all singletons", np.arange(10), np.arange(10)),
    ("singletons vs one", np.arange(10), np.zeros(10, int)),
    ("string labels", np.array(list("aabbccab")), np.array([5, 5, 6, 6, 7, 7, 5, 6])),
    ("non-contiguous ids", np.array([10, 10, 40, 40, 99]), np.array([-1, -1, 3, 3, 3])),
]


@pytest.mark.parametrize("name, true, pred", LABEL_PAIRS, ids=[p[0] for p in LABEL_PAIRS])
def test_nmi_matches_sklearn(name, true, pred):
    assert normalized_mutual_info(true, pred) == pytest.approx(
        normalized_mutual_info_score(true, pred), abs=1e-12
    )


@pytest.mark.parametrize("name, true, pred", LABEL_PAIRS, ids=[p[0] for p in LABEL_PAIRS])
def test_ari_matches_sklearn(name, true, pred):
    assert adjusted_rand_index(true, pred) == pytest.approx(
        adjusted_rand_score(true, pred), abs=1e-12
    )


def test_agreement_metrics_accept_tensors():
    true = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([1, 1, 0, 0, 2, 0])

    assert normalized_mutual_info(true, pred) == pytest.approx(
        normalized_mutual_info_score(true.numpy(), pred.numpy())
    )
    assert adjusted_rand_index(true, pred) == pytest.approx(
        adjusted_rand_score(true.numpy(), pred.numpy())
    )


def test_agreement_metrics_reject_length_mismatch():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        normalized_mutual_info([0, 1, 1], [0, 1])


def test_balance_entropy_of_uniform_mass_is_one():
    assert balance_entropy(np.full(24, 1 / 24)) == pytest.approx(1.0)


def test_balance_entropy_of_single_cluster_is_zero():
    assert balance_entropy([0.0, 1.0, 0.0]) == 0.0


def test_balance_entropy_matches_formula():
    mass = np.array([0.5, 0.25, 0.125, 0.125])
    expected = -(mass * np.log(mass)).sum() / math.log(4)

    assert balance_entropy(mass) == pytest.approx(expected, rel=1e-12)
    assert balance_entropy(torch.tensor(mass * 8)) == pytest.approx(expected, rel=1e-12)


def test_balance_entropy_of_labels_counts_empty_clusters():
    labels = np.array([0, 0, 1, 1])

    # Two equal clusters out of four: H = log 2, normalised by log 4.
    assert balance_entropy_of_labels(labels, 4) == pytest.approx(0.5)
    np.testing.assert_array_equal(cluster_shares(labels, 4), [0.5, 0.5, 0.0, 0.0])


def test_largest_and_smallest_share():
    mass = [2.0, 5.0, 3.0]

    assert largest_share(mass) == pytest.approx(0.5)
    assert smallest_share(mass) == pytest.approx(0.2)


def test_cluster_shares_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"integers in \[0, 3\), got values from 0 to 3"):
        cluster_shares([0, 1, 3], 3)


def test_balance_entropy_rejects_negative_mass():
    with pytest.raises(ValueError, match="non-negative"):
        balance_entropy([0.5, -0.1, 0.6])
