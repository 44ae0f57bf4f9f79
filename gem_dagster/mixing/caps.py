"""Epoch cap and minimum weight applied to a mixture over domains.

With a training budget of B tokens, weight w_g makes the trainer read ``w_g * B`` tokens
from domain g, that is ``w_g * B / tokens_g`` epochs of it. The cap keeps every domain at
or below ``max_epochs`` epochs, and the floor gives every domain with tokens at least
``min_weight`` where its cap allows.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["apply_epoch_cap", "check_budget", "epochs_per_domain"]


def _validate_tokens(tokens) -> np.ndarray:
    array = np.asarray(tokens)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"tokens must be a non-empty 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"tokens must be numeric, got dtype {array.dtype}")

    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"tokens must be finite, got {values[~np.isfinite(values)][0]}")
    if np.any(values < 0):
        position = int(np.flatnonzero(values < 0)[0])
        raise ValueError(
            f"tokens must be non-negative, got {array[position]} at position {position}"
        )
    return values


def _validate_budget(budget) -> int:
    # bool is a subclass of int, and True as a budget is certainly a mistake.
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral):
        raise ValueError(f"budget must be a positive integer number of tokens, got {budget!r}")
    if budget <= 0:
        raise ValueError(f"budget must be a positive integer number of tokens, got {budget}")
    return int(budget)


def _validate_max_epochs(max_epochs) -> float:
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, numbers.Real):
        raise ValueError(f"max_epochs must be a positive number, got {max_epochs!r}")
    if not math.isfinite(max_epochs) or max_epochs <= 0:
        raise ValueError(f"max_epochs must be a positive finite number, got {max_epochs}")
    return float(max_epochs)


def _format_tokens(count: float) -> str:
    """Format a token count as an integer when it is whole, else with one decimal."""
    if float(count).is_integer():
        return str(int(count))
    return f"{count:.1f}"


def check_budget(tokens, budget: int, max_epochs: float) -> None:
    """Raise ValueError when ``budget`` exceeds ``max_epochs`` epochs of all tokens.

    Parameters
    ----------
    tokens : array_like, shape (K,)
        Tokens per domain, non-negative.
    budget : int
        Training budget in tokens, positive.
    max_epochs : float
        Maximum number of passes over any one domain, positive.

    Raises
    ------
    ValueError
        If an argument is invalid, or if ``budget > max_epochs * sum(tokens)``. The message
        gives the budget, the maximum, the shortfall and the two ways to fix it.
    """
    values = _validate_tokens(tokens)
    budget = _validate_budget(budget)
    max_epochs = _validate_max_epochs(max_epochs)

    total_tokens = float(values.sum())
    maximum = max_epochs * total_tokens
    if budget <= maximum:
        return

    if total_tokens == 0:
        raise ValueError(
            f"budget {budget} tokens cannot be met because every domain has 0 tokens"
        )

    # Round the suggested max_epochs up, so that following the advice always works.
    needed_epochs = math.ceil(budget / total_tokens * 100) / 100
    raise ValueError(
        f"budget {budget} tokens exceeds the maximum of {_format_tokens(maximum)} tokens "
        f"({max_epochs:g} epochs of {_format_tokens(total_tokens)} tokens) by "
        f"{_format_tokens(budget - maximum)} tokens. Lower the budget to at most "
        f"{math.floor(maximum)} tokens or raise max_epochs to at least {needed_epochs:g}"
    )


def epochs_per_domain(weights, tokens, budget: int) -> np.ndarray:
    """Compute how many passes over each domain a mixture makes within a budget.

    Parameters
    ----------
    weights : array_like, shape (K,)
        Mixture weights.
    tokens : array_like, shape (K,)
        Tokens per domain.
    budget : int
        Training budget in tokens.

    Returns
    -------
    numpy.ndarray of float64, shape (K,)
        ``weights * budget / tokens``. A domain with 0 tokens gets 0 epochs when its weight
        is 0 and ``inf`` when its weight is positive.
    """
    values = _validate_tokens(tokens)
    budget = _validate_budget(budget)
    weight_values = np.asarray(weights, dtype=np.float64)
    if weight_values.shape != values.shape:
        raise ValueError(
            f"weights and tokens must have one entry per domain, got weights of shape "
            f"{weight_values.shape} and {values.size} token counts"
        )

    allocated = weight_values * budget
    epochs = np.zeros_like(allocated)
    has_tokens = values > 0
    epochs[has_tokens] = allocated[has_tokens] / values[has_tokens]
    epochs[~has_tokens & (allocated > 0)] = np.inf
    return epochs


def _clipped_total(scale: float, preference, lower, upper) -> float:
    return float(np.clip(scale * preference, lower, upper).sum())


def _solve_scale(preference: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Find ``s`` with ``sum(clip(s * preference, lower, upper)) == 1``.

    The sum is a non-decreasing piecewise-linear function of ``s`` whose kinks lie at
    ``lower / preference`` and ``upper / preference``. A binary search over the sorted kinks
    finds the linear piece that reaches 1, and the root inside that piece is exact.
    Callers guarantee that the sum is at most 1 at ``s = 0`` and at least 1 at the last kink.
    """
    positive = preference > 0
    kinks = np.unique(
        np.concatenate(
            [[0.0], lower[positive] / preference[positive], upper[positive] / preference[positive]]
        )
    )

    if _clipped_total(kinks[0], preference, lower, upper) >= 1.0:
        return float(kinks[0])

    # Invariant: the total is below 1 at kinks[low] and at least 1 at kinks[high].
    low, high = 0, kinks.size - 1
    while high - low > 1:
        middle = (low + high) // 2
        if _clipped_total(kinks[middle], preference, lower, upper) >= 1.0:
            high = middle
        else:
            low = middle

    total_low = _clipped_total(kinks[low], preference, lower, upper)
    total_high = _clipped_total(kinks[high], preference, lower, upper)
    fraction = (1.0 - total_low) / (total_high - total_low)
    return float(kinks[low] + fraction * (kinks[high] - kinks[low]))


