"""PerfRe: up-sampling probes move weight towards the domain that helps the target."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.mixing import DomainStats, compute_weights
from gem_dagster.mixing.perfre import perfre_weights, upsampled_mixture
from gem_dagster.mixing.proxy import ProxyConfig, split_streams
from tests.mixing.synthetic_domains import (
    VOCAB_SIZE,
    one_torch_thread,  # noqa: F401 (fixture)
    three_domains,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CYCLE = 0


def tiny_config(seed: int = 0, steps: int = 100) -> ProxyConfig:
    return ProxyConfig(
        vocab_size=VOCAB_SIZE, d_model=32, n_layers=1, n_heads=2, seq_len=32, batch_size=12,
        steps=steps, seed=seed, log_every=0,
    )


def test_upsampled_mixture() -> None:
    mixture = upsampled_mixture(np.array([0.5, 0.25, 0.25]), 1, 2.0)

    assert np.allclose(mixture, [0.4, 0.4, 0.2])


@pytest.mark.parametrize("seed", [0, 1])
def test_helpful_domain_gains_weight(seed: int) -> None:
    # The target is held-out cycle data, so more cycle data should lower its loss.
    training, validation = split_streams(three_domains(seed))

    result = perfre_weights(
        [0, 1, 2], training, {CYCLE: validation[CYCLE]}, tiny_config(seed)
    )

    assert result.gains[CYCLE] > 0
    assert result.gains[CYCLE] > result.gains[1]
    assert result.gains[CYCLE] > result.gains[2]
    assert np.allclose(result.natural, 1 / 3)
    assert result.weights[CYCLE] > result.natural[CYCLE]
    assert result.weights.sum() == pytest.approx(1.0)
    assert np.all(result.weights > 0)


def test_weights_follow_formula() -> None:
    training, validation = split_streams(three_domains(0))

    result = perfre_weights(
        [0, 1, 2], training, {CYCLE: validation[CYCLE]}, tiny_config(steps=30), beta=0.5
    )

    expected = result.natural * np.exp(0.5 * result.gains / result.gains.std())
    assert np.allclose(result.weights, expected / expected.sum())


def test_compute_weights_runs_perfre() -> None:
    # Cluster 3 is empty and has no stream, so it gets neither a probe nor weight.
    stats = DomainStats(
        cluster_ids=[0, 1, 2, 3], documents=[10, 10, 10, 0], tokens=[8_000, 8_000, 8_000, 0]
    )

    result = compute_weights(
        "perfre", stats, 12_000, max_epochs=2.0, token_streams=three_domains(0),
        proxy=tiny_config(steps=10),
    )

    assert result.strategy == "perfre"
    assert result.weights[3] == 0.0
    assert result.params["gains"][3] == 0.0
    assert result.weights.sum() == pytest.approx(1.0)
    assert np.all(result.epochs <= 2.0 + 1e-9)
