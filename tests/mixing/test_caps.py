"""apply_epoch_cap, check_budget and epochs_per_domain against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from gem_dagster.mixing import apply_epoch_cap, check_budget, epochs_per_domain


def test_cap_moves_excess_to_uncapped_domains() -> None:
    # An even split gives 100 tokens each, but the first domain may take only 2 x 10 = 20.
    weights = apply_epoch_cap([1, 1, 1], [10, 100, 100], budget=300, max_epochs=2.0)

    expected = np.array([20, 140, 140]) / 300
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-15)


def test_excess_shared_in_proportion_to_weights() -> None:
    # Preferred 50/100/150 tokens. The first is capped at 10 and the other 290 split 2:3.
    weights = apply_epoch_cap([1, 2, 3], [10, 1000, 1000], budget=300, max_epochs=1.0)

    expected = np.array([10, 116, 174]) / 300
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-15)


def test_capping_cascades_until_stable() -> None:
    # After capping the first domain at 10, the second would get 145 > its cap of 60.
    weights = apply_epoch_cap([1, 1, 1], [10, 60, 1000], budget=300, max_epochs=1.0)

    expected = np.array([10, 60, 230]) / 300
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-15)


def test_no_binding_cap_only_normalises() -> None:
    weights = apply_epoch_cap([2, 6, 12], [1000, 1000, 1000], budget=300, max_epochs=1.0)

    np.testing.assert_allclose(weights, [0.1, 0.3, 0.6], rtol=0, atol=1e-15)


def test_min_weight_taken_in_proportion() -> None:
    # The first domain rises from 0.01 to 0.05 and the other 0.95 keeps the 9:90 ratio.
    weights = apply_epoch_cap([1, 9, 90], [10**6] * 3, budget=1000, max_epochs=1.0, min_weight=0.05)

    expected = np.array([0.05, 0.95 * 9 / 99, 0.95 * 90 / 99])
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-15)


def test_min_weight_yields_to_cap() -> None:
    # The first domain may take only 10 of 1000 tokens, below min_weight 0.05.
    weights = apply_epoch_cap(
        [1, 1, 1], [10, 10**6, 10**6], budget=1000, max_epochs=1.0, min_weight=0.05
    )

    assert weights[0] == pytest.approx(0.01, abs=1e-15)
    assert weights[1] == pytest.approx(0.495, abs=1e-15)
    assert weights[2] == pytest.approx(0.495, abs=1e-15)


def test_zero_token_domain_gets_zero() -> None:
    weights = apply_epoch_cap([5, 1, 1], [0, 100, 100], budget=100, max_epochs=1.0, min_weight=0.1)

    assert weights[0] == 0.0
    assert weights[1] == pytest.approx(0.5, abs=1e-15)
    assert weights[2] == pytest.approx(0.5, abs=1e-15)


def test_budget_equal_to_maximum_is_feasible() -> None:
    tokens = np.array([10, 30, 60])

    weights = apply_epoch_cap([1, 1, 1], tokens, budget=200, max_epochs=2.0)

    np.testing.assert_allclose(weights * 200, 2.0 * tokens, rtol=1e-12)


def test_random_cases_hold_every_bound() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(200):
        size = int(rng.integers(2, 30))
        tokens = rng.integers(0, 10_000, size=size)
        tokens[0] = max(tokens[0], 1)
        preference = rng.random(size) * (rng.random(size) > 0.2)
        preference[0] = max(preference[0], 0.5)
        max_epochs = float(rng.uniform(0.5, 5.0))
        budget = int(max(1, rng.uniform(0.01, 1.0) * max_epochs * tokens.sum()))
        min_weight = float(rng.uniform(0, 1.0 / (tokens > 0).sum()))
        try:
            weights = apply_epoch_cap(preference, tokens, budget, max_epochs, min_weight)
        except ValueError as error:
            # Domains with weight 0 may leave the positive ones unable to take the budget.
            assert "domains with positive weight" in str(error)
            continue

        cap = max_epochs * tokens / budget
        floor = np.minimum(min_weight, cap)
        assert abs(weights.sum() - 1.0) <= 1e-12
        assert np.all(weights >= 0)
        assert np.all(weights <= cap * (1 + 1e-12))
        assert np.all(weights[tokens > 0] >= floor[tokens > 0] * (1 - 1e-12))
        assert np.all(weights[tokens == 0] == 0)

        # Domains strictly between their bounds keep the input ratio.
        free = (weights > floor * (1 + 1e-9)) & (weights < cap * (1 - 1e-9))
        if free.sum() >= 2:
            ratios = weights[free] / preference[free]
            np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
        checked += 1

    # Guard against a generator change that makes almost every case raise.
    assert checked >= 100


def test_impossible_budget_message() -> None:
    with pytest.raises(ValueError) as caught:
        apply_epoch_cap([1, 1], [100, 150], budget=1500, max_epochs=4.0)

    message = str(caught.value)
    assert "budget 1500 tokens" in message
    assert "maximum of 1000 tokens" in message
    assert "by 500 tokens" in message
    assert "raise max_epochs to at least 6" in message


def test_check_budget_accepts_feasible_budget() -> None:
    assert check_budget([100, 150], budget=1000, max_epochs=4.0) is None


def test_check_budget_all_empty_domains() -> None:
    expected = r"budget 10 tokens cannot be met because every domain has 0 tokens"
    with pytest.raises(ValueError, match=expected):
        check_budget([0, 0], budget=10, max_epochs=4.0)


def test_zero_weight_domains_cannot_absorb_budget() -> None:
    with pytest.raises(ValueError, match=r"can take at most 10 of the 300 budget tokens"):
        apply_epoch_cap([1, 0, 0], [10, 1000, 1000], budget=300, max_epochs=1.0)


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match=r"got 2 weights and 3 token counts"):
        apply_epoch_cap([1, 1], [10, 20, 30], budget=10, max_epochs=1.0)


def test_negative_tokens_rejected() -> None:
    with pytest.raises(ValueError, match=r"tokens must be non-negative, got -3 at position 2"):
        apply_epoch_cap([1, 1, 1], [10, 20, -3], budget=10, max_epochs=1.0)


def test_negative_weight_rejected() -> None:
    with pytest.raises(ValueError, match=r"weights must be finite and non-negative, got -0.5"):
        apply_epoch_cap([1, -0.5], [10, 20], budget=10, max_epochs=1.0)


def test_nan_weight_rejected() -> None:
    with pytest.raises(ValueError, match=r"got nan"):
        apply_epoch_cap([1, np.nan], [10, 20], budget=10, max_epochs=1.0)


def test_min_weight_too_large_rejected() -> None:
    expected = r"min_weight 0.6 is too large for 2 domains.*min_weight <= 0.5"
    with pytest.raises(ValueError, match=expected):
        apply_epoch_cap([1, 1, 1], [10, 20, 0], budget=10, max_epochs=1.0, min_weight=0.6)


def test_negative_min_weight_rejected() -> None:
    with pytest.raises(ValueError, match=r"min_weight must be a finite number >= 0, got -0.1"):
        apply_epoch_cap([1, 1], [10, 20], budget=10, max_epochs=1.0, min_weight=-0.1)


@pytest.mark.parametrize("budget", [0, -5, 10.5, True])
def test_invalid_budget_rejected(budget) -> None:
    expected = rf"budget must be a positive integer number of tokens, got {budget!r}"
    with pytest.raises(ValueError, match=expected):
        apply_epoch_cap([1, 1], [10, 20], budget=budget, max_epochs=1.0)


@pytest.mark.parametrize("max_epochs", [0.0, -1.0, float("inf")])
def test_invalid_max_epochs_rejected(max_epochs) -> None:
    expected = rf"max_epochs must be a positive finite number, got {max_epochs}"
    with pytest.raises(ValueError, match=expected):
        apply_epoch_cap([1, 1], [10, 20], budget=10, max_epochs=max_epochs)


def test_epochs_per_domain_values() -> None:
    epochs = epochs_per_domain([0.5, 0.25, 0.25, 0.0], [100, 50, 0, 0], budget=400)

    assert epochs[0] == pytest.approx(2.0)
    assert epochs[1] == pytest.approx(2.0)
    assert epochs[2] == np.inf
    assert epochs[3] == 0.0


def test_epochs_per_domain_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"weights of shape \(3,\) and 2 token counts"):
        epochs_per_domain([0.2, 0.3, 0.5], [10, 20], budget=10)
