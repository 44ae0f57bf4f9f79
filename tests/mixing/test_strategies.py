"""Mixing strategies: shared guarantees, strategy-specific shapes, registry and errors."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.mixing import (
    PROXY_MODEL_STRATEGIES,
    STRATEGIES,
    DomainStats,
    compute_weights,
    natural,
    temperature,
    uniform,
    unimax,
)

# Strategy parameters beyond the shared ones, per strategy.
STRATEGY_PARAMS = {"uniform": {}, "natural": {}, "temperature": {"tau": 3.0}, "unimax": {}}
MAX_EPOCHS = 4.0

# Below 4 x 80 = 320 tokens no cap of the fixture binds, even with an even split.
SLACK_BUDGET = 300


@pytest.fixture
def stats() -> DomainStats:
    """Five domains: a tiny one, three large ones and an empty one."""
    return DomainStats(
        cluster_ids=[10, 11, 12, 13, 14],
        documents=[2, 40, 80, 120, 0],
        tokens=[20, 5_000, 8_000, 12_000, 0],
        names=["tiny", "small", "medium", "large", "empty"],
    )


def run(name: str, stats: DomainStats, budget: int, **params):
    return compute_weights(
        name, stats, budget, max_epochs=MAX_EPOCHS, **STRATEGY_PARAMS[name], **params
    )


def test_registry_lists_cheap_strategies() -> None:
    assert set(STRATEGIES) == {"uniform", "natural", "temperature", "unimax"}
    assert set(STRATEGY_PARAMS) == set(STRATEGIES)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_weights_form_a_distribution(name: str, stats: DomainStats) -> None:
    result = run(name, stats, budget=20_000)

    assert np.all(result.weights >= 0)
    assert abs(result.weights.sum() - 1.0) <= 1e-12
    assert result.weights.shape == (5,)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_epoch_cap_respected(name: str, stats: DomainStats) -> None:
    # An even share of 20 000 tokens over the 4 domains with tokens is 5 000, far above
    # the tiny domain's cap of 4 x 20 = 80 tokens.
    budget = 20_000
    result = run(name, stats, budget)

    allowed = MAX_EPOCHS * stats.tokens
    assert np.all(result.weights * budget <= allowed * (1 + 1e-12))
    assert np.all(result.epochs <= MAX_EPOCHS * (1 + 1e-12))


@pytest.mark.parametrize("name", ["uniform", "temperature", "unimax"])
def test_cap_binds_on_tiny_domain(name: str, stats: DomainStats) -> None:
    result = run(name, stats, budget=20_000)

    assert result.tokens_allocated[0] == pytest.approx(80.0, rel=1e-12)
    assert result.epochs[0] == pytest.approx(MAX_EPOCHS, rel=1e-12)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_min_weight_respected(name: str, stats: DomainStats) -> None:
    # With a budget of 2 000 every cap allows 0.03, so the floor must hold everywhere.
    min_weight = 0.03
    result = run(name, stats, budget=2_000, min_weight=min_weight)

    has_tokens = stats.tokens > 0
    assert np.all(result.weights[has_tokens] >= min_weight * (1 - 1e-12))
    assert abs(result.weights.sum() - 1.0) <= 1e-12
    assert result.params["min_weight"] == min_weight


def test_min_weight_lifts_natural_tiny_domain(stats: DomainStats) -> None:
    # Natural weight of the tiny domain is 20 / 25 020, far below the floor.
    result = natural(stats, budget=2_000, max_epochs=MAX_EPOCHS, min_weight=0.03)

    assert result.weights[0] == pytest.approx(0.03, rel=1e-12)
    assert result.weights[1] > 0.03


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_min_weight_yields_to_cap(name: str, stats: DomainStats) -> None:
    # With a budget of 20 000 the tiny domain may take only 80 / 20 000 = 0.004 < 0.03.
    result = run(name, stats, budget=20_000, min_weight=0.03)

    assert result.weights[0] == pytest.approx(0.004, rel=1e-12)
    assert np.all(result.weights[1:4] >= 0.03)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_zero_token_domain_gets_zero(name: str, stats: DomainStats) -> None:
    result = run(name, stats, budget=20_000, min_weight=0.01)

    assert result.weights[4] == 0.0
    assert result.tokens_allocated[4] == 0.0
    assert result.epochs[4] == 0.0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_inputs_same_output(name: str, stats: DomainStats) -> None:
    first = run(name, stats, budget=20_000, min_weight=0.01)
    second = run(name, stats, budget=20_000, min_weight=0.01)

    assert np.array_equal(first.weights, second.weights)
    assert np.array_equal(first.epochs, second.epochs)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_result_fields_agree(name: str, stats: DomainStats) -> None:
    budget = 20_000
    result = run(name, stats, budget)

    assert result.strategy == name
    assert result.budget == budget
    assert result.cluster_ids.tolist() == [10, 11, 12, 13, 14]
    np.testing.assert_allclose(result.tokens_allocated, result.weights * budget, rtol=0, atol=0)
    has_tokens = stats.tokens > 0
    np.testing.assert_allclose(
        result.epochs[has_tokens], result.tokens_allocated[has_tokens] / stats.tokens[has_tokens]
    )
    assert result.params["max_epochs"] == MAX_EPOCHS
    assert result.to_frame().columns == ["cluster_id", "weight", "tokens_allocated", "epochs"]
    assert result.to_frame()["weight"].to_list() == result.weights.tolist()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_impossible_budget_raises(name: str, stats: DomainStats) -> None:
    # 4 epochs of 25 020 tokens is 100 080 tokens.
    with pytest.raises(ValueError) as caught:
        run(name, stats, budget=100_081)

    message = str(caught.value)
    assert "budget 100081 tokens" in message
    assert "maximum of 100080 tokens" in message
    assert "by 1 tokens" in message


def test_uniform_without_cap_is_even(stats: DomainStats) -> None:
    result = uniform(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS)

    np.testing.assert_allclose(result.weights, [0.25, 0.25, 0.25, 0.25, 0.0], rtol=0, atol=1e-15)


def test_natural_is_token_share(stats: DomainStats) -> None:
    result = natural(stats, budget=20_000, max_epochs=MAX_EPOCHS)

    expected = stats.tokens / stats.tokens.sum()
    np.testing.assert_allclose(result.weights, expected, rtol=0, atol=1e-15)


def test_temperature_one_equals_natural(stats: DomainStats) -> None:
    tempered = temperature(stats, budget=20_000, max_epochs=MAX_EPOCHS, tau=1.0)
    plain = natural(stats, budget=20_000, max_epochs=MAX_EPOCHS)

    np.testing.assert_allclose(tempered.weights, plain.weights, rtol=0, atol=1e-15)
    assert tempered.params["tau"] == 1.0


def test_temperature_large_tau_approaches_uniform(stats: DomainStats) -> None:
    even = uniform(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS).weights
    distances = []
    for tau in (1.0, 2.0, 10.0, 1e6):
        tempered = temperature(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS, tau=tau)
        distances.append(np.abs(tempered.weights - even).max())

    assert distances[0] > distances[1]
    assert distances[1] > distances[2]
    assert distances[2] > distances[3]
    assert distances[3] < 1e-5


def test_temperature_infinite_tau_is_uniform(stats: DomainStats) -> None:
    tempered = temperature(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS, tau=float("inf"))
    even = uniform(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS)

    np.testing.assert_allclose(tempered.weights, even.weights, rtol=0, atol=1e-15)


def test_temperature_two_uses_square_root(stats: DomainStats) -> None:
    result = temperature(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS, tau=2.0)

    roots = np.sqrt(stats.tokens.astype(float))
    np.testing.assert_allclose(result.weights, roots / roots.sum(), rtol=1e-12)


@pytest.mark.parametrize("tau", [0.5, 0.0, -2.0])
def test_temperature_tau_below_one_rejected(tau: float, stats: DomainStats) -> None:
    expected = rf"tau must be >= 1 \(1 is the natural mixture\), got {tau}"
    with pytest.raises(ValueError, match=expected):
        temperature(stats, budget=2_000, tau=tau)


def test_temperature_nan_tau_rejected(stats: DomainStats) -> None:
    with pytest.raises(ValueError, match=r"tau must be a number >= 1, got nan"):
        temperature(stats, budget=2_000, tau=float("nan"))


def test_unimax_uniform_without_binding_cap(stats: DomainStats) -> None:
    capped = unimax(stats, budget=SLACK_BUDGET, max_epochs=MAX_EPOCHS)

    np.testing.assert_allclose(capped.weights, [0.25, 0.25, 0.25, 0.25, 0.0], rtol=0, atol=1e-15)
    assert np.all(capped.epochs[:4] < MAX_EPOCHS)


def test_unimax_caps_small_domain_spreads_rest() -> None:
    stats = DomainStats([0, 1, 2, 3], [1, 10, 10, 10], [10, 1_000, 1_000, 1_000])

    result = unimax(stats, budget=3_000, max_epochs=4.0)

    assert result.tokens_allocated[0] == pytest.approx(40.0, rel=1e-12)
    assert result.epochs[0] == pytest.approx(4.0, rel=1e-12)
    np.testing.assert_allclose(result.tokens_allocated[1:], [2_960 / 3] * 3, rtol=1e-12)


def test_unimax_caps_in_order_of_size() -> None:
    # The 30-token domain is capped at 60, then the 100-token domain at 200, which leaves
    # 1 000 - 260 = 740 for the two large ones.
    stats = DomainStats([0, 1, 2, 3], [1, 1, 1, 1], [5_000, 100, 30, 5_000])

    result = unimax(stats, budget=1_000, max_epochs=2.0)

    np.testing.assert_allclose(result.tokens_allocated, [370, 200, 60, 370], rtol=1e-12)


def test_unimax_matches_capped_uniform() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        tokens = rng.integers(1, 5_000, size=12)
        stats = DomainStats(np.arange(12), tokens, tokens)
        budget = int(rng.uniform(0.1, 1.0) * 3.0 * tokens.sum())

        from_loop = unimax(stats, budget, max_epochs=3.0).weights
        from_cap = uniform(stats, budget, max_epochs=3.0).weights

        np.testing.assert_allclose(from_loop, from_cap, rtol=1e-10, atol=1e-15)


def test_unknown_strategy_lists_known(stats: DomainStats) -> None:
    with pytest.raises(ValueError) as caught:
        compute_weights("balanced", stats, 1_000)

    message = str(caught.value)
    assert "'balanced'" in message
    for known in STRATEGIES:
        assert known in message


@pytest.mark.parametrize("name", ["doremi", "regmix", "perfre"])
def test_proxy_strategies_need_token_streams(name: str, stats: DomainStats) -> None:
    assert name in PROXY_MODEL_STRATEGIES
    expected = rf"'{name}' needs a trained proxy language model"
    with pytest.raises(ValueError, match=expected):
        compute_weights(name, stats, 1_000)


def test_unknown_parameter_rejected(stats: DomainStats) -> None:
    with pytest.raises(ValueError, match=r"'uniform' got unknown parameters \['tau'\]"):
        compute_weights("uniform", stats, 1_000, tau=2.0)


def test_stats_type_checked() -> None:
    with pytest.raises(TypeError, match=r"stats must be a DomainStats, got dict"):
        uniform({"tokens": [1, 2]}, 1_000)
