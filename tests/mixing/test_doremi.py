"""DoReMi: weight moves off a noise domain, and compute_weights applies the epoch cap."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.mixing import DomainStats, compute_weights
from gem_dagster.mixing.doremi import doremi_weights
from gem_dagster.mixing.proxy import ProxyConfig
from tests.mixing.synthetic_domains import (
    VOCAB_SIZE,
    one_torch_thread,  # noqa: F401 (fixture)
    three_domains,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CYCLE, MARKOV, NOISE = 0, 1, 2


def tiny_config(seed: int = 0, steps: int = 150) -> ProxyConfig:
    return ProxyConfig(
        vocab_size=VOCAB_SIZE, d_model=32, n_layers=1, n_heads=2, seq_len=32, batch_size=12,
        steps=steps, seed=seed, log_every=0,
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_domain_downweighted(seed: int) -> None:
    weights = doremi_weights([0, 1, 2], three_domains(seed), tiny_config(seed))

    assert weights.shape == (3,)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[NOISE] < 1 / 3
    assert weights[NOISE] < weights[CYCLE]
    assert weights[NOISE] < weights[MARKOV]


def test_compute_weights_caps_doremi() -> None:
    # Half an epoch of the Markov domain's 6 000 corpus tokens caps its weight at
    # 0.5 * 6 000 / 8 000 = 0.375, below what DoReMi prefers after 40 steps. Cluster 13 is
    # empty and has no stream.
    stats = DomainStats(
        cluster_ids=[10, 11, 12, 13],
        documents=[80, 60, 80, 0],
        tokens=[8_000, 6_000, 8_000, 0],
    )
    streams = three_domains(0)
    token_streams = {10: streams[CYCLE], 11: streams[MARKOV], 12: streams[NOISE]}

    result = compute_weights(
        "doremi", stats, 8_000, max_epochs=0.5, token_streams=token_streams,
        proxy=tiny_config(steps=40),
    )

    assert result.strategy == "doremi"
    assert result.params["uncapped_weights"][1] > 0.375
    assert result.params["uncapped_weights"][3] == 0.0
    assert result.weights[1] == pytest.approx(0.375)
    assert result.weights[3] == 0.0
    assert result.weights.sum() == pytest.approx(1.0)
    assert np.all(result.epochs <= 0.5 + 1e-9)
    assert result.params["eta"] == 1.0
    assert result.params["proxy"]["steps"] == 40


def test_missing_stream_rejected() -> None:
    stats = DomainStats(cluster_ids=[1, 2], documents=[1, 1], tokens=[100, 100])

    with pytest.raises(ValueError, match=r"domains \[2\] have tokens in the statistics"):
        doremi_weights(stats, {1: np.zeros(200, dtype=np.int64)}, tiny_config())


def test_small_batch_rejected() -> None:
    config = ProxyConfig(vocab_size=VOCAB_SIZE, seq_len=32, batch_size=2)

    with pytest.raises(ValueError, match=r"batch_size 2 is smaller than the 3 domains"):
        doremi_weights([0, 1, 2], three_domains(0), config)


def test_compute_weights_needs_streams() -> None:
    stats = DomainStats(cluster_ids=[1, 2], documents=[1, 1], tokens=[100, 100])

    with pytest.raises(ValueError, match=r"requires the parameters \['token_streams', 'proxy'\]"):
        compute_weights("doremi", stats, 100)


def test_compute_weights_rejects_unknown_parameter() -> None:
    stats = DomainStats(cluster_ids=[1, 2], documents=[1, 1], tokens=[100, 100])

    with pytest.raises(ValueError, match=r"'doremi' got unknown parameters \['beta'\]"):
        compute_weights(
            "doremi", stats, 100, token_streams={}, proxy=tiny_config(), beta=1.0
        )
