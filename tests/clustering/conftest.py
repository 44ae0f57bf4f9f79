"""Synthetic data sets shared by the clustering tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gem_dagster.clustering import sample_anisotropic_cone, sample_vmf_mixture


@dataclass(frozen=True)
class LabelledData:
    X: np.ndarray
    labels: np.ndarray
    n_clusters: int


@pytest.fixture(autouse=True, scope="package")
def single_torch_thread():
    """Run these small problems on one torch thread, restoring the count afterwards.

    Their matrices are tiny, so a second thread gains nothing. With other processes loading
    a 2-core machine, two threads made the monotonicity tests 20 times slower (65 s against
    3 s), probably because of OpenMP spin-waiting.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def vmf_mixture() -> LabelledData:
    """1,500 rows from 4 well separated vMF components in R^16 (kappa = 50, equal weights)."""
    rng = np.random.default_rng(11)
    directions = rng.standard_normal((4, 16))
    X, labels = sample_vmf_mixture(1500, directions, 50.0, random_state=12)
    return LabelledData(X, labels, 4)


@pytest.fixture(scope="session")
def narrow_cone() -> LabelledData:
    """1,500 rows in a narrow anisotropic cone in R^32 with Zipf-sized topics."""
    X, labels = sample_anisotropic_cone(1500, random_state=3)
    return LabelledData(X, labels, 8)
