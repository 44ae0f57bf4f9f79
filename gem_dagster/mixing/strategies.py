"""Mixing strategies that need only the domain statistics.

Every strategy computes preferred weights from the token counts and passes them through
``apply_epoch_cap``. Every result is therefore non-negative, sums to 1 and keeps each
domain within ``max_epochs`` epochs of the budget. Each domain with tokens gets at least
``min_weight`` where its cap allows.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from gem_dagster.mixing.caps import apply_epoch_cap, check_budget, epochs_per_domain
from gem_dagster.mixing.stats import DomainStats

__all__ = [
    "PROXY_MODEL_STRATEGIES",
    "STRATEGIES",
    "MixtureWeights",
    "compute_weights",
    "natural",
    "temperature",
    "uniform",
    "unimax",
]


@dataclass(frozen=True, eq=False)
class MixtureWeights:
    """Mixture weights over domains and what they mean for one budget.

    Attributes
    ----------
    strategy : str
        Name of the strategy that produced the weights, a key of ``STRATEGIES`` or one of
        ``PROXY_MODEL_STRATEGIES``.
    cluster_ids : numpy.ndarray of int64, shape (K,)
        Domain of each entry, in the order of the input ``DomainStats``.
    weights : numpy.ndarray of float64, shape (K,)
        Non-negative weights that sum to 1.
    tokens_allocated : numpy.ndarray of float64, shape (K,)
        ``weights * budget``: tokens the trainer reads from each domain.
    epochs : numpy.ndarray of float64, shape (K,)
        Passes over each domain, ``tokens_allocated / tokens``, 0 for empty domains.
    budget : int
        Training budget in tokens.
    params : dict
        Parameters used: ``max_epochs``, ``min_weight`` and any strategy parameter.
    """

    strategy: str
    cluster_ids: np.ndarray
    weights: np.ndarray
    tokens_allocated: np.ndarray
    epochs: np.ndarray
    budget: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pl.DataFrame:
        """Return one row per domain with cluster_id, weight, tokens_allocated and epochs."""
        return pl.DataFrame(
            {
                "cluster_id": self.cluster_ids,
                "weight": self.weights,
                "tokens_allocated": self.tokens_allocated,
                "epochs": self.epochs,
            }
        )


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, copy=True)
    copy.setflags(write=False)
    return copy


def _finish(
    strategy: str,
    stats: DomainStats,
    preference: np.ndarray,
    budget: int,
    max_epochs: float,
    min_weight: float,
    extra_params: dict[str, Any] | None = None,
) -> MixtureWeights:
    """Cap and floor the preferred weights, then package them with their allocation."""
    weights = apply_epoch_cap(preference, stats.tokens, budget, max_epochs, min_weight)
    params = {"max_epochs": float(max_epochs), "min_weight": float(min_weight)}
    params.update(extra_params or {})
    return MixtureWeights(
        strategy=strategy,
        cluster_ids=_read_only(stats.cluster_ids),
        weights=_read_only(weights),
        tokens_allocated=_read_only(weights * budget),
        epochs=_read_only(epochs_per_domain(weights, stats.tokens, budget)),
        budget=int(budget),
        params=params,
    )


def _require_stats(stats) -> DomainStats:
    if not isinstance(stats, DomainStats):
        raise TypeError(f"stats must be a DomainStats, got {type(stats).__name__}")
    return stats


def uniform(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
) -> MixtureWeights:
    """Weight every domain with tokens equally, 1/K over those domains, before the cap.

    Parameters
    ----------
    stats : DomainStats
        Documents and tokens per domain.
    budget : int
        Training budget in tokens.
    max_epochs : float, default 4.0
        Maximum number of passes over any one domain.
    min_weight : float, default 0.0
        Minimum weight of each domain with tokens, where its cap allows.

    Returns
    -------
    MixtureWeights
    """
    stats = _require_stats(stats)
    preference = (stats.tokens > 0).astype(np.float64)
    return _finish("uniform", stats, preference, budget, max_epochs, min_weight)


def natural(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
) -> MixtureWeights:
    """Weight each domain by its share of the corpus tokens, before the cap.

    Parameters and return value are those of ``uniform``.
    """
    stats = _require_stats(stats)
    preference = stats.tokens.astype(np.float64)
    return _finish("natural", stats, preference, budget, max_epochs, min_weight)


def temperature(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
    *,
    tau: float,
) -> MixtureWeights:
    """Weight each domain in proportion to ``tokens ** (1 / tau)``, before the cap.

    ``tau = 1`` gives the natural mixture, and the weights approach uniform as ``tau``
    grows, because every positive count raised to a power near 0 is near 1.

    Parameters
    ----------
    stats, budget, max_epochs, min_weight
        As for ``uniform``.
    tau : float
        Sampling temperature, at least 1. ``math.inf`` gives the uniform mixture.

    Returns
    -------
    MixtureWeights

    Raises
    ------
    ValueError
        If ``tau`` is not a number >= 1.
    """
    stats = _require_stats(stats)
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or math.isnan(tau):
        raise ValueError(f"tau must be a number >= 1, got {tau!r}")
    if tau < 1:
        raise ValueError(f"tau must be >= 1 (1 is the natural mixture), got {tau}")

    # Dividing by the largest count first keeps every base in [0, 1], so the power cannot
    # overflow and the largest domain has preference exactly 1.
    tokens = stats.tokens.astype(np.float64)
    largest = tokens.max()
    if largest == 0:
        preference = tokens
    else:
        preference = np.where(tokens > 0, (tokens / largest) ** (1.0 / tau), 0.0)
    return _finish(
        "temperature", stats, preference, budget, max_epochs, min_weight, {"tau": float(tau)}
    )


def unimax(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
) -> MixtureWeights:
    """Spread the budget as evenly as the epoch cap allows (UniMax, Chung et al. 2023).

    The domains with tokens are visited from the fewest tokens to the most. Each one gets
    ``min(remaining budget / remaining domains, max_epochs * tokens_g)`` tokens, so small
    domains are capped and the rest of the budget is shared evenly among larger ones.
    The weights are the allocated tokens divided by the budget, then ``min_weight`` is
    applied as for the other strategies.

    Parameters and return value are those of ``uniform``.

    Notes
    -----
    Under the redistribution rule of ``apply_epoch_cap``, the capped uniform mixture is the
    same allocation, and the tests check that. This function keeps the published
    smallest-first loop so that the result does not depend on that equivalence.
    """
    stats = _require_stats(stats)

    # Run the budget check first, because the loop below would silently leave tokens
    # unallocated when the budget is larger than all capped domains together.
    check_budget(stats.tokens, budget, max_epochs)

    tokens = stats.tokens.astype(np.float64)
    allocated = np.zeros_like(tokens)
    domains_with_tokens = np.flatnonzero(stats.tokens > 0)

    # The stable sort visits domains with equal counts in input order.
    order = domains_with_tokens[np.argsort(stats.tokens[domains_with_tokens], kind="stable")]
    remaining_budget = float(budget)
    for position, domain in enumerate(order):
        remaining_domains = order.size - position
        share = min(remaining_budget / remaining_domains, max_epochs * tokens[domain])
        allocated[domain] = share
        remaining_budget -= share

    return _finish("unimax", stats, allocated / budget, budget, max_epochs, min_weight)


# Strategies computed from the domain statistics alone.
STRATEGIES: dict[str, Callable[..., MixtureWeights]] = {
    "uniform": uniform,
    "natural": natural,
    "temperature": temperature,
    "unimax": unimax,
}

# Strategies that train small proxy language models (DoReMi, RegMix and performance-based
# reweighting). Each lives in the module of the same name, imported on first use so that
# the cheap strategies do not import torch and LightGBM.
PROXY_MODEL_STRATEGIES: tuple[str, ...] = ("doremi", "regmix", "perfre")


def _proxy_strategy(name: str) -> Callable[..., MixtureWeights]:
    module = importlib.import_module(f"gem_dagster.mixing.{name}")
    return getattr(module, name)


def compute_weights(name: str, stats: DomainStats, budget: int, **params: Any) -> MixtureWeights:
    """Run the strategy called ``name`` on ``stats`` and ``budget``.

    Parameters
    ----------
    name : str
        A key of ``STRATEGIES`` or one of ``PROXY_MODEL_STRATEGIES``.
    stats : DomainStats
        Documents and tokens per domain.
    budget : int
        Training budget in tokens.
    **params
        Keyword arguments of that strategy, for example ``max_epochs``, ``min_weight`` and,
        for ``temperature``, ``tau``. The proxy model strategies also need
        ``token_streams`` (token ids per cluster id) and ``proxy`` (a ``ProxyConfig``).

    Returns
    -------
    MixtureWeights

    Raises
    ------
    ValueError
        If ``name`` is unknown, a parameter does not belong to the strategy, or a proxy
        model strategy is missing ``token_streams`` or ``proxy``.
    """
    if name in PROXY_MODEL_STRATEGIES:
        missing = [parameter for parameter in ("token_streams", "proxy") if parameter not in params]
        if missing:
            raise ValueError(
                f"mixing strategy {name!r} needs a trained proxy language model, so it "
                f"requires the parameters {missing}: token_streams maps each cluster id to "
                f"its token ids and proxy is a gem_dagster.mixing.proxy.ProxyConfig. "
                f"Strategies available without them: {sorted(STRATEGIES)}"
            )
        strategy = _proxy_strategy(name)
    elif name in STRATEGIES:
        strategy = STRATEGIES[name]
    else:
        raise ValueError(
            f"unknown mixing strategy {name!r}. Known strategies: {sorted(STRATEGIES)}, "
            f"and {list(PROXY_MODEL_STRATEGIES)} which need a proxy language model"
        )

    accepted = [
        parameter
        for parameter in inspect.signature(strategy).parameters
        if parameter not in ("stats", "budget")
    ]
    unexpected = sorted(set(params) - set(accepted))
    if unexpected:
        raise ValueError(
            f"strategy {name!r} got unknown parameters {unexpected}, but it accepts only {accepted}"
        )
    return strategy(stats, budget, **params)
