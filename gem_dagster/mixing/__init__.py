"""Mixture weights over corpus domains from token counts alone (no Dagster imports).

The strategies here are uniform, natural, temperature and UniMax. DoReMi, RegMix and
performance-based reweighting need trained proxy language models and are not part of
this package, so ``compute_weights`` raises NotImplementedError for them.
"""

from gem_dagster.mixing.caps import apply_epoch_cap, check_budget, epochs_per_domain
from gem_dagster.mixing.export import plan_selection
from gem_dagster.mixing.stats import DomainStats
from gem_dagster.mixing.strategies import (
    PROXY_MODEL_STRATEGIES,
    STRATEGIES,
    MixtureWeights,
    compute_weights,
    natural,
    temperature,
    uniform,
    unimax,
)

__all__ = [
    "PROXY_MODEL_STRATEGIES",
    "STRATEGIES",
    "DomainStats",
    "MixtureWeights",
    "apply_epoch_cap",
    "check_budget",
    "compute_weights",
    "epochs_per_domain",
    "natural",
    "plan_selection",
    "temperature",
    "uniform",
    "unimax",
]
