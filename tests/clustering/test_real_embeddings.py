"""GEM on real all-MiniLM-L6-v2 embeddings of the bundled sample corpus."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from gem_dagster.clustering import (
    GEM,
    KMeans,
    VanillaVMF,
    balance_entropy_of_labels,
    find_objective_decreases,
)
from gem_dagster.embedding import TextEmbedder
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_vectors() -> np.ndarray:
    """Embed 400 documents of the first sample shard (about 15 s on two CPU cores)."""
    texts = pl.read_ndjson(BUNDLED_SAMPLE_SHARDS / "shard-000.jsonl")["text"].head(400).to_list()
    return TextEmbedder(device="cpu").encode(texts)


@pytest.mark.filterwarnings("ignore::gem_dagster.clustering.ConvergenceWarning")
@pytest.mark.parametrize("e_step", ["dual", "mm"])
@pytest.mark.parametrize("kappa", ["per_cluster", "tied"])
def test_objective_never_decreases(sample_vectors: np.ndarray, e_step: str, kappa: str) -> None:
    # A small balance keeps the MM solver, which needs about 1 + lambda rounds, fast.
    model = GEM(6, balance=20.0, e_step=e_step, kappa=kappa, max_iter=15, tol=0.0, random_state=0)

    model.fit(sample_vectors)

    assert find_objective_decreases(model.objective_trace_, model.objective_steps_).size == 0
    assert np.all(np.isfinite(model.objective_trace_))
    assert np.all(np.isfinite(model.concentrations_))


def test_gem_more_balanced_than_kmeans_and_vmf(sample_vectors: np.ndarray) -> None:
    k = 8
    gem = GEM(k, balance="auto", random_state=0).fit(sample_vectors)
    kmeans = KMeans(k, random_state=0).fit(sample_vectors)
    vmf = VanillaVMF(k, random_state=0).fit(sample_vectors)

    gem_entropy = balance_entropy_of_labels(gem.labels_, k)

    assert gem_entropy > balance_entropy_of_labels(kmeans.labels_, k) + 0.02
    assert gem_entropy > balance_entropy_of_labels(vmf.labels_, k) + 0.02
    assert gem_entropy > 0.97


def test_fixed_seed_gives_identical_fit(sample_vectors: np.ndarray) -> None:
    first = GEM(6, balance="auto", random_state=3).fit(sample_vectors)
    second = GEM(6, balance="auto", random_state=3).fit(sample_vectors)

    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.mean_directions_, second.mean_directions_)