def apply_epoch_cap(
    weights,
    tokens,
    budget: int,
    max_epochs: float,
    min_weight: float = 0.0,
) -> np.ndarray:
    """Cap each domain at ``max_epochs`` epochs of a budget and renormalise.

    A domain may receive at most ``max_epochs * tokens_g`` of the ``budget`` tokens, so its
    weight is capped at ``max_epochs * tokens_g / budget``. The weight above a cap goes to
    the uncapped domains in proportion to their weights, and this repeats until no domain
    exceeds its cap. Domains with tokens then get at least ``min_weight``, or their cap when
    that is lower, with the mass taken from the other domains in proportion to their
    weights. The result is the fixed point of that process:
    ``w_g = clip(s * weights_g, floor_g, cap_g)`` with the one scale ``s`` that makes the
    weights sum to 1. Domains with 0 tokens get weight 0 whatever their input weight.

    Parameters
    ----------
    weights : array_like, shape (K,)
        Preferred weights, non-negative and finite. They need not sum to 1.
    tokens : array_like, shape (K,)
        Tokens per domain, non-negative.
    budget : int
        Training budget in tokens, positive.
    max_epochs : float
        Maximum number of passes over any one domain, positive.
    min_weight : float, default 0.0
        Minimum weight of each domain with tokens, where the cap allows. Must satisfy
        ``min_weight * n <= 1`` for the n domains with tokens.

    Returns
    -------
    numpy.ndarray of float64, shape (K,)
        Non-negative weights that sum to 1 and satisfy
        ``w_g * budget <= max_epochs * tokens_g`` up to floating-point rounding.

    Raises
    ------
    ValueError
        If an argument is invalid, if the lengths differ, if ``budget`` exceeds
        ``max_epochs`` epochs of all tokens, or if the domains with positive weight cannot
        take the budget under their caps.
    """
    token_values = _validate_tokens(tokens)
    budget = _validate_budget(budget)
    max_epochs = _validate_max_epochs(max_epochs)

    preference = np.asarray(weights, dtype=np.float64)
    if preference.ndim != 1:
        raise ValueError(f"weights must be 1-D, got shape {preference.shape}")
    if preference.size != token_values.size:
        raise ValueError(
            f"weights and tokens must have one entry per domain, got {preference.size} "
            f"weights and {token_values.size} token counts"
        )
    if not np.all(np.isfinite(preference)) or np.any(preference < 0):
        bad = preference[~np.isfinite(preference) | (preference < 0)][0]
        raise ValueError(f"weights must be finite and non-negative, got {bad}")

    has_tokens = token_values > 0
    active_count = int(has_tokens.sum())
    if isinstance(min_weight, bool) or not isinstance(min_weight, numbers.Real):
        raise ValueError(f"min_weight must be a number >= 0, got {min_weight!r}")
    if not math.isfinite(min_weight) or min_weight < 0:
        raise ValueError(f"min_weight must be a finite number >= 0, got {min_weight}")
    if active_count and min_weight * active_count > 1:
        raise ValueError(
            f"min_weight {min_weight} is too large for {active_count} domains with tokens, "
            f"because their floors would sum to more than 1. Use min_weight <= "
            f"{1 / active_count:.6g}"
        )

    check_budget(token_values, budget, max_epochs)

    # Bounds on each weight. Zero-token domains are pinned to 0 by equal bounds, and the
    # floor yields to the cap where the cap is lower.
    upper = max_epochs * token_values / budget
    lower = np.minimum(float(min_weight), upper)
    preference = np.where(has_tokens, preference, 0.0)

    # Even when all tokens could absorb the budget, domains given weight 0 only get their
    # floor, so the others may be unable to take the rest under their caps.
    reachable = float(np.where(preference > 0, upper, lower).sum())
    if reachable < 1.0:
        raise ValueError(
            f"the domains with positive weight can take at most "
            f"{_format_tokens(reachable * budget)} of the {budget} budget tokens at "
            f"max_epochs={max_epochs:g}. Give positive weight to more domains, raise "
            f"min_weight, raise max_epochs or lower the budget"
        )

    scale = _solve_scale(preference, lower, upper)
    scaled = scale * preference

    # Recompute the unbounded domains from the bounded ones, so the weights sum to 1 up
    # to rounding instead of carrying the error of the root.
    at_upper = (preference > 0) & (scaled >= upper)
    at_lower = ~at_upper & (scaled <= lower)
    free = ~at_upper & ~at_lower
    result = np.where(at_upper, upper, lower)
    if np.any(free):
        remaining = 1.0 - float(result[~free].sum())
        result[free] = preference[free] * (remaining / float(preference[free].sum()))
    return result
