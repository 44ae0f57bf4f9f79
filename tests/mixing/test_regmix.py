"""RegMix: mixture sampling, recovery of a known loss surface, and the proxy loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from gem_dagster.mixing import DomainStats, compute_weights
from gem_dagster.mixing.proxy import ProxyConfig, split_streams
from gem_dagster.mixing.regmix import (
    fit_regression,
    predict_optimum,
    regmix_weights,
    sample_mixtures,
)
from tests.mixing.synthetic_domains import (
    VOCAB_SIZE,
    one_torch_thread,  # noqa: F401 (fixture)
    three_domains,
)


def test_sampled_mixtures_valid() -> None:
    prior = np.array([0.5, 0.3, 0.2, 0.0])

    mixtures = sample_mixtures(prior, 5_000, np.random.default_rng(0))

    assert mixtures.shape == (5_000, 4)
    assert np.allclose(mixtures.sum(axis=1), 1.0)
    assert np.all(mixtures[:, 3] == 0.0)
    assert not np.any((mixtures > 0) & (mixtures < 2e-4))


def test_sampled_mixtures_centred_on_sqrt_prior() -> None:
    prior = np.array([0.64, 0.32, 0.04])
    centre = np.sqrt(prior) / np.sqrt(prior).sum()

    mixtures = sample_mixtures(prior, 40_000, np.random.default_rng(1))

    assert np.allclose(mixtures.mean(axis=0), centre, atol=0.01)


def test_sampled_mixtures_respect_epoch_limit() -> None:
    # Domain 0 has 100 tokens, so 2 epochs of a 1 000-token budget allow weight <= 0.2.
    tokens = np.array([100, 1_000, 1_000])

    mixtures = sample_mixtures(
        tokens / tokens.sum(), 500, np.random.default_rng(2), max_epochs=2.0, tokens=tokens,
        budget=1_000,
    )

    assert mixtures.shape == (500, 3)
    assert mixtures[:, 0].max() <= 0.2 + 1e-12


def test_unreachable_epoch_limit_rejected() -> None:
    tokens = np.array([10, 10])

    with pytest.raises(ValueError, match=r"only 0 of \d+ sampled mixtures stay within 1"):
        sample_mixtures(
            np.array([0.5, 0.5]), 4, np.random.default_rng(3), max_epochs=1.0, tokens=tokens,
            budget=1_000,
        )


@pytest.mark.parametrize(
    ("optimum", "prior", "seed"),
    [
        ([0.5, 0.3, 0.2], [0.4, 0.4, 0.2], 0),
        ([0.5, 0.3, 0.2], [0.4, 0.4, 0.2], 1),
        ([0.1, 0.4, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25], 0),
        ([0.1, 0.4, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25], 1),
    ],
)
def test_known_optimum_recovered(optimum, prior, seed: int) -> None:
    # Quadratic loss with a different curvature per domain and a little noise.
    optimum, prior = np.array(optimum), np.array(prior)
    curvature = np.arange(1.0, optimum.size + 1)
    rng = np.random.default_rng(seed)
    mixtures = sample_mixtures(prior, 256, rng)
    losses = ((mixtures - optimum) ** 2 * curvature).sum(axis=1) + rng.normal(0, 0.005, 256)

    fit = fit_regression(mixtures, losses, seed=seed)
    weights = predict_optimum(fit, prior, n_simulated=20_000, top_k=128, rng=rng)

    assert fit.n_validation == 51
    assert fit.spearman > 0.8
    assert weights.sum() == pytest.approx(1.0)
    assert np.abs(weights - optimum).sum() < 0.15


def test_regression_is_deterministic() -> None:
    rng = np.random.default_rng(4)
    mixtures = sample_mixtures(np.array([0.5, 0.5]), 100, rng)
    losses = mixtures[:, 0] ** 2

    first = fit_regression(mixtures, losses, seed=7)
    second = fit_regression(mixtures, losses, seed=7)

    assert first.spearman == second.spearman
    assert np.array_equal(first.predict(mixtures), second.predict(mixtures))


def tiny_config(steps: int) -> ProxyConfig:
    return ProxyConfig(
        vocab_size=VOCAB_SIZE, d_model=32, n_layers=1, n_heads=2, seq_len=32, batch_size=12,
        steps=steps, log_every=0,
    )


@pytest.mark.usefixtures("one_torch_thread")
def test_proxy_losses_track_target_share() -> None:
    # The target is held-out cycle data, so proxies that saw more of the cycle domain
    # should score lower on it.
    training, validation = split_streams(three_domains(0))

    result = regmix_weights(
        [0, 1, 2], training, {0: validation[0]}, tiny_config(steps=30), n_mixtures=12,
        n_simulated=2_000, top_k=16,
    )

    assert result.mixtures.shape == (12, 3)
    assert result.losses.shape == (12,)
    assert spearmanr(result.mixtures[:, 0], result.losses).statistic < -0.5
    assert result.weights.sum() == pytest.approx(1.0)


@pytest.mark.usefixtures("one_torch_thread")
def test_compute_weights_runs_regmix() -> None:
    stats = DomainStats(cluster_ids=[4, 5, 6], documents=[10, 10, 10], tokens=[8_000] * 3)
    streams = three_domains(1)
    token_streams = {4: streams[0], 5: streams[1], 6: streams[2]}

    result = compute_weights(
        "regmix", stats, 12_000, max_epochs=2.0, token_streams=token_streams,
        proxy=tiny_config(steps=10), n_mixtures=6, n_simulated=1_000, top_k=8,
    )

    assert result.strategy == "regmix"
    assert result.weights.sum() == pytest.approx(1.0)
    assert np.all(result.epochs <= 2.0 + 1e-9)
    assert result.params["n_mixtures"] == 6
    assert "spearman" in result.params
